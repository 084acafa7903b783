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
    go in front of each caption (e.g. track ids).

    Layout: each caption sits above its box (below it at the image's top edge) and is moved inside the image
    rather than cut at an edge; each face's panel of probability bars takes the first place beside, then below or
    above its box, that covers no face, no caption and no other panel (:func:`place_panel`; where none is free,
    the place that covers least)."""
    out = np.ascontiguousarray(rgb[..., ::-1]).copy()
    h, w = out.shape[:2]
    unit = max(1.0, min(h, w) / 480)  # line and text size follow the image size
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit, max(1, int(round(unit)))
    bar_h = max(6, int(8 * unit))
    bar_w = max(40, int(60 * unit))
    (name_w, _), _ = cv2.getTextSize("sur", font, 0.8 * scale, thick)
    panel = (bar_w + 3 + name_w + 2, len(labels) * (bar_h + 3))  # width, height
    tops, captions = [], []
    for i, face in enumerate(faces):
        x, y, bw, bh = face.box
        top = max(range(len(labels)), key=lambda k: face.probabilities[labels[k]])  # "uncertain" faces too
        caption = f"{prefixes[i] if prefixes else ''}{face.emotion} {face.probabilities[labels[top]] * 100:.0f}%"
        (tw, th), base = cv2.getTextSize(caption, font, scale, thick)
        ty = y - 4 if y - th - base - 4 >= 0 else y + bh + th + 4
        cx = int(min(max(0, x), max(0, w - tw - 4)))  # inside the image, never cut at its right edge
        tops.append(top)
        captions.append((caption, cx, ty, (cx, ty - th - base, tw + 4, th + 2 * base)))
    obstacles = [tuple(map(int, f.box)) for f in faces] + [rect for *_, rect in captions]
    panels = []
    for face in faces:
        left, ptop = place_panel(tuple(map(int, face.box)), panel, (w, h), obstacles + panels)
        panels.append((left, ptop, *panel))
    for face, top, (caption, cx, ty, (rx, ry, rw, rh)) in zip(faces, tops, captions):
        x, y, bw, bh = face.box
        cv2.rectangle(out, (x, y), (x + bw, y + bh), COLOURS[top], 2 * thick)
        cv2.rectangle(out, (rx, ry), (rx + rw, ry + rh), COLOURS[top], -1)
        cv2.putText(out, caption, (cx + 2, ty), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    for face, (left, ptop, _, _) in zip(faces, panels):
        rows = [(k, name, ptop + k * (bar_h + 3)) for k, name in enumerate(labels)]
        rows = [r for r in rows if 0 <= r[2] and r[2] + bar_h <= h]
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


def _overlap(a: tuple, b: tuple) -> int:
    """Overlapping area of two (x, y, w, h) rectangles, px^2."""
    dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, dx) * max(0, dy)


def place_panel(box: tuple, size: tuple, image: tuple, obstacles: list) -> tuple[int, int]:
    """Where a face's panel of ``size`` (w, h) goes: (left, top) of the first place inside ``image`` (w, h) -- right
    of the ``box`` (x, y, w, h), left of it, below it, above it, then inside it along its bottom -- that overlaps none
    of ``obstacles`` (faces, captions, panels placed before; the face's own box is no obstacle to the last place);
    where every place overlaps something, the one that overlaps least."""
    x, y, bw, bh = box
    pw, ph = size
    iw, ih = image
    gap = 6
    candidates = [(x + bw + gap, y), (x - pw - gap, y), (x, y + bh + gap), (x, y - ph - gap),
                  (x + bw + gap, y + bh - ph), (x - pw - gap, y + bh - ph), (x + bw - pw, y + bh - ph)]
    best, best_cost = None, None
    for k, (px, py) in enumerate(candidates):
        px, py = int(min(max(0, px), max(0, iw - pw))), int(min(max(0, py), max(0, ih - ph)))
        last = k == len(candidates) - 1  # inside the face itself: its own box is no obstacle there
        cost = sum(_overlap((px, py, pw, ph), o) for o in obstacles if not (last and tuple(o) == tuple(box)))
        if cost == 0:
            return px, py
        if best_cost is None or cost < best_cost:
            best, best_cost = (px, py), cost
    return best


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
