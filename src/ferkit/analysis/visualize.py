"""Figures that look inside a model: the paper's (sample faces, first-layer kernels, feature maps, the
confusion matrix) and training curves. Every function returns a matplotlib Figure and needs the `train`
extra (PyTorch, matplotlib); `ferkit visualize WHAT` saves them as PNG (at least 400 px on the short side).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS

DPI = 100


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def model_input(meta: dict, face: np.ndarray) -> np.ndarray:
    """One uint8 face (48x48 grey, or the model's own crop) as the float32 (C, S, S) input a model with this
    metadata was trained on (its spec: :meth:`ferkit.runtime.spec.ModelSpec.network_input`); a model without metadata
    takes grey 48x48 normalised with mean 0.5, std 0.25."""
    from ferkit.runtime.spec import ModelSpec

    meta = {"labels": ["angry"], "normalization": {"mean": 0.5, "std": 0.25}, **meta}
    return ModelSpec.from_metadata(meta).network_input(np.asarray(face))[0]


def samples(data, per_class: int = 8, seed: int = 0):
    """A grid of faces, one row per emotion (the paper's Figure 1)."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(EMOTIONS), per_class, figsize=(per_class * 0.9 + 1.2, len(EMOTIONS) * 0.9 + 0.6),
                             dpi=DPI, squeeze=False)
    for k, name in enumerate(EMOTIONS):
        idx = np.flatnonzero(data.labels == k)
        pick = rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[k, j]
            ax.axis("off")
            if j < len(pick):
                ax.imshow(data.images[pick[j]], cmap="gray", vmin=0, vmax=255)
        axes[k, 0].text(-4, 24, name, ha="right", va="center", fontsize=10)
    fig.suptitle(f"FER2013 faces per emotion ({len(data)} faces in the data)")
    fig.subplots_adjust(left=0.14, wspace=0.05, hspace=0.05)
    return fig


def layer_names(model) -> list[str]:
    """Names of the model's layers that produce feature maps (convolutions, pooling, activations...)."""
    return [name for name, m in model.named_modules() if name and not list(m.children())]


def first_conv(model):
    import torch

    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            return name, m
    raise ValueError("the model has no convolution")


def kernels(model, title: str = ""):
    """The first convolution's kernels as a grid, each scaled to its own range (the paper's Figure 6)."""
    plt = _plt()
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu().numpy()  # (out, in, k, k)
    w = w.mean(axis=1) if w.shape[1] > 1 else w[:, 0]
    rows, cols = _grid(len(w))
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.2, cols * 0.7), max(4.2, rows * 0.7 + 0.5)), dpi=DPI,
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, k in enumerate(w):
        lo, hi = k.min(), k.max()
        axes.ravel()[i].imshow((k - lo) / (hi - lo + 1e-12), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    fig.suptitle(f"{title}first-layer kernels: {name}, {len(w)} x {w.shape[-2]}x{w.shape[-1]} "
                 "(each scaled to its own min..max)", fontsize=9)
    return fig


def feature_maps(model, face: np.ndarray, layer: str | None = None, title: str = ""):
    """Every channel of one layer's output for one 48x48 face (the paper's Figures 4-5, 7-8)."""
    import torch

    plt = _plt()
    names = layer_names(model)
    layer = layer or first_conv(model)[0]
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r}; layers: {', '.join(names)}")
    module = dict(model.named_modules())[layer]
    meta = getattr(model, "ferkit_meta", {})
    x = torch.from_numpy(model_input(meta, face)[None])
    captured = {}
    handle = module.register_forward_hook(lambda m, i, o: captured.setdefault("out", o.detach()))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    out = captured["out"][0]
    if out.ndim != 3:
        raise ValueError(f"layer {layer!r} gives a {tuple(out.shape)} output, not feature maps; pick a conv/pool layer")
    maps = out.float().numpy()
    rows, cols = _grid(len(maps) + 1)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.5, cols * 0.8), max(4.5, rows * 0.8 + 0.5)), dpi=DPI,
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes.ravel()[0].imshow(face, cmap="gray", vmin=0, vmax=255)
    axes.ravel()[0].set_title("input", fontsize=7)
    vmax = float(np.abs(maps).max()) or 1.0
    for i, fm in enumerate(maps):
        axes.ravel()[i + 1].imshow(fm, cmap="magma", vmin=min(0.0, float(maps.min())), vmax=vmax)
    fig.suptitle(f"{title}{layer}: {maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]} "
                 "(one shared colour scale)", fontsize=9)
    return fig


