"""Accuracy on real photos: find each labelled face, crop it as ``ferkit predict`` does, classify it.

A photo set is a folder in one of two layouts:

- ``labels.csv`` with ``path,face,x,y,w,h,emotion`` (``path`` relative to the folder; the box in the stored
  photo's pixels, x and y its top-left corner). Each labelled face is matched to the detection with the
  highest IoU; under ``iou`` (0.3) it is *not found* and counts as wrong. For crop sets, give a box of the
  whole image. ``labels.csv`` with only ``path,emotion`` (no box columns) takes the largest face.
- ``<emotion>/*.jpg`` folders: each photo holds one labelled face, the largest one found.

Detection and cropping run once per set (:func:`find_faces`); any number of models then classify the same
crops (:func:`evaluate_photos`), so models are compared on exactly the same faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferkit.data.photoset import LabelledFace, read_photo_set  # noqa: F401 - their home is ferkit.data.photoset
from ferkit.runtime.detect import iou  # noqa: F401 - matching labelled faces to detections; its home is ferkit.runtime.detect
from ferkit.core.labels import EMOTIONS
from ferkit.weights import DEFAULT_DETECTOR

IOU_MIN = 0.3


@dataclass(frozen=True)
class FoundFaces:
    """The labelled faces of a photo set, what the detector found for each, and their crops (48x48 grey, or the
    input of the model they are for: ``size``, ``colour``)."""

    faces: list[LabelledFace]
    labels: np.ndarray  # (N,) int64
    found: np.ndarray  # (N,) bool
    crops: np.ndarray  # (N, size, size) uint8, (N, size, size, 3) with colour; zeros where not found
    boxes: np.ndarray  # (N, 4) float: the matched detection's box (nan where not found)
    errors: dict[str, str]  # unreadable photos -> one-line error (their faces count as not found)
    source: str
    missing: dict[int, str] = field(default_factory=dict)  # index of each face not found -> why, one line
    framing: str = "box"  # how the crops are framed (see ferkit.runtime.crop)
    size: int = 48  # crop side, px
    colour: bool = False  # RGB crops


def find_faces(root: str | Path, *, detector: str = DEFAULT_DETECTOR, max_side: int = 320, iou_min: float = IOU_MIN,
               threads: int = 1, progress: bool = False, framing: str = "box", scales: str = "auto", size: int = 48,
               colour: bool = False) -> FoundFaces:
    """Detect the faces of every photo once (``max_side``, ``scales``: as :class:`ferkit.pipeline.recognize.Recognizer`),
    match them to the labels and crop them as ``ferkit predict`` does for a model trained on ``framing``
    (``box`` or ``align``, see :mod:`ferkit.runtime.crop`) that takes ``size`` x ``size`` crops, RGB with ``colour``."""
    from ferkit.runtime.crop import crop_face, fitted_frames
    from ferkit.runtime.detect import create_detector
    from ferkit.core.images import ImageError, read_image

    faces = read_photo_set(root)
    frame = fitted_frames()[framing]
    det = create_detector(detector, threads=threads, max_side=max_side, scales=scales)
    n = len(faces)
    found = np.zeros(n, bool)
    crops = np.zeros((n, size, size) + ((3,) if colour else ()), np.uint8)
    boxes = np.full((n, 4), np.nan)
    errors: dict[str, str] = {}
    missing: dict[int, str] = {}
    by_photo: dict[Path, list[int]] = {}
    for i, f in enumerate(faces):
        by_photo.setdefault(f.path, []).append(i)
    items = by_photo.items()
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="photos", unit="photo", leave=False)
    for path, idx in items:
        try:
            rgb = read_image(path)
        except ImageError as exc:
            errors[str(path)] = str(exc)
            missing.update(dict.fromkeys(idx, f"unreadable: {exc}"))
            continue
        detections = det.detect(rgb)
        if not detections:
            missing.update(dict.fromkeys(idx, "no face found"))
            continue
        for i in idx:
            box = faces[i].box
            if box is None:
                best = max(detections, key=lambda d: d.box[2] * d.box[3])
            else:
                scores = [iou(box, d.box) for d in detections]
                k = int(np.argmax(scores))
                if scores[k] < iou_min:
                    missing[i] = (f"no detected face overlaps the labelled box (best IoU {scores[k]:.2f} < "
                                  f"{iou_min})")
                    continue
                best = detections[k]
            found[i] = True
            crops[i] = crop_face(rgb, best, frame, size=size, colour=colour)
            boxes[i] = best.box
    labels = np.array([f.label for f in faces], np.int64)
    return FoundFaces(faces, labels, found, crops, boxes, errors, str(root), missing, framing, size, colour)


def evaluate_photos(found: FoundFaces, model: str | None = None, *, tta: bool | None = None) -> dict:
    """The photo report for one model on already found faces: the keys of ``ferkit evaluate``'s FER2013
    report, end to end (a labelled face that was not found counts as wrong), plus ``found``."""
    from ferkit.analysis.evaluate import compute_metrics, load_predictor, model_spec

    predict, meta = load_predictor(model, tta=tta)
    spec = model_spec(model)  # an ensemble's too (its members' input and framing)
    if spec.framing != found.framing:
        raise ValueError(f"{spec.name} was trained on faces framed by {spec.framing!r}; "
                         f"these faces were cropped by {found.framing!r}: call find_faces(..., framing=...)")
    if (spec.size, spec.colour) != (found.size, found.colour):
        raise ValueError(f"{spec.name} takes {spec.size}x{spec.size} {'RGB' if spec.colour else 'grey'} faces; these "
                         f"were cropped {found.size}x{found.size}: call find_faces(..., size=..., colour=...)")
    probs = np.zeros((len(found.labels), len(EMOTIONS)), np.float64)
    if found.found.any():
        probs[found.found] = predict(found.crops[found.found])
    used_tta = bool(meta.get("tta", False)) if tta is None else tta
    report = compute_metrics(probs, found.labels, found=found.found)
    return {"model": meta.get("name", str(model)), "data": found.source, "split": "photos", "tta": used_tta,
            "unreadable": found.errors, **report}


def evaluate_photo_folder(root: str | Path, model: str | None = None, *, tta: bool | None = None,
                          detector: str = DEFAULT_DETECTOR, max_side: int = 320, scales: str = "auto",
                          progress: bool = False) -> dict:
    """``ferkit evaluate --photos``: the faces of a photo set found and framed as ``model`` was trained
    (:func:`find_faces`), then its report (:func:`evaluate_photos`); unreadable photos are in ``unreadable``.
    Raises ImportError before any photo is read when scikit-learn (the metrics) is missing."""
    from ferkit.analysis.evaluate import model_spec, need_metrics

    need_metrics()
    spec = model_spec(model)
    found = find_faces(root, detector=detector, max_side=max_side, scales=scales, progress=progress,
                       framing=spec.framing, size=spec.size, colour=spec.colour)
    return evaluate_photos(found, model, tta=tta)


__all__ = ["FoundFaces", "IOU_MIN", "LabelledFace", "evaluate_photo_folder", "evaluate_photos", "find_faces", "iou",
           "read_photo_set"]
