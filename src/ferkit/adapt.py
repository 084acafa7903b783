"""Fine-tune a trained model on a user's own labelled photos (``ferkit finetune``, :func:`ferkit.adapt.finetune`).

The photos are read as :mod:`ferkit.analysis.photos` reads a photo set (``<emotion>/*.jpg`` folders, or ``labels.csv``
with boxes); each face is detected and framed exactly as ``ferkit predict`` frames it, once (the crops are
cached under ``FERKIT_CACHE``, default ``~/.cache/ferkit``, keyed by the files' paths, sizes and times).
A stratified part of the faces is held out: it chooses the epoch (early stopping, the base model itself
included as epoch 0, so the result is never worse than the base on it) and fits the temperature.

Two modes:

- ``head`` (default): only the last linear layer learns, on features of the frozen network computed once
  for each face and its mirror image; the weights are pulled towards the base's (an L2 penalty on the
  change), so a handful of photos adapts the model without erasing what it learnt. Seconds on a CPU.
- ``all``: every layer learns with a small learning rate, batched augmentation (flip, rotation, zoom,
  shift, erasing) and BatchNorm statistics frozen. Minutes on a CPU for a few hundred faces.

The result is a model folder (``model.onnx``, ``model.safetensors``, ``manifest.json``, ``finetune.json``,
``skipped.csv``) that every command takes with ``--model FOLDER``. A base that runs as int8 (``fer-faceres-int8``,
``fer-real-int8``) is tuned in fp32 (the network it was quantized from) and its ``model.onnx`` is quantized again,
as the base was, calibrated on the training faces (``finetune.json`` records ``precision`` and the int8 model's
held-out accuracy); ``model.safetensors`` stays fp16 for PyTorch.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferkit.data.fer2013 import DataError, cache_dir, cached_arrays, files_key
from ferkit.data.dedupe import drop_conflicting_duplicates, file_hashes, keep_duplicates_together  # noqa: F401
from ferkit.data.photoset import split_held_out  # noqa: F401 - re-exported
from ferkit.core.labels import EMOTIONS
from ferkit.weights import DEFAULT_DETECTOR

LAYERS = ("head", "all")
DEFAULTS = {"head": {"epochs": 200, "lr": 0.01, "patience": 40},
            "all": {"epochs": 30, "lr": 1e-4, "patience": 8}}
L2_TO_BASE = 0.01  # head mode: weight of ||W - W_base||^2 in the loss
MIN_FACES_FOR_TEMPERATURE = 20  # fewer held-out faces than this: keep the base's temperature


@dataclass
class FaceSet:
    """The faces of a photo folder that were found and cropped, and every photo that was left out, with why."""

    crops: np.ndarray  # (N, *spec.face_shape) uint8: (N, 48, 48) grey, or the model's own input, e.g. 112x112 RGB
    labels: np.ndarray  # (N,) int64
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        return {EMOTIONS[c]: int((self.labels == c).sum()) for c in range(len(EMOTIONS))}


def collect_faces(data: str | os.PathLike, *, detector: str = DEFAULT_DETECTOR, max_side: int = 320, cache: bool = True,
                  progress: bool = False, framing: str = "box", scales: str = "auto", size: int = 48,
                  colour: bool = False) -> FaceSet:
    """Detect and crop the labelled faces of a photo folder as ``ferkit predict`` does for a model trained on
    ``framing`` that takes ``size`` x ``size`` crops, RGB with ``colour`` (cached; ``max_side``, ``scales``: as
    :class:`ferkit.pipeline.recognize.Recognizer`).

    Photos that cannot be read, hold no face, or whose labelled box no detection overlaps are listed in
    ``skipped`` with the reason; so are image files outside the ``<emotion>/`` folders.
    """
    from ferkit.runtime.crop import FRAME_FILE
    from ferkit.core.images import IMAGE_SUFFIXES
    from ferkit.analysis.photos import find_faces, read_photo_set

    root = Path(data)
    faces = read_photo_set(root)
    stray = [] if (root / "labels.csv").exists() else sorted(
        str(p) for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    key_items = [detector, max_side, FRAME_FILE.read_text(), f"scales={scales}"] + ([framing] if framing != "box" else [])
    key_items += [size, colour] if (size, colour) != (48, False) else []
    digest = hashlib.sha256(json.dumps(key_items + files_key(faces)).encode()).hexdigest()[:24]

    def detect_and_crop() -> dict[str, np.ndarray]:
        result = find_faces(root, detector=detector, max_side=max_side, progress=progress, framing=framing,
                            scales=scales, size=size, colour=colour)
        missing = {str(k): v for k, v in result.missing.items()}
        return {"found": result.found, "crops": result.crops, "missing": np.array(json.dumps(missing))}

    z = cached_arrays(cache_dir("faces") / f"{digest}.npz", detect_and_crop, cache=cache)
    found, crops, missing = z["found"], z["crops"], json.loads(str(z["missing"]))
    skipped = [(str(faces[int(i)].path), reason) for i, reason in sorted(missing.items(), key=lambda kv: int(kv[0]))]
    skipped += [(p, "not in an <emotion>/ folder: its label is unknown") for p in stray]
    keep = np.flatnonzero(found)
    return FaceSet(crops[keep], np.array([faces[i].label for i in keep], np.int64),
                   [str(faces[i].path) for i in keep], skipped, str(root))


def _last_linear(net):
    from torch import nn

    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the base model has no linear output layer to fine-tune")
    return linears[-1]


def _inputs(meta: dict, crops: np.ndarray):
    """uint8 crops -> the normalised float tensor (N, C, S, S) the base model was trained on (its spec: input,
    preprocessing, normalisation; :meth:`ferkit.runtime.spec.ModelSpec.network_input`)."""
    import torch

    from ferkit.runtime.spec import ModelSpec

    return torch.from_numpy(ModelSpec.from_metadata(meta).network_input(crops))


def _features(net, x, batch: int = 256):
    """The input of the last linear layer for a batch of faces: (N, D)."""
    import torch

    last, store = _last_linear(net), []
    hook = last.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach().float()))
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                net(x[i:i + batch])
    finally:
        hook.remove()
    return torch.cat(store) if store else torch.zeros((0, last.in_features))


def _score(view_logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> tuple[float, float]:
    """(accuracy, NLL) of the mean-over-views probabilities."""
    from ferkit.analysis.calibrate import nll
    from ferkit.core.inference import views_to_proba

    if len(labels) == 0:
        return float("nan"), float("nan")
    p = views_to_proba(view_logits, temperature)
    return float((p.argmax(1) == labels).mean()), nll(p, labels)


def tune(net, crops: np.ndarray, labels: np.ndarray, train_idx: np.ndarray, held_idx: np.ndarray, *,
         layers: str = "head", epochs: int | None = None, lr: float | None = None, patience: int | None = None,
         seed: int = 0) -> dict:
    """Fine-tune ``net`` (a loaded model with ``ferkit_meta``, changed in place) on the faces ``crops[train_idx]``,
    choosing the epoch on ``crops[held_idx]`` (the base itself is epoch 0) and fitting the temperature there
    when there are enough held-out faces. Returns what happened: accuracies before/after, best epoch, history,
    temperature and how it was fitted. The building block of :func:`finetune` and ``benchmarks/finetune.py``."""
    import torch
    import torch.nn.functional as F

    from ferkit.analysis.calibrate import fit_temperature, temperature_refusal

    if layers not in LAYERS:
        raise ValueError(f"unknown --layers {layers!r}; expected one of {', '.join(LAYERS)}")
    settings = {**DEFAULTS[layers], **{k: v for k, v in (("epochs", epochs), ("lr", lr), ("patience", patience))
                                       if v is not None}}
    torch.manual_seed(seed)
    meta = net.ferkit_meta
    tta = bool(meta.get("tta", False))
    x = _inputs(meta, crops)
    y = torch.from_numpy(np.asarray(labels, np.int64))
    y_held = np.asarray(labels)[held_idx]
    last = _last_linear(net)

    held_feats = None  # head mode: the frozen network's features of the held-out faces, computed once

    def held_logits() -> np.ndarray:
        net.eval()
        with torch.no_grad():
            if held_feats is not None:
                return (held_feats @ last.weight.T + last.bias).float().numpy()
            views = [net(x[held_idx])] + ([net(x[held_idx].flip(-1))] if tta else [])
        return torch.stack(views).float().numpy()

    base_acc, base_nll = _score(held_logits(), y_held) if len(held_idx) else (float("nan"), float("nan"))
    best = {"epoch": 0, "acc": base_acc, "nll": base_nll, "state": {k: v.clone() for k, v in net.state_dict().items()}}
    history = []

    def consider(epoch: int) -> None:
        if not len(held_idx):
            best.update(epoch=epoch, state={k: v.clone() for k, v in net.state_dict().items()})
            return
        acc, loss = _score(held_logits(), y_held)
        history.append({"epoch": epoch, "held_out_accuracy": acc, "held_out_nll": loss})
        if acc > best["acc"] or (acc == best["acc"] and loss < best["nll"]):
            best.update(epoch=epoch, acc=acc, nll=loss, state={k: v.clone() for k, v in net.state_dict().items()})

    g = torch.Generator().manual_seed(seed)
    batch = 32
    if layers == "head":
        net.eval()
        feats = torch.stack([_features(net, x[train_idx]), _features(net, x[train_idx].flip(-1))])  # (2, N, D)
        if len(held_idx):
            views = [x[held_idx]] + ([x[held_idx].flip(-1)] if tta else [])
            held_feats = torch.stack([_features(net, v) for v in views])  # (V, M, D)
        w0 = last.weight.detach().clone()
        w, b = last.weight, last.bias
        for p in net.parameters():
            p.requires_grad_(False)
        w.requires_grad_(True)
        b.requires_grad_(True)
        params, y_train = [w, b], y[train_idx]

        def start_epoch() -> None:
            pass

        def batch_loss(pos: torch.Tensor) -> torch.Tensor:  # pos: positions in train_idx
            view = torch.randint(0, 2, (len(pos),), generator=g)  # the face or its mirror image
            return F.cross_entropy(feats[view, pos] @ w.T + b, y_train[pos]) + L2_TO_BASE * ((w - w0) ** 2).sum()
    else:
        from ferkit.data.augment import AugmentConfig, augment

        aug = AugmentConfig()
        params, train_rows = [p for p in net.parameters() if p.requires_grad], torch.from_numpy(train_idx)

        def start_epoch() -> None:
            net.train()
            for m in net.modules():  # a few hundred faces cannot re-estimate BatchNorm statistics
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

        def batch_loss(pos: torch.Tensor) -> torch.Tensor:
            j = train_rows[pos]
            return F.cross_entropy(net(augment(x[j], aug, g)), y[j])
    opt = torch.optim.Adam(params, lr=settings["lr"])
    for epoch in range(1, settings["epochs"] + 1):
        start_epoch()
        order = torch.randperm(len(train_idx), generator=g)
        for i in range(0, len(order), batch):
            loss = batch_loss(order[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        consider(epoch)
        if len(held_idx) and epoch - best["epoch"] >= settings["patience"]:
            break
    net.load_state_dict(best["state"])
    net.eval()

    temperature = float(meta.get("temperature", 1.0))
    calibration = {"temperature": temperature, "fitted_on": "kept from the base model"}
    held = held_logits() if len(held_idx) else None  # the chosen epoch's, for the temperature and the score
    if held is not None:  # a fitted temperature is kept only if it calibrates the held-out faces better than the base's
        fitted = fit_temperature(held, y_held)
        why = temperature_refusal(held, y_held, fitted, min_faces=MIN_FACES_FOR_TEMPERATURE, current=temperature)
        if why:
            calibration["why"] = why
        else:
            temperature = fitted
            calibration = {"temperature": temperature, "fitted_on": f"{len(held_idx)} held-out faces"}
    after_acc, after_nll = _score(held, y_held, temperature) if held is not None else (float("nan"),) * 2

    return {"layers": layers, **settings, "held_out_accuracy_before": base_acc, "held_out_accuracy_after": after_acc,
            "held_out_nll_before": base_nll, "held_out_nll_after": after_nll, "best_epoch": best["epoch"],
            "epochs_run": history[-1]["epoch"] if history else best["epoch"], "temperature": temperature,
            "calibration": calibration, "history": history}


def finetune(data: str | os.PathLike, out: str | os.PathLike, *, base: str | None = None, layers: str = "head",
             epochs: int | None = None, lr: float | None = None, patience: int | None = None,
             val_fraction: float = 0.2, seed: int = 0, detector: str = DEFAULT_DETECTOR, max_side: int = 320,
             faces: FaceSet | None = None, command: str = "", log=print, progress: bool = False,
             scales: str = "auto", overwrite: bool = False) -> dict:
    """Fine-tune ``base`` (a shipped name, None for the default, a .safetensors file or a model folder) on the
    labelled photos in ``data`` and write a model folder ``out``. Returns the report (also ``out/finetune.json``).

    ``faces``: already collected faces (:func:`collect_faces`), e.g. one fold of a benchmark; ``data`` then
    only names them in the metadata. ``out`` is checked before any work: a file, a folder that cannot be written,
    or a folder that already holds a model (unless ``overwrite``) raise :class:`~ferkit.pipeline.outputs.OutputError`.
    Raises :class:`~ferkit.data.fer2013.DataError` for unusable data.
    """
    from ferkit.models import load_model, model_tensors
    from ferkit.weights import resolve, save_weights

    if layers not in LAYERS:
        raise ValueError(f"unknown --layers {layers!r}; expected one of {', '.join(LAYERS)}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    settings = {"epochs": epochs, "lr": lr, "patience": patience}
    out = Path(out)
    check_model_folder(out, overwrite)
    started = time.perf_counter()
    base_path = resolve(base, "safetensors")
    if faces is None:
        from ferkit.runtime.spec import ModelSpec
        from ferkit.weights import read_metadata

        spec = ModelSpec.from_metadata(read_metadata(base_path), base_path)
        faces = collect_faces(data, detector=detector, max_side=max_side, progress=progress, framing=spec.framing,
                              scales=scales, size=spec.size, colour=spec.colour)
    for path, reason in faces.skipped:
        log(f"skipped {path}: {reason}")
    present = sorted({int(c) for c in faces.labels})
    if len(present) < 2:
        raise DataError(f"{data}: fine-tuning needs faces of at least 2 emotions; found "
                        f"{', '.join(EMOTIONS[c] for c in present) or 'none'} in {len(faces)} face(s)")
    hashes = file_hashes(faces.paths)  # read once: both duplicate rules use them
    faces, hashes, conflicts = drop_conflicting_duplicates(faces, hashes)
    for path, reason in conflicts:
        log(f"skipped {path}: {reason}")
    train_idx, held_idx, warnings = split_held_out(faces.labels, val_fraction, seed)
    train_idx, held_idx = keep_duplicates_together(hashes, train_idx, held_idx)
    for w in warnings:
        log(f"warning: {w}")
    if len(held_idx) == 0:
        log("warning: nothing held out: the last epoch is kept and the base's temperature stays")

    if base_path.suffix == ".onnx":
        raise ValueError(f"{base_path}: fine-tuning needs the PyTorch weights (.safetensors), not an ONNX file")
    net = load_model(str(base_path))
    meta = dict(net.ferkit_meta)
    result = tune(net, faces.crops, faces.labels, train_idx, held_idx, layers=layers, seed=seed, **settings)
    if "why" not in result["calibration"] and len(held_idx):
        result["calibration"]["fitted_on"] = f"{len(held_idx)} held-out faces of {data}"
    temperature, calibration, history = result.pop("temperature"), result.pop("calibration"), result.pop("history")
    base_acc, after_acc = result["held_out_accuracy_before"], result["held_out_accuracy_after"]
    report = {
        "base": str(base if base is not None else meta.get("name")), "base_file": str(base_path), "data": str(data),
        **result, "val_fraction": val_fraction, "seed": seed,
        "faces": len(faces), "per_emotion": faces.counts(), "trained_on": int(len(train_idx)),
        "held_out": int(len(held_idx)), "skipped": len(faces.skipped), "warnings": warnings,
        "seconds": time.perf_counter() - started, "history": history,
    }
    out.mkdir(parents=True, exist_ok=True)
    new_meta = {**meta, "name": out.name, "base": report["base"], "command": command or meta.get("command", ""),
                "temperature": temperature, "calibration": calibration,
                "accuracy": {"held_out_before": base_acc, "held_out_after": after_acc},
                "finetune": {k: v for k, v in report.items() if k != "history"}}
    fp32 = out / "model-fp32.safetensors"
    save_weights(fp32, model_tensors(net), new_meta)
    from ferkit.analysis.export import export_weights

    export_weights(fp32, "model", out)
    fp32.unlink()
    from ferkit.analysis.export import quantize_model_folder, runs_int8

    if runs_int8(base):  # quantized as the base was, calibrated on the faces it was tuned on
        report["precision"] = "int8"
        report["held_out_accuracy_int8"] = quantize_model_folder(out, faces.crops[train_idx], faces.crops[held_idx],
                                                                 faces.labels[held_idx])
    report["seconds"] = time.perf_counter() - started  # everything but writing these two small files
    (out / "finetune.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(out / "skipped.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows(faces.skipped)
    log(f"{len(faces)} faces ({len(train_idx)} trained on, {len(held_idx)} held out), {len(faces.skipped)} skipped; "
        f"held-out accuracy {base_acc * 100:.1f}% -> {after_acc * 100:.1f}% (best epoch {report['best_epoch']}); "
        f"{report['seconds']:.1f} s; model folder {out}"
        + (f" (int8: held-out accuracy {report['held_out_accuracy_int8'] * 100:.1f}%)" if "precision" in report else ""))
    return report


MODEL_FILES = ("model.onnx", "model.safetensors", "manifest.json", "finetune.json", "skipped.csv")


def check_model_folder(out: Path, overwrite: bool = False) -> None:
    """Before any work: ``out`` must be a folder that can be written (created if missing) and, unless ``overwrite``,
    must not hold a model already. Raises :class:`~ferkit.pipeline.outputs.OutputError` naming it."""
    from ferkit.pipeline.outputs import OutputError, check_writable

    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: --out is a file; fine-tuning writes a model folder")
    held = [name for name in MODEL_FILES if (out / name).exists()]
    if held and not overwrite:
        raise OutputError(f"{out}: holds a model already ({', '.join(held)}); add --overwrite to replace it, or "
                          "choose another --out")
    check_writable(out, folder=True, what="--out")


__all__ = ["FaceSet", "LAYERS", "MODEL_FILES", "check_model_folder", "collect_faces", "drop_conflicting_duplicates",
           "finetune", "keep_duplicates_together", "split_held_out", "tune"]
