"""A model's input preprocessing: the one function every path (training, evaluation, inference) applies.

A model is trained on faces that went through some fixed per-face transform, and it must see the same
transform at run time. The transform is part of the model: its metadata holds it under ``preprocessing``
and :func:`apply` is the only place it is computed, from ``ferkit train`` to ``Classifier``,
``Recognizer``, ``ferkit video``, ``ferkit serve``, ``ferkit evaluate`` and ``ferkit visualize``.

Specs (``ferkit train --preprocessing``), written into the metadata as a dict:

- ``none``: the grey levels as they are.
- ``equalize_hist``: OpenCV's global histogram equalisation of each 48x48 face (``cv2.equalizeHist``).
  The first ``seed`` and ``fer-m`` weights (``fer-m`` is no longer shipped) were trained on an equalised copy of
  FER2013 and declare it.
- ``clahe`` or ``clahe:CLIP:TILES``: contrast-limited adaptive histogram equalisation
  (``cv2.createCLAHE(clipLimit=CLIP, tileGridSize=(TILES, TILES))``), default clip 2.0 on a 4x4 grid
  (12x12-pixel tiles on a 48x48 face).

A model without the key was trained on the grey levels as they are (``none``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

NAMES = ("none", "equalize_hist", "clahe")
CLAHE_DEFAULTS = {"clip_limit": 2.0, "tile_grid": 4}


def parse(spec: str | dict | None) -> dict[str, Any]:
    """A spec (``"clahe:3:8"``, a metadata dict, or None) as the canonical metadata dict."""
    if spec is None:
        return {"name": "none"}
    if isinstance(spec, dict):
        name = spec.get("name")
        params = {k: v for k, v in spec.items() if k != "name"}
    else:
        name, *args = str(spec).strip().split(":")
        params = {}
        if args:
            if name != "clahe" or len(args) > 2:
                raise ValueError(f"preprocessing {spec!r}: only clahe takes parameters (clahe:CLIP:TILES)")
            try:
                params["clip_limit"] = float(args[0])
                if len(args) == 2:
                    params["tile_grid"] = int(args[1])
            except ValueError:
                raise ValueError(f"preprocessing {spec!r}: expected clahe:CLIP:TILES with numbers, "
                                 "e.g. clahe:2.0:4") from None
    if name not in NAMES:
        raise ValueError(f"unknown preprocessing {name!r}; expected one of {', '.join(NAMES)}")
    if name != "clahe":
        if params:
            raise ValueError(f"preprocessing {name!r} takes no parameters, got {', '.join(params)}")
        return {"name": name}
    unknown = set(params) - set(CLAHE_DEFAULTS)
    if unknown:
        raise ValueError(f"clahe: unknown parameter(s) {', '.join(sorted(unknown))}")
    out = {"name": "clahe", **CLAHE_DEFAULTS, **params}
    out["clip_limit"], out["tile_grid"] = float(out["clip_limit"]), int(out["tile_grid"])
    if out["clip_limit"] <= 0 or not 1 <= out["tile_grid"] <= 48:
        raise ValueError(f"clahe: clip_limit must be > 0 and tile_grid 1..48, got {out['clip_limit']}, {out['tile_grid']}")
    return out


def describe(spec: str | dict | None) -> str:
    """``none``, ``equalize_hist`` or ``clahe (clip 2.0, 4x4 tiles)``."""
    p = parse(spec)
    if p["name"] == "clahe":
        return f"clahe (clip {p['clip_limit']:g}, {p['tile_grid']}x{p['tile_grid']} tiles)"
    return p["name"]


def of(metadata: dict | None) -> dict[str, Any]:
    """The preprocessing a model's metadata declares (``none`` when it declares none)."""
    return parse((metadata or {}).get("preprocessing"))


def apply(faces: np.ndarray, spec: str | dict | None) -> np.ndarray:
    """Apply a preprocessing to uint8 grey faces, (H, W) or (N, H, W); returns a new uint8 array."""
    p = parse(spec)
    faces = np.asarray(faces)
    if faces.dtype != np.uint8:
        raise ValueError(f"preprocessing works on uint8 grey levels, got {faces.dtype}")
    if p["name"] == "none":
        return faces.copy()
    import cv2

    single = faces.ndim == 2
    batch = faces[None] if single else faces
    if batch.ndim != 3:
        raise ValueError(f"faces must be (H, W) or (N, H, W), got shape {faces.shape}")
    if p["name"] == "equalize_hist":
        op = cv2.equalizeHist
    else:
        clahe = cv2.createCLAHE(clipLimit=p["clip_limit"], tileGridSize=(p["tile_grid"], p["tile_grid"]))
        op = clahe.apply
    out = np.empty_like(batch)
    for i, face in enumerate(batch):
        out[i] = op(np.ascontiguousarray(face))
    return out[0] if single else out


__all__ = ["NAMES", "apply", "describe", "of", "parse"]
