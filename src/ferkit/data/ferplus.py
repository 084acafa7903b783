"""FER+ labels for FER2013's rows (Microsoft's ``fer2013new.csv``: 10 raters per face) and the label sources
``ferkit train --labels`` and ``ferkit evaluate --labels`` choose between (:func:`relabel`).

Moved out of :mod:`ferkit.data.fer2013` (issue 33: one job per module); import these names from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferkit.data.fer2013 import DataError, FerData
from ferkit.core.labels import NUM_CLASSES

LABEL_SOURCES = ("fer2013", "ferplus-majority", "ferplus-votes", "mixed")
MIX_WEIGHT = 0.5  # share of the FER2013 one-hot label in the ``mixed`` targets
FERPLUS_FILE = "fer2013new.csv"
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                   "NF")
# FER+ vote columns in FER2013's label order (angry, disgust, fear, happy, sad, surprise, neutral).
_FERPLUS_TO_FER = [FERPLUS_COLUMNS.index(c) for c in ("anger", "disgust", "fear", "happiness", "sadness", "surprise",
                                                        "neutral")]


def ferplus_path(data: FerData, ferplus: str | os.PathLike | None = None) -> Path:
    """The FER+ file for ``data``: ``ferplus`` if given, else ``fer2013new.csv`` beside the data file."""
    if ferplus:
        return Path(ferplus)
    return Path(data.source).parent / FERPLUS_FILE


def load_ferplus_votes(path: str | os.PathLike, data: FerData) -> np.ndarray:
    """The FER+ votes (N, 10) for the rows of ``data``, in Microsoft's column order (:data:`FERPLUS_COLUMNS`).

    The FER+ file (Microsoft's ``fer2013new.csv`` layout: ``Usage,Image name,neutral,...,NF``) must hold one
    row per row of the FER2013 file, in the same order: Microsoft's full 35,887-row file beside the full
    ``fer2013.csv``, or a subset of both in the same order. Rows FER+ dropped (empty ``Image name``) get no
    votes. A file that does not line up (row count, or a row whose Usage differs) raises :class:`DataError`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; FER+ labels need Microsoft's fer2013new.csv beside the FER2013 CSV "
                        "(or give its path with --ferplus)")
    if Path(data.source).is_dir():
        raise DataError(f"{data.source}: FER+ labels are aligned by row with the challenge CSV (or a .npz packed from "
                        "it), not with a per-image folder export")
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading FER+ labels needs pandas: pip install 'ferkit[train]'") from None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("Usage", "Image name", *FERPLUS_COLUMNS) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a FER+ file has Usage,Image name,"
                        f"{','.join(FERPLUS_COLUMNS)}")
    if len(frame) != len(data):
        raise DataError(f"{path}: {len(frame)} rows, but {data.source} has {len(data)}: the FER+ file must have one "
                        "row per row of the FER2013 file, in the same order")
    usage = frame["Usage"].str.strip().to_numpy().astype("U11")
    known = data.usage != "Unknown"
    differ = np.flatnonzero(known & (usage != data.usage))
    if len(differ):
        i = int(differ[0])
        raise DataError(f"{path}: row {i + 2}: Usage {str(usage[i])!r}, but row {i + 2} of {data.source} is "
                        f"{str(data.usage[i])!r}: the files are not aligned row by row")
    named = frame["Image name"].str.strip().to_numpy() != ""
    votes = np.zeros((len(frame), len(FERPLUS_COLUMNS)), np.int64)
    for j, col in enumerate(FERPLUS_COLUMNS):
        values = pd.to_numeric(frame[col].str.strip().where(named, "0"), errors="coerce")
        bad = values.isna() | (values < 0) | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: row {i + 2}: {col} = {frame[col].iloc[i]!r} is not a vote count")
        votes[:, j] = values.to_numpy().astype(np.int64)
    return votes


def relabel(data: FerData, source: str = "fer2013", ferplus: str | os.PathLike | None = None) -> FerData:
    """``data`` with the labels of ``source``: ``fer2013`` (as it is), ``ferplus-majority``, ``ferplus-votes`` or
    ``mixed``.

    - ``ferplus-majority``: the emotion with the most of the 10 FER+ votes. Faces are dropped when the top
      count is shared (no majority), when the top vote is contempt, unknown or not-a-face, or when FER+
      dropped the row.
    - ``ferplus-votes``: the soft distribution over the 7 emotions (``targets``; ``labels`` = its argmax,
      ties to the earlier label). Contempt, unknown and not-a-face votes are left out and the rest
      renormalised; faces with no vote for any of the 7 emotions are dropped.
    - ``mixed``: soft targets ``MIX_WEIGHT`` x the FER2013 one-hot label + (1 - ``MIX_WEIGHT``) x the FER+ vote
      distribution above; no face is dropped (faces without emotion votes keep their one-hot label), and
      ``labels`` stay FER2013's (with a weight of 0.5 no emotion gets a larger target than the FER2013 label).
    """
    if source not in LABEL_SOURCES:
        raise DataError(f"unknown label source {source!r}; expected one of {', '.join(LABEL_SOURCES)}")
    if source == "fer2013":
        return data
    votes = load_ferplus_votes(ferplus_path(data, ferplus), data)
    emotion_votes = votes[:, _FERPLUS_TO_FER].astype(np.float32)
    if source == "ferplus-majority":
        top = votes.max(axis=1)
        unique = (votes == top[:, None]).sum(axis=1) == 1
        winner = votes.argmax(axis=1)
        fer_of = np.full(len(FERPLUS_COLUMNS), -1)
        fer_of[_FERPLUS_TO_FER] = np.arange(NUM_CLASSES)
        labels = fer_of[winner]
        keep = (top > 0) & unique & (labels >= 0)
        return FerData(data.images[keep], labels[keep].astype(np.int64), data.usage[keep], data.source)
    total = emotion_votes.sum(axis=1)
    if source == "mixed":
        onehot = np.eye(NUM_CLASSES, dtype=np.float32)[data.labels]
        voted = np.where(total[:, None] > 0, emotion_votes / np.maximum(total, 1)[:, None], onehot)
        targets = MIX_WEIGHT * onehot + (1 - MIX_WEIGHT) * voted
        return FerData(data.images, data.labels, data.usage, data.source, targets.astype(np.float32))
    keep = total > 0
    targets = emotion_votes[keep] / total[keep, None]
    return FerData(data.images[keep], targets.argmax(axis=1).astype(np.int64), data.usage[keep], data.source,
                   targets.astype(np.float32))
