"""Labelled faces for training and evaluation: FER2013 and its FER+ votes, photo sets, face-crop folders
(re-framed through the runtime's detector), augmentation and duplicate detection.

- :mod:`ferkit.data.fer2013`: the challenge CSV and the folder export as uint8 arrays (:func:`load_fer2013`).
- :mod:`ferkit.data.ferplus`: FER+ raters' votes for the same rows.
- :mod:`ferkit.data.photoset`: labelled photo folders (``labels.csv`` or ``<emotion>/*.jpg``).
- :mod:`ferkit.data.sources`: RAF-DB/AffectNet-style crop folders framed like ``ferkit predict`` frames faces.
- :mod:`ferkit.data.datainfo`: counts per split and emotion (``ferkit data info``).
- :mod:`ferkit.data.augment`: batched in-memory augmentation.
- :mod:`ferkit.data.dedupe`: exact duplicates in a labelled photo set (sha256), kept on one side of a split.

``from ferkit.data import load_fer2013`` (and the old module's other public names, wherever they live now) keeps
working: ``ferkit.data`` was that module before the subpackage layout (CHANGELOG.md).
"""

from __future__ import annotations

_FER2013 = ("IMAGE_SIZE", "SPLITS", "DataError", "FerData", "canonical_split", "load_fer2013", "save_npz",
            "train_val_split", "cache_dir", "files_key", "cached_arrays")  # ferkit.data's names before it was a folder
# The old module's names that now live beside FER2013's reader, not in it (one job per module).
MOVED_BESIDE: dict[str, str] = {
    **dict.fromkeys(("relabel", "load_ferplus_votes", "ferplus_path", "LABEL_SOURCES", "MIX_WEIGHT", "FERPLUS_FILE",
                     "FERPLUS_COLUMNS"), "data.ferplus"),
    **dict.fromkeys(("read_photo_set", "LabelledFace", "split_held_out"), "data.photoset"),
}
__all__ = list(_FER2013)


def __getattr__(name: str):
    from importlib import import_module

    if name in _FER2013:
        return getattr(import_module("ferkit.data.fer2013"), name)
    if name in MOVED_BESIDE:
        return getattr(import_module(f"ferkit.{MOVED_BESIDE[name]}"), name)
    raise AttributeError(f"module 'ferkit.data' has no attribute {name!r}")
