"""Exact duplicates in a labelled photo set (the same bytes under two names): copies labelled with two emotions
contradict each other and are left out; copies that agree stay together on one side of a held-out split
(``ferkit finetune``). Files are compared by sha256.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS


def file_hashes(paths: list[str]) -> list[str]:
    """sha256 of each file's bytes (an exact copy has the same one, whatever its name or folder)."""
    out = []
    for p in paths:
        try:
            out.append(hashlib.sha256(Path(p).read_bytes()).hexdigest())
        except OSError:
            out.append(f"unreadable:{p}")
    return out


def drop_conflicting_duplicates(faces, hashes: list[str]) -> tuple[object, list[str], list[tuple[str, str]]]:
    """Exact copies of one photo (same bytes: ``hashes``, one per face, :func:`file_hashes`) labelled with
    different emotions contradict each other: every copy is left out and reported as ``(path, reason)``; copies
    that agree stay (see :func:`keep_duplicates_together`). Returns the faces kept, their hashes and the report,
    which also goes into ``skipped``."""
    labels_of: dict[str, set] = {}
    for h, y in zip(hashes, faces.labels):
        labels_of.setdefault(h, set()).add(int(y))
    bad = {h for h, ys in labels_of.items() if len(ys) > 1}
    if not bad:
        return faces, hashes, []
    report = []
    for i, h in enumerate(hashes):
        if h in bad:
            others = [f"{faces.paths[j]} ({EMOTIONS[int(faces.labels[j])]})" for j, g in enumerate(hashes)
                      if g == h and j != i]
            report.append((faces.paths[i], f"the same image as {', '.join(others)}, labelled "
                                           f"{EMOTIONS[int(faces.labels[i])]}: conflicting labels, left out"))
    keep = np.array([h not in bad for h in hashes])
    kept = replace(faces, crops=faces.crops[keep], labels=faces.labels[keep],
                   paths=[p for p, k in zip(faces.paths, keep) if k], skipped=faces.skipped + report)
    return kept, [h for h, k in zip(hashes, keep) if k], report


def keep_duplicates_together(hashes: list[str], train_idx: np.ndarray, held_idx: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Move every held-out face that has an exact copy (the same file hash, :func:`file_hashes`) on the training
    side to the training side too: a copy on both sides would score the model on a face it trained on."""
    trained = {hashes[i] for i in train_idx}
    moved = np.array([i for i in held_idx if hashes[i] in trained], dtype=np.int64)
    if not len(moved):
        return train_idx, held_idx
    return (np.sort(np.concatenate([train_idx, moved])).astype(train_idx.dtype),
            np.array([i for i in held_idx if hashes[i] not in trained], dtype=held_idx.dtype))
