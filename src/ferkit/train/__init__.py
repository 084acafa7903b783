"""Training: a frozen config, one visible loop, checkpoint every epoch, resume, clean stop on a signal.

A run folder holds ``config.json`` (the resolved config), ``metrics.jsonl`` (one JSON line per epoch),
``checkpoint.pt`` (everything needed to resume, loadable with ``weights_only=True``), ``best.safetensors``
(the best weights on the validation subset so far) and, when the run ends, ``model.safetensors`` (the best
weights in fp32 with their metadata) and ``results.json``.

This module holds the loop, in named steps as torchvision's classification reference has them:
:func:`train_step` (one batch), :func:`train_one_epoch`, :func:`evaluate` (one validation pass),
:func:`end_epoch` (log, keep the best, checkpoint) and :func:`train` (the run). The parts live beside it:
``config`` (TrainConfig, presets), ``recipe`` (precision, optimiser, schedule, the epoch's draw, distillation),
``dataset`` (what a run trains on), ``parts`` (the model and its companions), ``checkpoint`` (save, resume),
``results`` (model.safetensors and its metadata), ``distributed`` (data parallelism). ``python -m ferkit.train``
(torchrun's entry point) takes the options of ``ferkit train``.

Speed on CPU (see benchmarks/train_speed.py): bf16 autocast where the CPU has native bf16 (AVX-512 BF16
or AMX; detected at run time, fp32 otherwise) and channels_last tensors; the data set stays in memory as
one uint8 tensor and batches are cut from it, with no DataLoader workers.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.data.augment import augment, mixup
from ferkit.data.fer2013 import FerData
from ferkit.core.inference import predict_logits, predict_proba, to_input, views_to_proba
from ferkit.core.labels import EMOTIONS
from ferkit.train.checkpoint import (RESUME_MAY_CHANGE, check_resumable, load_checkpoint, restore_checkpoint,
                                     save_best, save_checkpoint)
from ferkit.train.config import PRESETS, TrainConfig, config_from_sources, make_config
from ferkit.train.dataset import TrainingData, load_training_data, source_weights
from ferkit.train.distributed import Dist, all_reduce, distributed
from ferkit.train.parts import Run
from ferkit.train.recipe import (class_weights, cpu_supports_bf16, epoch_length, epoch_order, lr_at, teacher_targets,
                                 use_bf16)
from ferkit.train.results import finish


def _ddp_entry(config: dict, resume: bool, progress: bool, threads: int) -> dict:
    """What each process of :func:`launch` runs (module level: the launcher pickles it)."""
    torch.set_num_threads(threads)
    try:
        return train(TrainConfig(**config), resume=resume, progress=progress)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(cfg: TrainConfig, nproc: int, *, resume: bool = False, progress: bool = False) -> dict:
    """Train with ``nproc`` data-parallel processes on this machine (what ``ferkit train --nproc N`` runs; the same
    as ``torchrun --nproc-per-node N -m ferkit.train ...``). CPU threads are shared out between the processes.
    Returns rank 0's results."""
    import uuid

    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    threads = max(1, (os.cpu_count() or 1) // nproc)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    results = elastic_launch(config, _ddp_entry)(asdict(cfg), resume, progress, threads)
    return results[0]


def run_training(cfg: TrainConfig, *, nproc: int = 1, resume: bool = False, progress: bool = True,
                 threads: int | None = None) -> dict:
    """What ``ferkit train`` runs: :func:`train` in this process, or with ``nproc`` > 1 (and not already one of
    torchrun's processes) :func:`launch`. ``threads``: PyTorch's CPU threads (None: all cores). Returns the
    results (``status`` "interrupted" after a signal)."""
    if threads:
        torch.set_num_threads(threads)
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch(cfg, nproc, resume=resume, progress=progress)
    return train(cfg, resume=resume, progress=progress)


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between batches, saves and stops."""

    def __init__(self):
        self.signal: int | None = None

    def __call__(self, signum, frame):
        self.signal = signum


def train_step(run: Run, epoch: int, step: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step on batch ``step`` of ``epoch`` (``order``: the epoch's face indices); returns (loss,
    logits (B, 7), labels (B,))."""
    cfg, d = run.cfg, run.d
    world, rank = run.dist.world, run.dist.rank
    chunk = order[step * cfg.batch_size * world:(step + 1) * cfg.batch_size * world]  # the global batch
    if world > 1:  # this process's share of it (the last, short batch is split evenly too)
        if len(chunk) < world:
            chunk = torch.cat([chunk, order[:world - len(chunk)]])
        chunk = chunk.tensor_split(world)[rank]
    idx = chunk.to(run.device)
    x = to_input(d.x_train[idx], d.mean, d.std, channels_last=False)  # (B, C, S, S): grey 48 or the model's input
    if cfg.augment:  # a generator per (seed, epoch, step, process): resumable anywhere, no state to save
        g = torch.Generator().manual_seed((cfg.seed * 100_003 + epoch) * 1_000_003 + step + rank * 7_919_000_003)
        x = augment(x, run.aug, g)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y, target = d.y_train[idx], d.t_train[idx]
    if cfg.mixup > 0:
        g = torch.Generator().manual_seed((cfg.seed * 100_003 + epoch) * 1_000_003 + step + 7 + rank * 7_919_000_003)
        x, target = mixup(x, target, cfg.mixup, g, len(EMOTIONS))
    lr = lr_at(cfg, epoch * run.n_batches + step, run.total_steps)
    for group in run.opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.bf16):
        logits = run.net(x)
    adjusted = logits.float() if run.log_prior is None else logits.float() + run.log_prior
    loss = F.cross_entropy(adjusted, target, weight=run.weight, label_smoothing=cfg.label_smoothing)
    if run.soft is not None:
        t = cfg.distill_t
        kd = F.kl_div(F.log_softmax(logits.float() / t, dim=1), run.soft[idx], reduction="batchmean") * t * t
        loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss, logits, y


