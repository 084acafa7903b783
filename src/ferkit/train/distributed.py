"""Data-parallel training (torchrun / ``ferkit train --nproc N``): which process this is, joining the group,
and summing or maxing numbers across the processes. :func:`ferkit.train.launch` starts the processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ferkit.train.config import TrainConfig


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run (torchrun / ``ferkit train --nproc N``): ``world`` processes,
    this one ``rank``. One process: world 1, rank 0."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed(cfg: TrainConfig) -> Dist:
    """Join the process group that torchrun (or :func:`launch`) describes in the environment: gloo on CPUs,
    NCCL on GPUs. Without ``WORLD_SIZE`` > 1 in the environment: one process, nothing to join."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device.startswith("cuda"):
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    return Dist(world, rank, local)


def all_reduce(values: list[float], device: torch.device, op: str = "sum") -> list[float]:
    """``values`` summed (or, with ``op="max"``, maxed) over every process of the group."""
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.tolist()
