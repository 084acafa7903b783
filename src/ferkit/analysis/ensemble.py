"""What ``ferkit ensemble`` does: write an ensemble of models (:func:`ferkit.analysis.export.write_ensemble`) and, given a
FER2013 split, measure it there and record the accuracy and ECE in the ensemble's own file."""

from __future__ import annotations

import os
from pathlib import Path


def build_ensemble(members: list[str], name: str, dest: str | Path, *, weights: list[float] | None = None,
                   combine: str = "log-mean", data: str | os.PathLike | None = None, split: str = "PublicTest",
                   command: str = "") -> tuple[Path, dict, dict | None]:
    """Write ``dest/NAME.ensemble.json`` and record it in ``dest/manifest.json``; with ``data``, run the ensemble
    on its ``split`` (on onnxruntime, each member with its own temperature; nothing is fitted) and write the file
    again with ``accuracy`` and ``calibration`` (ECE) in its metadata.

    Returns the file, its manifest entry, and the measurement (``split``, ``accuracy`` and ``ece`` as shares,
    ``faces``) or None without ``data``. Raises WeightsError (members that do not load or fit together),
    DataError or ValueError (the data or the split)."""
    from ferkit.analysis.export import write_ensemble

    metadata = {"command": command}
    path, entry = write_ensemble(members, name, dest, weights=weights, combine=combine, metadata=metadata)
    if data is None:
        return path, entry, None
    from ferkit.analysis.calibrate import expected_calibration_error
    from ferkit.data.fer2013 import canonical_split, load_fer2013
    from ferkit.runtime.classifier import Classifier

    subset = load_fer2013(data).split(canonical_split(split))
    probs = Classifier(path, threads=0).predict_proba(subset.images)  # (N, 7)
    metadata["accuracy"] = {split: float((probs.argmax(1) == subset.labels).mean())}
    metadata["calibration"] = {split: {"ece": expected_calibration_error(probs, subset.labels)},
                               "note": "each member's own temperature; nothing fitted on this split"}
    path, entry = write_ensemble(members, name, dest, weights=weights, combine=combine, metadata=metadata)
    measured = {"split": split, "accuracy": metadata["accuracy"][split],
                "ece": metadata["calibration"][split]["ece"], "faces": len(subset)}
    return path, entry, measured