def train_one_epoch(run: Run, stop: _StopFlag, progress: bool) -> float:
    """Batches from the saved position to the end of the epoch, or until a signal or the time budget (then
    ``run.stop_reason`` says which); returns images per second."""
    cfg, state = run.cfg, run.state
    epoch = state["epoch"]
    order = epoch_order(cfg, epoch, len(run.d.x_train), run.d.groups, run.d.weights)
    run.model.train()
    t0 = time.perf_counter()
    seen_at_start = state["run_seen"]
    bar = _progress(range(state["step"], run.n_batches), epoch, cfg.epochs, progress and run.dist.main)
    for step in bar:
        loss, logits, y = train_step(run, epoch, step, order)
        state["step"] = step + 1
        state["run_loss"] += float(loss.detach()) * len(y)
        state["run_correct"] += int((logits.argmax(1) == y).sum())
        state["run_seen"] += len(y)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{state['run_loss'] / state['run_seen']:.3f}",
                            acc=f"{state['run_correct'] / state['run_seen']:.3f}", refresh=False)
        over_budget = cfg.time_budget_min > 0 and \
            state["elapsed_s"] + time.perf_counter() - t0 > cfg.time_budget_min * 60
        run.stop_reason = 2 if stop.signal is not None else int(over_budget)
        if run.dist.world > 1:  # every process stops at the same step, or the others would wait forever
            run.stop_reason = int(all_reduce([run.stop_reason], run.device, "max")[0])
        if run.stop_reason:
            break
    seconds = time.perf_counter() - t0
    state["elapsed_s"] += seconds
    state["wall_s"] += seconds
    return (state["run_seen"] - seen_at_start) / max(seconds, 1e-9)