def confusion(report: dict):
    """The confusion matrix as heat maps: counts and row-normalised (recall on the diagonal)."""
    plt = _plt()
    cm = np.array(report["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4), dpi=DPI)
    for ax, values, title, fmt in ((axes[0], cm, "counts", "{:.0f}"), (axes[1], norm, "share of the true class", "{:.2f}")):
        im = ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for i in range(len(EMOTIONS)):
            for j in range(len(EMOTIONS)):
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > values.max() * 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{report.get('model', '')} on {report.get('split', '')}: accuracy {report['accuracy'] * 100:.2f}%")
    fig.tight_layout()
    return fig


def curves(run: str | Path):
    """Loss and accuracy per epoch from a run folder's metrics.jsonl."""
    plt = _plt()
    path = Path(run) / "metrics.jsonl" if Path(run).is_dir() else Path(run)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics log (a run folder holds metrics.jsonl)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path}: the metrics log is empty")
    ep = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=DPI)
    dots = {"marker": "o", "markersize": 4}  # a run of one epoch is one point: a line alone would draw nothing
    a.plot(ep, [r["train_loss"] for r in rows], label="train (augmented batches)", **dots)
    a.plot(ep, [r["val_loss"] for r in rows], label="validation", **dots)
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(ep, [r["train_acc"] for r in rows], label="train (augmented batches)", **dots)
    b.plot(ep, [r["val_acc"] for r in rows], label="validation", **dots)
    if "test_acc" in rows[0]:
        b.plot(ep, [r.get("test_acc") for r in rows], label="test (logged, never selects)", linestyle="--", **dots)
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    b.legend()
    fig.suptitle(f"training curves: {path.parent.name}")
    fig.tight_layout()
    return fig


def last_conv(model):
    import torch

    found = None
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv2d,)) or type(m).__name__ == "LocallyConnected2d":
            found = (name, m)
    if found is None:
        raise ValueError("the model has no convolution")
    return found


