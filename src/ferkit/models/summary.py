"""A Keras-style layer table: each top-level layer, its output shape (H, W, C) and parameter count."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # (H, W, C) for feature maps, (C,) for vectors, as the paper writes it
    params: int


def _kind(module: nn.Module) -> str:
    inner = [m for m in module.children() if not isinstance(m, nn.ReLU)]
    base = type(inner[0] if isinstance(module, nn.Sequential) and len(inner) == 1 else module).__name__
    relu = isinstance(module, nn.Sequential) and any(isinstance(m, nn.ReLU) for m in module.children())
    return base + (" + ReLU" if relu else "")


def summarize(model: nn.Module, input_size: tuple[int, int] = (48, 48), channels: int = 1) -> list[LayerRow]:
    """One row per top-level child, in forward order, from a forward pass on one blank image."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, child in model.named_children():
        def hook(_module, _inputs, output, name=name):
            s = tuple(output.shape[1:])
            shapes[name] = (s[1], s[2], s[0]) if len(s) == 3 else s
        hooks.append(child.register_forward_hook(hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, *input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    # a child the forward pass does not run (FaceRes' identity feature ``feats``) is listed with the shape "not run"
    return [LayerRow(name, _kind(child), shapes.get(name, "not run"),
                     sum(p.numel() for p in child.parameters() if p.requires_grad))
            for name, child in model.named_children()]


def format_summary(rows: list[LayerRow], title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'layer':10s} {'type':28s} {'output shape':>16s} {'params':>12s}")
    lines.append("-" * 69)
    for r in rows:
        lines.append(f"{r.name:10s} {r.kind:28s} {str(r.output_shape):>16s} {r.params:>12,d}")
    lines.append("-" * 69)
    lines.append(f"{'total trainable parameters':56s} {sum(r.params for r in rows):>12,d}")
    return "\n".join(lines)