def evaluate(run: Run) -> dict:
    """The judged weights (the EMA where there is one) on the validation subset, each crop folder's validation
    part and, with ``monitor_test``, the test split: ``val_acc``, ``val_loss``, ``val_acc_<folder>``, ``test_acc``
    and ``test_acc_plain`` (without TTA). NaN where a subset is empty."""
    cfg, d = run.cfg, run.d
    judged = run.judged
    scores = {"val_loss": float("nan"), "val_acc": float("nan")}

    def probs(images):
        return predict_proba(judged, images, d.mean, d.std, bf16=run.bf16, channels_last=cfg.channels_last,
                             tta=cfg.tta, device=cfg.device)

    if len(d.y_val):
        val_probs = probs(d.x_val)
        scores["val_acc"] = float((val_probs.argmax(1) == d.y_val).mean())
        scores["val_loss"] = float(-np.log(np.clip(val_probs[np.arange(len(d.y_val)), d.y_val], 1e-12, None)).mean())
    for name, (x, y) in (d.source_val or {}).items():
        if len(y):
            scores[f"val_acc_{name}"] = float((probs(x).argmax(1) == y).mean())
    if run.monitor is not None:
        test_probs, plain = predict_proba(judged, run.monitor.images, d.mean, d.std, bf16=run.bf16, with_plain=True,
                                          channels_last=cfg.channels_last, tta=cfg.tta, device=cfg.device)
        scores["test_acc"] = float((test_probs.argmax(1) == run.monitor.labels).mean())
        scores["test_acc_plain"] = float((plain.argmax(1) == run.monitor.labels).mean())  # what the TTA buys
    return scores


def end_epoch(run: Run, images_per_s: float) -> bool:
    """Validate, log a metrics row, keep the best weights, advance the epoch, checkpoint. True when the weights
    were kept as the best so far. With several processes, rank 0 does the work and the others take its state."""
    if run.dist.world > 1:
        import torch.distributed as dist

        s = run.state
        s["run_loss"], s["run_correct"], s["run_seen"] = all_reduce([s["run_loss"], s["run_correct"], s["run_seen"]],
                                                                    run.device)
        images_per_s = all_reduce([images_per_s], run.device)[0]
        shared = [_end_epoch(run, images_per_s) if run.dist.main else None, dict(run.state)]
        dist.broadcast_object_list(shared, src=0)
        run.state.update(shared[1])
        return bool(shared[0])
    return _end_epoch(run, images_per_s)


