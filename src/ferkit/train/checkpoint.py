"""A run's checkpoint (``checkpoint.pt``: everything needed to resume, loadable with ``weights_only=True``), the
best-so-far weights (``best.safetensors``), and the rule for which config may change on ``--resume``."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from ferkit.models import model_tensors
from ferkit.train.config import TrainConfig
from ferkit.train.parts import Run


def save_checkpoint(run: Run) -> None:
    """Write ``checkpoint.pt`` into the run folder (rank 0 only; the others hold the same state)."""
    if not run.dist.main:
        return
    save_atomic({"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
                 "rng": torch.get_rng_state(), "state": dict(run.state), "config": asdict(run.cfg),
                 **({"ema": run.ema.state_dict()} if run.ema is not None else {})}, run.out / "checkpoint.pt")


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    """The checkpoint at ``path``, refused (ValueError, one line naming the file) when it cannot be read (truncated,
    not a torch file, pickled objects that ``weights_only`` refuses), is not a ferkit checkpoint, or was made with
    another recipe (see :func:`check_resumable`)."""
    try:
        ckpt = torch.load(path, map_location=cfg.device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason[:160]}); move it away to start afresh") from None
    missing = [k for k in ("config", "model", "optimizer", "state", "rng") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a ferkit training checkpoint (no {', '.join(missing)})")
    check_resumable(ckpt["config"], cfg, path)
    return ckpt


def restore_checkpoint(run: Run, ckpt: dict) -> None:
    """Put a checkpoint's weights, optimiser, EMA, random state and counters back into ``run``. Resumed with another
    number of processes, the same faces count as seen and the step is recomputed."""
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    if run.ema is not None:
        run.ema.load_state_dict(ckpt["ema"])
    torch.set_rng_state(ckpt["rng"].cpu())
    saved_world = int(ckpt["state"].get("world", 1))
    run.state.update(ckpt["state"])
    if saved_world != run.dist.world:  # resumed with another number of processes: same faces seen, new steps
        seen = run.state["step"] * run.cfg.batch_size * saved_world
        run.state.update(step=seen // (run.cfg.batch_size * run.dist.world), world=run.dist.world)


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# Config fields that may differ when a run is resumed: how long it runs, where its files and data live, and
# on which device. Everything else (the recipe) must match the checkpoint.
RESUME_MAY_CHANGE = frozenset({"epochs", "time_budget_min", "out", "command", "data", "ferplus", "device", "sources",
                               "init"})


def check_resumable(saved: dict, cfg: TrainConfig, ckpt_path: Path | str = "checkpoint") -> None:
    """Refuse to resume a checkpoint made with another recipe: every config field except
    :data:`RESUME_MAY_CHANGE` must equal the saved one (fields newer than the checkpoint: their default)."""
    now = asdict(cfg)
    defaults = asdict(TrainConfig())
    for key in sorted(set(now) - RESUME_MAY_CHANGE):
        was = saved.get(key, defaults[key])
        if isinstance(was, (list, tuple)) and isinstance(now[key], (list, tuple)):  # JSON gives back lists
            was, now[key] = list(was), list(now[key])
        if was != now[key]:
            raise ValueError(f"{ckpt_path}: checkpoint was made with {key}={was!r}, not {now[key]!r}")


def save_best(model: torch.nn.Module, path: Path) -> None:
    from ferkit.weights import save_weights

    save_weights(path, model_tensors(model), {"note": "best-so-far weights of a run; see model.safetensors"})
