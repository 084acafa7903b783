"""The parts of a training recipe, each a pure function of the config (and of the step, the epoch or the data):
numeric precision, class weights, the optimiser, the learning-rate schedule, the faces an epoch draws, and the
soft targets of knowledge distillation."""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import torch

from ferkit.core.inference import combine_probabilities, predict_logits, views_to_proba
from ferkit.core.labels import EMOTIONS
from ferkit.train.config import TrainConfig


def cpu_supports_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: str = "cpu") -> bool:
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    native = cpu_supports_bf16() if device == "cpu" else torch.cuda.is_bf16_supported()
    return precision == "bf16" or (precision == "auto" and native)


def class_weights(labels: np.ndarray, mode: str, num_classes: int = len(EMOTIONS)) -> torch.Tensor | None:
    """Cross-entropy class weights from the class counts, scaled to a mean of 1 over the samples."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64).clip(min=1)
    if mode == "inverse":
        w = 1 / counts
    elif mode == "sqrt-inverse":
        w = 1 / np.sqrt(counts)
    else:
        raise ValueError(f"class_weight must be none, inverse or sqrt-inverse, not {mode!r}")
    w = w * counts.sum() / (w * counts).sum()
    return torch.tensor(w, dtype=torch.float32)


def param_groups(cfg: TrainConfig, model: torch.nn.Module) -> list[dict]:
    """One group of every parameter, or, for a model with a pretrained backbone (``backbone_parameters``) and
    ``backbone_lr`` != 1, two: the backbone's at ``backbone_lr`` x the schedule's rate (``lr_scale``), the rest
    (the new head) at the full rate. Discriminative rates: a pretrained network is moved less than a new head."""
    backbone = getattr(model, "backbone_parameters", None)
    if backbone is None or cfg.backbone_lr == 1.0:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    ids = {id(p) for p in backbone()}
    return [{"params": [p for p in model.parameters() if id(p) in ids], "lr_scale": cfg.backbone_lr},
            {"params": [p for p in model.parameters() if id(p) not in ids], "lr_scale": 1.0}]


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(cfg, model)
    if cfg.optimizer == "adam":  # Keras defaults: beta 0.9/0.999, eps 1e-7
        return torch.optim.Adam(groups, lr=cfg.lr, eps=1e-7, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019): the fine-tuning recipe's
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected adam, adamw or sgd")


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate as a pure function of the global step."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "onecycle":
        warmup = max(1, int(cfg.warmup_frac * total_steps))
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        return cfg.lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    if cfg.schedule == "cosine":  # linear warm-up, then half a cosine down to 0
        warmup = max(1, int(cfg.warmup_frac * total_steps))
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; expected constant, onecycle or cosine")


def epoch_order(cfg: TrainConfig, epoch: int, n: int, groups: list | None = None,
                 weights: tuple = (1.0,)) -> torch.Tensor:
    """The faces of one epoch, in order: a permutation of all ``n``; with weighted sources, each group's faces
    ``floor(w)`` times plus a random ``frac(w)`` share of them, shuffled together (a pure function of the seed
    and the epoch, so a resumed run draws the same faces)."""
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    if groups is None or all(w == 1.0 for w in weights):
        return torch.randperm(n, generator=g)
    picks = []
    for idx, w in zip(groups, weights):
        idx = torch.from_numpy(idx)
        picks += [idx] * int(w)
        k = _draws(len(idx), w) - int(w) * len(idx)  # the fractional part: a random share of the group
        if k:
            picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    order = torch.cat(picks)
    return order[torch.randperm(len(order), generator=g)]


def epoch_length(groups: list | None, weights: tuple, n: int) -> int:
    """Faces drawn per epoch (see :func:`epoch_order`)."""
    if groups is None or all(w == 1.0 for w in weights):
        return n
    return sum(_draws(len(idx), w) for idx, w in zip(groups, weights))


def _draws(n: int, weight: float) -> int:
    """Faces an epoch draws from a group of ``n`` with sampling ``weight``: each face int(weight) times, plus a
    random share frac(weight) of them."""
    return n * int(weight) + int(round((weight - int(weight)) * n))


def teacher_targets(teacher: str, images: np.ndarray, temperature: float, *, bf16: bool = False,
                    device: str = "cpu", channels_last: bool = True) -> torch.Tensor:
    """Soft targets (N, 7) for knowledge distillation: the teacher's softmax(logits / temperature), averaged
    over the face and its mirror image. Computed once on the un-augmented faces (offline distillation: the
    augmentations are mild and label-preserving), so a step costs no teacher forward pass.

    ``teacher``: a shipped name, a .safetensors file, or an ensemble (``NAME.ensemble.json`` or a shipped
    ensemble): each member's targets as above, combined as the ensemble combines its probabilities."""
    from ferkit.models import load_model
    from ferkit.weights import is_ensemble, read_ensemble, resolve

    path = resolve(teacher, "onnx") if not str(teacher).endswith(".safetensors") else Path(teacher)
    if is_ensemble(path):
        spec = read_ensemble(path)
        probs = [teacher_targets(m["model"], images, temperature, bf16=bf16, device=device,
                                 channels_last=channels_last).numpy() for m in spec["members"]]
        combined = combine_probabilities(probs, [m["weight"] for m in spec["members"]], spec["combine"])
        return torch.from_numpy(combined).float()
    from ferkit.runtime.spec import ModelSpec

    model = load_model(teacher).to(device)
    spec = ModelSpec.from_metadata(model.ferkit_meta, teacher)  # the teacher's own input path: size, colour, preprocessing
    views = predict_logits(model, spec.prepare(images), spec.mean, spec.std, bf16=bf16, tta=True,
                           device=device, channels_last=channels_last)
    return torch.from_numpy(views_to_proba(views, temperature))
