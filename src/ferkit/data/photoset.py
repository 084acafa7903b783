"""Labelled photo sets: a folder with ``labels.csv`` (path,emotion and optionally x,y,w,h boxes) or ``<emotion>/``
folders, read into :class:`LabelledFace` records (``evaluate --photos``, ``finetune``, training crop folders), and the
stratified held-out split fine-tuning uses.

Moved out of :mod:`ferkit.data.fer2013` (issue 33: one job per module); import these names from here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.data.fer2013 import DataError
from ferkit.core.labels import EMOTIONS, label_from_name

@dataclass(frozen=True)
class LabelledFace:
    path: Path
    label: int
    box: tuple[float, float, float, float] | None  # x, y, w, h; None: the largest face in the photo


def read_photo_set(root: str | Path) -> list[LabelledFace]:
    """The labelled faces of a photo set folder (``labels.csv``, or ``<emotion>/`` folders)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; a photo set is a folder with labels.csv or <emotion>/ folders")
    table = root / "labels.csv"
    if table.exists():
        return _read_labels_csv(table)
    from ferkit.core.images import IMAGE_SUFFIXES

    faces = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = label_from_name(folder.name)
        except KeyError as exc:
            raise DataError(f"{folder}: {exc.args[0]}") from None
        faces += [LabelledFace(p, label, None) for p in sorted(folder.rglob("*"))
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not faces:
        raise DataError(f"{root}: no labels.csv and no images in <emotion>/ folders")
    return faces


def _read_labels_csv(table: Path) -> list[LabelledFace]:
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns or "emotion" not in columns:
            raise DataError(f"{table}: needs columns path,emotion (and x,y,w,h for boxes); found {', '.join(columns)}")
        box_columns = [c for c in ("x", "y", "w", "h") if c in columns]
        if box_columns and len(box_columns) < 4:  # a half-given box would silently be ignored: refuse it
            missing = [c for c in ("x", "y", "w", "h") if c not in columns]
            raise DataError(f"{table}: has box column(s) {','.join(box_columns)} but not {','.join(missing)}; a box "
                            "needs all of x,y,w,h (or none: the face is then the largest one found)")
        has_box = len(box_columns) == 4
        faces = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                label = label_from_name(row["emotion"])
            except KeyError as exc:
                raise DataError(f"{table}: row {line}: {exc.args[0]}") from None
            box = None
            if has_box:
                try:
                    box = tuple(float(row[k]) for k in ("x", "y", "w", "h"))
                except ValueError:
                    raise DataError(f"{table}: row {line}: box x,y,w,h must be numbers, got "
                                    f"{','.join(row[k] for k in ('x', 'y', 'w', 'h'))}") from None
                if box[2] <= 0 or box[3] <= 0:
                    raise DataError(f"{table}: row {line}: box width and height must be > 0")
            faces.append(LabelledFace(table.parent / row["path"], label, box))
    if not faces:
        raise DataError(f"{table}: no rows")
    return faces


def split_held_out(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stratified split into (train, held-out) indices: from each emotion with at least 2 faces, ``fraction``
    of them (at least 1, and at least 1 left to train on) is held out. Returns warnings for emotions with
    fewer than 2 faces (trained on only, or absent)."""
    rng = np.random.default_rng(seed)
    train, held, warnings = [], [], []
    for c, name in enumerate(EMOTIONS):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            warnings.append(f"no photos of {name}: the model keeps the base's behaviour for it")
            continue
        if len(idx) == 1 or fraction <= 0:
            if len(idx) == 1:
                warnings.append(f"only 1 photo of {name}: trained on, none held out to check it")
            train += idx.tolist()
            continue
        idx = rng.permutation(idx)
        n_held = min(len(idx) - 1, max(1, int(round(len(idx) * fraction))))
        held += idx[:n_held].tolist()
        train += idx[n_held:].tolist()
    return np.sort(np.array(train, np.int64)), np.sort(np.array(held, np.int64)), warnings
