"""What ``ferkit data`` shows and writes: a data set's faces per split and emotion, and a data set packed into one
compressed .npz (uint8 arrays, no pickle) that every command reads directly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferkit.data.fer2013 import DataError, FerData, canonical_split, load_fer2013, save_npz
from ferkit.core.labels import EMOTIONS

SPLIT_ORDER = ("Training", "PublicTest", "PrivateTest", "Unknown")


def count_table(data: FerData, name: str | os.PathLike) -> str:
    """A heading (``name``, faces, image size), then a table of faces per emotion (rows) and split (columns), with
    the totals."""
    splits = sorted(set(data.usage.tolist()), key=SPLIT_ORDER.index)
    lines = [f"{name}: {len(data)} faces, 48x48 grey" + ("" if data.has_splits() else
                                                         " (no split names: every row is 'Unknown')"),
             f"{'emotion':10s}" + "".join(f"{s:>13s}" for s in splits) + f"{'all':>9s}"]
    per_split = {s: np.bincount(data.labels[data.usage == s], minlength=len(EMOTIONS)) for s in splits}
    for k, emotion in enumerate(EMOTIONS):
        lines.append(f"{emotion:10s}" + "".join(f"{per_split[s][k]:13d}" for s in splits)
                     + f"{data.class_counts()[k]:9d}")
    lines.append(f"{'total':10s}" + "".join(f"{per_split[s].sum():13d}" for s in splits) + f"{len(data):9d}")
    return "\n".join(lines)


def pack(path: str | os.PathLike, out: str | os.PathLike, splits: list[str] | None = None) -> FerData:
    """Read the data set at ``path`` (CSV, folder export or .npz), keep only ``splits`` (any spelling
    :func:`~ferkit.data.fer2013.canonical_split` takes; None: all) and write it to ``out``, which must end in .npz.
    Returns what was written. Raises DataError (a bad path or suffix), ValueError (an unknown split) or
    ImportError (a CSV without pandas)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"{out}: the output must end in .npz")
    data = load_fer2013(path)
    if splits:
        keep = np.isin(data.usage, [canonical_split(s) for s in splits])
        data = FerData(data.images[keep], data.labels[keep], data.usage[keep], data.source)
    save_npz(data, out)
    return data
