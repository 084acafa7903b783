"""Training sources beside FER2013: labelled face-crop folders (RAF-DB, the AffectNet subset, a user's own).

A crop folder holds one face per image, labelled by ``labels.csv`` (``path,emotion``; ``x,y,w,h`` columns, if
present, are ignored: the face is the image) or by ``<emotion>/`` sub-folders. Crop sets are framed their own
way: RAF-DB's are tight, eye-aligned 100x100 colour crops, the AffectNet subset's loose 64x64 ones, FER2013's
loose 48x48 grey ones. ``ferkit predict`` frames every face from the detector's box
(:func:`ferkit.runtime.crop.crop_face`), so a network must learn from faces framed that way. :func:`load_crop_folder`
re-frames each crop exactly so: the crop is padded with grey (the detector needs some context around a tight crop),
CenterFace runs on it, and the largest face is cropped 48x48 grey with ``predict``'s box framing. Where no face
is found (a few percent: profiles, heavy occlusion), the folder's median box relative to the image is used,
so no labelled face is lost; how many is recorded (``FaceFolder.fallback``).

A fixed, stratified part of each folder is held out as its validation part (``holdout``, default 10%, split
with its own seed 0 whatever the training seed, so "RAF-DB validation" is the same faces in every run). The
re-framed crops are cached under ``FERKIT_CACHE`` (default ``~/.cache/ferkit``), keyed by the files' paths,
sizes and times and by the framing, so a second run starts in a second.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.data.fer2013 import DataError, FerData, cache_dir, cached_arrays, files_key
from ferkit.data.photoset import read_photo_set, split_held_out
from ferkit.core.labels import EMOTIONS

HOLDOUT_SEED = 0  # the validation part of a folder does not move with the training seed
# Share of the crop's side added on every side, in mid grey, before detection: tight crops need context.
# On 200 RAF-DB crops CenterFace found 97.5% so (67.5% with the border pixels repeated, 72.5% mirrored).
PAD = 0.4
_CACHE_VERSION = 2


@dataclass(frozen=True)
class FaceFolder:
    """A labelled crop folder re-framed as ``predict`` frames faces.

    ``faces``: FerData of (N, 48, 48) uint8 grey crops with ``usage`` ``Training`` or ``Validation``;
    ``fallback``: how many faces the detector did not find (framed from the folder's median box instead)."""

    name: str
    path: str
    faces: FerData
    fallback: int

    def counts(self, usage: str) -> dict[str, int]:
        labels = self.faces.labels[self.faces.usage == usage]
        return {e: int((labels == c).sum()) for c, e in enumerate(EMOTIONS)}


def is_crop_folder(path: str | os.PathLike) -> bool:
    """True for a folder of labelled face crops (``labels.csv``, or ``<emotion>/`` sub-folders at its top);
    False for a FER2013 file or FER2013's per-image export (``train/``, ``test/`` ... at its top)."""
    from ferkit.core.labels import label_from_name

    root = Path(path)
    if not root.is_dir():
        return False
    if (root / "labels.csv").exists():
        return True
    for sub in root.iterdir():
        if sub.is_dir():
            try:
                label_from_name(sub.name)
                return True
            except KeyError:
                pass
    return False


def _cache_file(faces, framing: str, size: int = 48, colour: bool = False) -> Path:
    from ferkit.runtime.crop import FRAME_FILE

    items = [_CACHE_VERSION, PAD, FRAME_FILE.read_text()] + ([framing] if framing != "box" else [])
    items += [size, colour] if (size, colour) != (48, False) else []
    digest = hashlib.sha256(json.dumps(items + files_key(faces, boxes=False)).encode()).hexdigest()[:24]
    return cache_dir("sources") / f"{digest}.npz"


def reframe_crops(images: list[np.ndarray] | np.ndarray, *, framing: str = "box", detector=None,
                  keep_unfound: bool = False, size: int = 48, colour: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Re-frame face crops (RGB or grey uint8, any size) as ``predict`` frames a detected face with ``framing``
    (``box`` or ``align``, see :mod:`ferkit.runtime.crop`). Crops under 64 px are upscaled to 96 px first.

    Returns ``(crops, found)``: (N, size, size) uint8 grey (or (N, size, size, 3) RGB with ``colour``; the model's
    input, 48 grey by default) and (N,) bool. Where no face was found: with
    ``keep_unfound`` (FER2013's faces, already framed like ``box``) the image itself resized to 48x48; else
    framed from the median box of the crops where a face was found, relative to the image size."""
    import cv2

    from ferkit.runtime.crop import crop_face, fitted_frames, to_grey, whole_face
    from ferkit.runtime.detect import Face, create_detector

    frame = fitted_frames()[framing]
    # one pass, as these crops were always framed: each holds one face that fills it, and the cache of
    # re-framed crops is not keyed on detector settings
    det = detector or create_detector("centerface", threads=1, max_side=640, scales="single")
    n = len(images)
    crops = np.zeros((n, size, size) + ((3,) if colour else ()), np.uint8)
    found = np.zeros(n, bool)
    rel_boxes = np.full((n, 4), np.nan)
    for i, img in enumerate(images):
        rgb = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        if max(rgb.shape[:2]) < 64:  # FER2013's 48x48 faces: CenterFace misses faces that small
            up = 96 / max(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
        h, w = rgb.shape[:2]
        p = int(round(PAD * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        faces = det.detect(padded)
        if not faces:
            continue
        best = max(faces, key=lambda f: f.box[2] * f.box[3])
        x, y, bw, bh = best.box
        face = Face((x - p, y - p, bw, bh), best.score,
                    None if best.landmarks is None else tuple((lx - p, ly - p) for lx, ly in best.landmarks))
        crops[i] = crop_face(rgb, face, frame, size=size, colour=colour)
        found[i] = True
        rel_boxes[i] = ((x - p) / w, (y - p) / h, bw / w, bh / h)
    median = np.nanmedian(rel_boxes[found], axis=0) if found.any() else np.array([0.0, 0.0, 1.0, 1.0])
    for i in np.flatnonzero(~found):
        if keep_unfound:
            crops[i] = whole_face(images[i], size, colour)
            continue
        h, w = images[i].shape[:2]
        box = (median[0] * w, median[1] * h, median[2] * w, median[3] * h)
        crops[i] = crop_face(images[i] if colour else to_grey(images[i]), Face(box, 0.0), size=size, colour=colour)
    return crops, found


def load_crop_folder(path: str | os.PathLike, *, holdout: float = 0.1, framing: str = "box", cache: bool = True,
                     progress: bool = False, size: int = 48, colour: bool = False) -> FaceFolder:
    """Read a labelled crop folder and re-frame every face as ``predict`` does (see the module docstring), as
    ``size`` x ``size`` grey crops or, with ``colour``, RGB ones (the model's input).

    Raises :class:`ferkit.data.fer2013.DataError` naming the file when the folder or an image cannot be read."""
    from ferkit.core.images import ImageError, read_image

    root = Path(path)
    labelled = read_photo_set(root)

    def read_and_reframe() -> dict[str, np.ndarray]:
        images = []
        for f in _progress(labelled, f"framing {root.name}", progress):
            try:
                images.append(read_image(f.path))
            except ImageError as exc:
                raise DataError(str(exc)) from None
        crops, found = reframe_crops(images, framing=framing, size=size, colour=colour)
        return {"crops": crops, "found": found}

    z = cached_arrays(_cache_file(labelled, framing, size, colour), read_and_reframe, cache=cache)
    crops, found = z["crops"], z["found"]
    labels = np.array([f.label for f in labelled], np.int64)
    usage = np.full(len(labels), "Training", dtype="U11")
    if holdout > 0:
        _, held, _ = split_held_out(labels, holdout, HOLDOUT_SEED)
        usage[held] = "Validation"
    faces = FerData(crops, labels, usage, str(root))
    return FaceFolder(root.name, str(root), faces, int((~found).sum()))


def align_fer2013(images: np.ndarray, *, cache: bool = True, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """FER2013 faces (N, 48, 48) uint8 re-framed with the ``align`` framing (detected on the face upscaled and
    padded); faces without a detection keep their own framing. Returns ``(faces, found)``; cached by content."""
    digest = hashlib.sha256(images.tobytes()).hexdigest()[:24]

    def align() -> dict[str, np.ndarray]:
        crops, found = reframe_crops(list(_progress(images, "aligning FER2013", progress)), framing="align",
                                     keep_unfound=True)
        return {"crops": crops, "found": found}

    z = cached_arrays(cache_dir("sources") / f"fer2013-align-{_CACHE_VERSION}-{digest}.npz", align, cache=cache)
    return z["crops"], z["found"]


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="face", leave=False)


__all__ = ["FaceFolder", "HOLDOUT_SEED", "align_fer2013", "is_crop_folder", "load_crop_folder", "reframe_crops"]
