"""Labelled faces for training and evaluation: FER2013 and its FER+ votes, photo sets, face-crop folders
(re-framed through the runtime's detector), augmentation and duplicate detection.

- :mod:`ferkit.data.fer2013`: the challenge CSV and the folder export as uint8 arrays (:func:`load_fer2013`).
- :mod:`ferkit.data.ferplus`: FER+ raters' votes for the same rows.
- :mod:`ferkit.data.photoset`: labelled photo folders (``labels.csv`` or ``<emotion>/*.jpg``).
- :mod:`ferkit.data.sources`: RAF-DB/AffectNet-style crop folders framed like ``ferkit predict`` frames faces.
- :mod:`ferkit.data.datainfo`: counts per split and emotion (``ferkit data info``).
- :mod:`ferkit.data.augment`: batched in-memory augmentation.
- :mod:`ferkit.data.dedupe`: exact duplicates in a labelled photo set (sha256), kept on one side of a split.

``from ferkit.data import load_fer2013`` (and the other names of FER2013's reader) keeps working: ``ferkit.data`` was
that module before the subpackage layout (CHANGELOG.md).
"""

from __future__ import annotations

_MOVED = ("IMAGE_SIZE", "SPLITS", "DataError", "FerData", "canonical_split", "load_fer2013", "save_npz",
          "train_val_split", "cache_dir", "files_key", "cached_arrays")  # ferkit.data's names before it was a folder


def __getattr__(name: str):
    if name in _MOVED:
        from ferkit.data import fer2013

        return getattr(fer2013, name)
    raise AttributeError(f"module 'ferkit.data' has no attribute {name!r}")