def grad_cam(model, face: np.ndarray, target: int | None = None, layer: str | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM (Selvaraju et al. 2017): the last convolutional layer's channels weighted by the mean
    gradient of the class score, ReLU, upsampled to 48x48 and scaled to 0..1. Returns (map, class)."""
    import torch
    import torch.nn.functional as F

    name, module = (layer, dict(model.named_modules())[layer]) if layer else last_conv(model)
    x = torch.from_numpy(model_input(getattr(model, "ferkit_meta", {}), face)[None])
    saved = {}

    def keep(module, inputs, output):  # the activation, and its gradient once backward runs
        saved["act"] = output
        output.register_hook(lambda g: saved.update(grad=g))

    handle = module.register_forward_hook(keep)
    try:
        model.eval()
        logits = model(x)
        cls = int(logits.argmax()) if target is None else int(target)
        model.zero_grad(set_to_none=True)
        logits[0, cls].backward()
    finally:
        handle.remove()
    act, grad = saved["act"][0].detach(), saved["grad"][0]
    cam = F.relu((grad.mean(dim=(1, 2))[:, None, None] * act).sum(0))
    cam = F.interpolate(cam[None, None], size=face.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    return cam / (cam.max() + 1e-12), cls


def saliency(model, faces: list[np.ndarray], target: int | None = None, title: str = ""):
    """Grad-CAM overlays for one or several faces, each for its predicted (or the given) class."""
    plt = _plt()
    rows, cols = _grid(len(faces))
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.5, cols * 2.2), max(4.5, rows * 2.4)), dpi=DPI,
                             squeeze=False, layout="constrained")  # room for the colour bar and its label
    for ax in axes.ravel():
        ax.axis("off")
    im = None
    for ax, face in zip(axes.ravel(), faces):
        cam, cls = grad_cam(model, face, target)
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        im = ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(EMOTIONS[cls], fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes, fraction=0.03, label="Grad-CAM (0..1)")
    fig.suptitle(f"{title}where the model looks (Grad-CAM, last convolution)", fontsize=9)
    return fig


def save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    _plt().close(fig)
    return out


def _share(x) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _png_data(fig) -> str:
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def report(model, data, *, model_name: str | None = None, run: str | Path | None = None, examples: int = 4,
           seed: int = 0) -> str:
    """One self-contained HTML page for a trained model on a data set: summary, metrics, confusion,
    second-guess table, right and wrong examples per class with their probabilities, curves, saliency.

    Every number, figure and title is of the one network ``model``: ``model_name`` is the name or file it was
    loaded from (its numbers then come from that model as ``ferkit predict`` runs it, onnxruntime for a shipped
    name), or None (they come from ``model`` itself, on PyTorch)."""
    import html

    from ferkit.analysis.evaluate import compute_metrics, load_predictor, net_predictor

    meta = getattr(model, "ferkit_meta", {})
    name = model_name or meta.get("name", meta.get("arch", "model"))
    if model_name is not None:
        predict, _ = load_predictor(model_name)  # the same network, as users run it
        runs_on = "onnxruntime, as ferkit predict runs it" if not str(model_name).endswith(".safetensors") else "PyTorch"
    else:
        predict, runs_on = net_predictor(model), "PyTorch"
    probs = predict(data.images)
    rep = {**compute_metrics(probs, data.labels), "model": name, "split": getattr(data, "source", "")}
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in (
        ("model", name), ("numbers from", f"{name} on {runs_on}"), ("architecture", meta.get("arch")),
        ("trained by", meta.get("command")),
        ("training minutes", f"{meta.get('train_minutes', float('nan')):.1f}"), ("hardware", meta.get("hardware")),
        ("temperature", meta.get("temperature")), ("flip TTA", meta.get("tta")), ("data", data.source),
        ("faces", len(data))))
    per_class = "".join(f"<tr><td>{c}</td><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td><td>{m['f1']:.3f}</td>"
                        f"<td>{m['support']}</td></tr>" for c, m in rep["per_class"].items())
    sg = rep["second_guess"]
    guesses = "".join(f"<tr><td>{p['true']} &rarr; {p['predicted']}</td><td>{p['second_right']} / {p['errors']}</td>"
                      f"<td>{_share(p['share'])}</td></tr>"
                      for p in sg["pairs"] + [{"true": "all", "predicted": "any", **sg["overall"]}])
    rng = np.random.default_rng(seed)
    pred = probs.argmax(1)
    plt = _plt()
    fig, axes = plt.subplots(len(EMOTIONS), 2 * examples, figsize=(2 * examples * 1.3, len(EMOTIONS) * 1.5), dpi=DPI,
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, cname in enumerate(EMOTIONS):
        for j, ok in enumerate((True, False)):
            idx = np.flatnonzero((data.labels == k) & ((pred == k) == ok))
            for e, i in enumerate(rng.choice(idx, min(examples, len(idx)), replace=False) if len(idx) else []):
                ax = axes[k, j * examples + e]
                ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"{EMOTIONS[pred[i]]} {probs[i, pred[i]] * 100:.0f}%", fontsize=7,
                             color="green" if ok else "red")
        axes[k, 0].text(-6, 24, cname, ha="right", va="center", fontsize=9)
    fig.suptitle("per true class: right predictions (left, green) and wrong ones (right, red), with the top probability")
    examples_png = _png_data(fig)
    images = [("Confusion", _png_data(confusion(rep)))]
    if run is not None and (Path(run) / "metrics.jsonl").exists():
        images.append(("Training curves", _png_data(curves(run))))
    images.append(("Where the model looks (Grad-CAM)", _png_data(saliency(model, list(data.images[:12])))))
    images.append(("First-layer kernels", _png_data(kernels(model))))
    figures = "".join(f"<h2>{t}</h2><img alt='{t}' src='{src}'>" for t, src in images)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ferkit report: {esc(name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>ferkit report: {esc(name)}</h1><table>{rows}</table>
<h2>Metrics</h2><p>accuracy <b>{rep['accuracy'] * 100:.2f}%</b>, top-2 {rep['top2_accuracy'] * 100:.2f}%,
macro F1 {rep['macro_f1']:.3f}, ECE {rep['ece'] * 100:.2f}% (15 bins), NLL {rep['nll']:.4f}</p>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>faces</th></tr>{per_class}</table>
<h2>Second guess right among the errors</h2><table><tr><th>error</th><th>2nd guess right</th><th>share</th></tr>
{guesses}</table><h2>Examples</h2><img alt="examples" src="{examples_png}">{figures}</body></html>
"""
