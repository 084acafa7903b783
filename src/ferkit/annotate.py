"""Draw results on the photo: a box per face, its top emotion, and a bar per emotion beside the box."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


# One colour per emotion (BGR), in FER2013 order: angry, disgust, fear, happy, sad, surprise, neutral.
COLOURS = [(40, 40, 220), (40, 140, 40), (160, 60, 160), (40, 200, 240), (200, 120, 40), (40, 160, 250),
           (170, 170, 170)]


def annotate(rgb: np.ndarray, faces, labels: list[str], prefixes: list[str] | None = None) -> np.ndarray:
    """A BGR copy of the RGB image with ``faces`` drawn on it: anything with ``box``, ``emotion`` and
    ``probabilities`` (photo results; video passes each track's smoothed probabilities). ``prefixes``
    go in front of each caption (e.g. track ids)."""
    out = np.ascontiguousarray(rgb[..., ::-1]).copy()
    h, w = out.shape[:2]
    unit = max(1.0, min(h, w) / 480)  # line and text size follow the image size
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit, max(1, int(round(unit)))
    for i, face in enumerate(faces):
        x, y, bw, bh = face.box
        top = max(range(len(labels)), key=lambda k: face.probabilities[labels[k]])  # "uncertain" faces too
        cv2.rectangle(out, (x, y), (x + bw, y + bh), COLOURS[top], 2 * thick)
        caption = f"{prefixes[i] if prefixes else ''}{face.emotion} {face.probabilities[labels[top]] * 100:.0f}%"
        (tw, th), base = cv2.getTextSize(caption, font, scale, thick)
        ty = y - 4 if y - th - base - 4 >= 0 else y + bh + th + 4
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 4, ty + base), COLOURS[top], -1)
        cv2.putText(out, caption, (x + 2, ty), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
        bar_h = max(6, int(8 * unit))
        bar_w = max(40, int(60 * unit))
        left = x + bw + 6 if x + bw + 6 + bar_w + 60 * unit < w else max(0, x - bar_w - int(60 * unit) - 6)
        rows = [(k, name, y + k * (bar_h + 3)) for k, name in enumerate(labels)]
        rows = [r for r in rows if r[2] + bar_h <= h]
        tx = left + bar_w + 3  # names white on dark boxes: readable on any photo
        for k, name, by in rows:  # bars and name boxes first, then every name: no box covers a descender above it
            p = face.probabilities[name]
            cv2.rectangle(out, (left, by), (left + bar_w, by + bar_h), (60, 60, 60), -1)
            cv2.rectangle(out, (left, by), (left + int(round(p * bar_w)), by + bar_h), COLOURS[k], -1)
            (nw, nh), nbase = cv2.getTextSize(name[:3], font, 0.8 * scale, thick)
            cv2.rectangle(out, (tx - 1, by + bar_h - 1 - nh - 1), (tx + nw + 1, by + bar_h - 1 + nbase), (40, 40, 40), -1)
        for k, name, by in rows:
            cv2.putText(out, name[:3], (tx, by + bar_h - 1), font, 0.8 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def annotated_paths(folder: Path, image_paths: list) -> list[Path]:
    """Where each input's annotated PNG goes: ``folder/`` mirrors the inputs' folders below their common folder,
    with the suffix ``.png`` (``shots/a/x.jpg`` and ``shots/b/x.jpg`` -> ``folder/a/x.png``, ``folder/b/x.png``;
    a single photo -> ``folder/x.png``). Two inputs that would meet (``x.jpg`` and ``x.png`` side by side)
    keep their own suffix too (``x.jpg.png``)."""
    import os

    resolved = [Path(p).resolve() for p in image_paths]
    if not resolved:
        return []
    common = Path(os.path.commonpath([p.parent for p in resolved]))
    names = [p.relative_to(common).with_suffix(".png") for p in resolved]
    seen: dict[Path, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [folder / (p.relative_to(common).with_name(p.name + ".png") if seen[n] > 1 else n)
            for p, n in zip(resolved, names)]