def _end_epoch(run: Run, images_per_s: float) -> bool:
    cfg, state = run.cfg, run.state
    t0 = time.perf_counter()
    epoch = state["epoch"]
    scores = evaluate(run)
    val_acc, val_loss = scores["val_acc"], scores["val_loss"]
    row = {"epoch": epoch + 1, "train_loss": state["run_loss"] / state["run_seen"],
           "train_acc": state["run_correct"] / state["run_seen"], "val_loss": val_loss, "val_acc": val_acc,
           "lr": run.opt.param_groups[0]["lr"], "images_per_s": images_per_s, "elapsed_s": state["elapsed_s"],
           **{k: v for k, v in scores.items() if k not in ("val_loss", "val_acc")}}
    with open(run.out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    improved = val_acc > state["best_acc"] if cfg.select == "best" else True
    if improved:
        state.update(best_acc=val_acc, best_epoch=epoch + 1, bad_epochs=0)
        save_best(run.judged, run.out / "best.safetensors")
    else:
        state["bad_epochs"] += 1
    run.log(f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
            f"val_loss {val_loss:.4f}  val_acc {val_acc:.4f}{' *' if improved and cfg.select == 'best' else ''}  "
            + "".join(f"{k[8:]} {v:.4f}  " for k, v in row.items() if k.startswith("val_acc_")) +
            (f"{cfg.test_split} {row['test_acc']:.4f}  " if run.monitor is not None else "") +
            f"{images_per_s:.0f} img/s  {state['elapsed_s'] / 60:.1f} min")
    state["wall_s"] += time.perf_counter() - t0  # training + evaluation
    state.update(epoch=epoch + 1, step=0, run_loss=0.0, run_correct=0, run_seen=0)
    save_checkpoint(run)
    return improved


def train(cfg: TrainConfig, *, data: FerData | None = None, resume: bool = False, progress: bool = True,
          log=None) -> dict:
    """Train ``cfg.model`` on the Training rows of ``cfg.data``; returns the results dict.

    With ``resume=True`` the run continues from ``cfg.out/checkpoint.pt`` (same config required, else ValueError).
    A SIGINT/SIGTERM saves a checkpoint and returns ``{"status": "interrupted", ...}``.
    """
    dist_info = distributed(cfg)
    log = log or (lambda msg: print(msg, flush=True))
    if not dist_info.main:
        log = lambda msg: None  # noqa: E731 - one voice: rank 0 logs
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    # a different recipe is refused before any data is read
    ckpt = load_checkpoint(ckpt_path, cfg) if resume and ckpt_path.exists() else None

    run = Run(cfg, load_training_data(cfg, data, progress and dist_info.main), out, log, dist_info)
    state = run.state
    if ckpt is not None:
        restore_checkpoint(run, ckpt)
        log(f"resumed from {ckpt_path}: epoch {state['epoch'] + 1}, batch {state['step']}")
    else:
        if resume:
            log(f"no checkpoint in {out}: starting a new run")
        if dist_info.main:
            (out / "metrics.jsonl").unlink(missing_ok=True)
    if dist_info.main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    if dist_info.world > 1:
        log(f"data parallel: {dist_info.world} processes ({'NCCL' if run.device.type == 'cuda' else 'gloo'}), "
            f"{cfg.batch_size} faces each per step")

    stop = _StopFlag()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    status = "finished"
    try:
        while state["epoch"] < cfg.epochs:
            images_per_s = train_one_epoch(run, stop, progress)
            if run.stop_reason == 2:
                save_checkpoint(run)
                status = "interrupted"
                log(f"stopped by signal {stop.signal} at epoch {state['epoch'] + 1}, batch {state['step']}: "
                    f"checkpoint saved, continue with --resume")
                break
            if state["step"] < run.n_batches:  # out of time mid-epoch
                save_checkpoint(run)
                status = "budget"
                log(f"time budget of {cfg.time_budget_min} min reached at epoch {state['epoch'] + 1}, "
                    f"batch {state['step']}")
                break
            end_epoch(run, images_per_s)
            if cfg.patience > 0 and state["bad_epochs"] >= cfg.patience:
                status = "early_stopped"
                log(f"early stop: no better val_acc for {cfg.patience} epochs; best {state['best_acc']:.4f} "
                    f"at epoch {state['best_epoch']}")
                break
            if cfg.time_budget_min > 0 and state["elapsed_s"] > cfg.time_budget_min * 60:
                status = "budget"
                break
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if dist_info.world > 1:
            import torch.distributed as dist

            dist.barrier()

    results = {"status": status, "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
               "best_val_acc": state["best_acc"], "train_minutes": state["elapsed_s"] / 60,
               "wall_minutes": state["wall_s"] / 60}
    if status == "interrupted" or state["best_epoch"] < 0 or not dist_info.main:
        return results
    return finish(cfg, run.model, out, run.d, results, log)


def _progress(steps, epoch: int, epochs: int, enabled: bool):
    if not enabled:
        return steps
    from tqdm import tqdm

    return tqdm(steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, disable=None,
                file=sys.stderr, dynamic_ncols=True)


__all__ = ["Dist", "PRESETS", "RESUME_MAY_CHANGE", "Run", "TrainConfig", "TrainingData", "check_resumable",
           "class_weights", "config_from_sources", "cpu_supports_bf16", "distributed", "end_epoch", "epoch_length",
           "evaluate", "launch", "load_training_data", "lr_at", "make_config", "predict_logits", "predict_proba",
           "run_training", "source_weights", "teacher_targets", "train", "train_one_epoch", "train_step", "use_bf16",
           "views_to_proba"]
