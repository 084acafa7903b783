"""Inference-side helpers shared by training, evaluation and calibration: one home, imported by the others.

- :func:`softmax` and :func:`views_to_proba` (NumPy): logits of one or several views (the face, its mirror
  image) to calibrated probabilities. ``Classifier`` (onnxruntime) and the PyTorch path use the same ones.
- :func:`to_input`, :func:`predict_logits`, :func:`predict_proba` (PyTorch, imported lazily): a model's
  logits/probabilities for uint8 faces in batches, optionally with flip test-time augmentation.
"""

from __future__ import annotations

import numpy as np

from ferkit.core.labels import EMOTIONS


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """A numerically stable softmax in float64."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=axis, keepdims=True)


def combine_probabilities(probs, weights, how: str = "log-mean") -> np.ndarray:
    """An ensemble's probabilities (N, C) from its members' (each (N, C)) and their weights (summing to 1):
    ``log-mean``, the weighted mean of the log-probabilities renormalised (a geometric mean), or ``mean``."""
    if how == "mean":
        return sum(w * np.asarray(p, dtype=np.float64) for w, p in zip(weights, probs))
    return softmax(sum(w * np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, None)) for w, p in zip(weights, probs)))


def views_to_proba(view_logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The mean over views of softmax(logits / temperature): (V, N, 7) -> (N, 7)."""
    return softmax(np.asarray(view_logits, np.float64) / temperature).mean(axis=0).astype(np.float32)


def to_input(images, mean: float, std: float, channels_last: bool):
    """uint8 grey faces (B, S, S) -> normalised float (B, 1, S, S), or RGB faces (B, S, S, 3) -> (B, 3, S, S), on the
    images' device."""
    import torch

    x = images.float().unsqueeze(1) if images.ndim == 3 else images.float().permute(0, 3, 1, 2)
    x = (x / 255.0 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def predict_logits(model, images: np.ndarray, mean: float, std: float, *, batch_size: int = 500,
                   bf16: bool = False, channels_last: bool = True, tta: bool = False, device: str = "cpu"
                   ) -> np.ndarray:
    """Logits (V, N, 7) for uint8 faces (N, 48, 48): V = 1 view, or 2 (face, mirrored face) with ``tta``.
    The faces go in as given: apply the model's preprocessing (:mod:`ferkit.runtime.preprocess`) first."""
    import torch

    with torch.no_grad():
        return _predict_logits(model, images, mean, std, batch_size, bf16, channels_last, tta, device)


def _predict_logits(model, images, mean, std, batch_size, bf16, channels_last, tta, device) -> np.ndarray:
    import torch

    was_training = model.training
    model.eval()
    out = []
    data = torch.from_numpy(np.ascontiguousarray(images))
    for start in range(0, len(data), batch_size):
        x = to_input(data[start:start + batch_size].to(device), mean, std, channels_last)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            views = [model(x).float()] + ([model(torch.flip(x, dims=[3])).float()] if tta else [])
        out.append(torch.stack(views).cpu())
    model.train(was_training)
    return torch.cat(out, dim=1).numpy() if out else np.zeros((1 + tta, 0, len(EMOTIONS)), np.float32)


def predict_proba(model, images: np.ndarray, mean: float, std: float, *, batch_size: int = 500,
                  bf16: bool = False, channels_last: bool = True, tta: bool = False, device: str = "cpu",
                  temperature: float = 1.0, with_plain: bool = False):
    """Softmax probabilities (N, 7) for uint8 faces (N, 48, 48); ``tta`` averages in the mirrored face.

    ``with_plain=True`` returns ``(probs, plain_probs)``, the second without TTA, from the same pass.
    """
    views = predict_logits(model, images, mean, std, batch_size=batch_size, bf16=bf16, channels_last=channels_last,
                           tta=tta, device=device)
    probs = views_to_proba(views, temperature)
    return (probs, views_to_proba(views[:1], temperature)) if with_plain else probs


__all__ = ["predict_logits", "predict_proba", "softmax", "to_input", "views_to_proba"]
