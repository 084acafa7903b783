"""The photo pipeline: find every face in a picture, crop it like FER2013, classify it.

>>> from ferkit import Recognizer
>>> r = Recognizer()
>>> result = r.predict("group.jpg")                       # doctest: +SKIP
>>> [(f.emotion, round(f.probabilities[f.emotion], 2)) for f in result.faces]   # doctest: +SKIP
[('happy', 0.97), ('neutral', 0.61)]

Results are plain dataclasses; :meth:`ImageResult.to_dict` gives the versioned record that
``ferkit predict --json/--jsonl/--csv`` writes (schema in docs/photos.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ferkit.core.images import ImageError, from_array, read_image
from ferkit.core.labels import LOW_CONFIDENCE  # noqa: F401 - re-exported: a top probability under it is `low_confidence`
from ferkit.runtime.pose import HeadPose, head_pose
from ferkit.weights import DEFAULT_DETECTOR

SCHEMA_VERSION = 1
UNCERTAIN = "uncertain"  # the emotion of a face whose top probability is under the recogniser's min_confidence


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in the original image's pixels
    score: float  # detector confidence (1.0 with detection off)
    emotion: str
    probabilities: dict[str, float]
    low_confidence: bool  # the top probability is under LOW_CONFIDENCE
    small: bool  # the face is narrower than the recogniser's min_face pixels: too small to trust
    uncertain: bool = False  # the top probability is under the recogniser's min_confidence: emotion is UNCERTAIN
    # the detector's 5 landmarks (x, y) in image pixels: image-left eye, image-right eye, nose tip, mouth corners
    landmarks: tuple[tuple[float, float], ...] | None = None
    pose: HeadPose | None = None  # approximate head pose from the landmarks (ferkit.runtime.pose)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "emotion": self.emotion,
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                "low_confidence": self.low_confidence, "small": self.small, "uncertain": self.uncertain,
                **landmark_fields(self.landmarks, self.pose)}


def landmark_fields(landmarks, pose) -> dict:
    """The ``landmarks`` ([[x, y] x 5], px to 0.1) and ``pose`` ({yaw, pitch, roll, reliable}, degrees to 0.1) of
    a record; None where the face has no landmarks (``--no-detect``)."""
    return {"landmarks": None if landmarks is None else [[round(float(x), 1), round(float(y), 1)] for x, y in landmarks],
            "pose": None if pose is None else pose.to_dict()}


@dataclass(frozen=True)
class ImageResult:
    path: str | None
    width: int | None
    height: int | None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "path": self.path, "width": self.width, "height": self.height,
                "faces": [f.to_dict() for f in self.faces], "error": self.error}

    def to_pandas(self):
        """This image's faces as a pandas DataFrame, one row per face (the ``--csv`` columns); see
        :func:`ferkit.pipeline.outputs.to_pandas` for many images or a video. Needs pandas."""
        from ferkit.pipeline.outputs import to_pandas

        return to_pandas([self])


class Recognizer:
    """Detector + the crop the model takes (its :class:`ferkit.runtime.spec.ModelSpec`) + the classifier, all on onnxruntime
    (no PyTorch).

    ``model``: a shipped model name (None: the default) or an .onnx file. ``detector``: a registered
    detector name (see :func:`ferkit.runtime.detect.list_detectors`). ``detect=False`` takes each whole image as
    one face (for images that are already FER2013-style crops). ``min_face``: faces narrower than this
    many pixels are flagged ``small``. ``min_confidence``: a face whose top (calibrated) probability is under
    it gets the emotion ``"uncertain"`` (and ``uncertain=True``) instead of a guess; its probabilities stay
    (0, the default, never abstains; docs/photos.md: the coverage/accuracy table to choose it). ``max_side``: the
    detector's main pass sees the image downscaled to at most this many pixels per side (320). ``scales``:
    ``"auto"`` (the default) adds the passes the image needs so that faces from ~20 px wide (of the original
    image) up to the whole frame are found -- a finer pass where the image is larger than ``max_side``, merged
    by NMS (see :class:`ferkit.runtime.detect.CenterFace`); ``"single"`` runs the main pass only (cheaper, and
    faces under ~16 px at that scale are missed: ~32 px of a 640-px photo).
    """

    def __init__(self, model: str | os.PathLike | None = None, *, detector: str = DEFAULT_DETECTOR, threads: int = 1,
                 min_face: int = 24, detect: bool = True, max_side: int = 320, min_confidence: float = 0.0,
                 scales: str = "auto"):
        from ferkit.runtime.detect import create_detector
        from ferkit.runtime.classifier import Classifier

        self.classifier = Classifier(model, threads=threads)
        self.labels = self.classifier.labels
        self.spec = self.classifier.spec  # input size, channels and framing of the model's faces
        self.frame = self.spec.frame()  # the framing the model was trained on
        self.detector = (create_detector(detector, threads=threads, max_side=max_side, scales=scales)
                         if detect else None)
        self.min_face = min_face
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.min_confidence = min_confidence

    def locate(self, rgb: np.ndarray) -> list:
        """The faces in an RGB image: the detector's (a face tilted by 10 degrees or more gets its landmarks found
        again upright: :func:`ferkit.runtime.detect.upright_landmarks`), or the whole image as one face with ``detect=False``."""
        if self.detector is None:
            from ferkit.runtime.detect import Face

            return [Face((0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0])), 1.0)]
        from ferkit.runtime.detect import upright_landmarks

        return [upright_landmarks(self.detector, rgb, f) for f in self.detector.detect(rgb)]

    def crops(self, rgb: np.ndarray, faces: list) -> np.ndarray:
        """The crops (N, *spec.face_shape) uint8 of ``faces`` in ``rgb`` as the model takes them (48x48 grey, or
        e.g. 112x112 RGB: :attr:`spec`), framed as the model was trained (its ``framing``: the detector's box, or the
        5 landmarks aligned), or the whole image, resized, with ``detect=False``."""
        if not faces:
            return self.spec.empty()
        if self.detector is None:
            return self.spec.whole(rgb)[None].repeat(len(faces), axis=0)
        from ferkit.runtime.crop import crop_face

        spec = self.spec
        return np.stack([crop_face(rgb, f, self.frame, size=spec.size, colour=spec.colour) for f in faces])

    def _faces(self, rgb: np.ndarray) -> tuple[list, np.ndarray]:
        faces = self.locate(rgb)
        return faces, self.crops(rgb, faces)

    def _results(self, faces, probs) -> list[FaceResult]:
        out = []
        for face, p in zip(faces, probs):
            x, y, w, h = face.box
            top = int(p.argmax())
            uncertain = bool(p[top] < self.min_confidence)
            out.append(FaceResult((int(round(x)), int(round(y)), int(round(w)), int(round(h))), float(face.score),
                                  UNCERTAIN if uncertain else self.labels[top],
                                  {name: float(v) for name, v in zip(self.labels, p)},
                                  bool(p[top] < LOW_CONFIDENCE), bool(min(w, h) < self.min_face), uncertain,
                                  face.landmarks, head_pose(face.landmarks, face.box)))
        return out

    def predict(self, image, *, color: str | None = None) -> ImageResult:
        """One image: a path, the bytes of an image file (bytes, bytearray or memoryview: decoded as the file
        would be), a PIL image, or a NumPy array (give ``color="RGB"`` or ``"BGR"`` for 3 channels; a 2-D array
        is grey; values by :func:`ferkit.core.images.to_levels`). Raises :class:`~ferkit.core.images.ImageError` (a
        ValueError) for an unreadable file or bytes, an empty image, or array values that are not levels."""
        path = None
        if isinstance(image, (str, os.PathLike)):
            path = str(image)
            rgb = read_image(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            from ferkit.core.images import decode_image

            rgb = decode_image(image, "image bytes")
        elif isinstance(image, np.ndarray):
            if image.ndim == 3 and image.shape[2] >= 3 and color is None:
                raise ValueError('a colour array needs color="RGB" or color="BGR" (OpenCV arrays are BGR)')
            rgb = from_array(image, color or "GRAY")
        elif hasattr(image, "getexif") and hasattr(image, "mode"):  # a PIL image
            from PIL import ImageOps

            from ferkit.core.images import to_rgb

            if image.width == 0 or image.height == 0:
                raise ImageError(f"PIL image of size {image.width}x{image.height}: empty image (no pixels)")
            rgb = to_rgb(ImageOps.exif_transpose(image))
        else:
            raise ImageError(f"{type(image).__name__}: not an image (expected a path, image bytes, a PIL image or "
                             "a NumPy array)")
        faces, crops = self._faces(rgb)
        probs = self.classifier.predict_proba(crops) if len(crops) else np.zeros((0, len(self.labels)))
        return ImageResult(path, int(rgb.shape[1]), int(rgb.shape[0]), self._results(faces, probs))

    def predict_paths(self, paths: Iterable[str | os.PathLike], batch_faces: int = 64, *, keep_images: bool = False,
                      workers: int = 1, keep_crops: bool = False) -> Iterator:
        """One :class:`ImageResult` per path, in order; unreadable files give a result with ``error`` set.
        Faces of consecutive images are classified together in batches. With ``keep_images`` each item is
        ``(result, rgb)``, the decoded image (None for an unreadable file), so callers need not decode twice;
        with ``keep_crops`` it is ``(result, rgb, crops)``: also the crops the model saw, (F, *spec.face_shape)
        uint8, one per face in ``result.faces`` (``rgb`` None unless ``keep_images``).

        ``workers``: photos are decoded and searched for faces on this many threads at once (OpenCV, Pillow and
        onnxruntime release the GIL), up to ``2 * workers`` photos ahead, while this thread classifies the faces
        found so far; the records are the same, in the same order, as with one worker. Give the recogniser
        ``threads=1`` then: the workers are the parallelism."""
        pending: list[tuple[ImageResult, list, np.ndarray, np.ndarray | None]] = []  # result, faces, crops, rgb
        n_crops = 0

        def flush():
            nonlocal n_crops
            crops = [c for _, _, c, _ in pending if len(c)]
            probs = self.classifier.predict_proba(np.concatenate(crops)) if crops else np.zeros((0, 7))
            i = 0
            for result, faces, crops_of, rgb in pending:
                if result.error is None:
                    result = ImageResult(result.path, result.width, result.height,
                                         self._results(faces, probs[i:i + len(faces)]))
                    i += len(faces)
                if keep_crops:
                    yield result, rgb, crops_of
                else:
                    yield (result, rgb) if keep_images else result
            pending.clear()
            n_crops = 0

        empty = self.spec.empty()

        def load(p):
            try:
                rgb = read_image(p)
                faces, crops = self._faces(rgb)
                return (ImageResult(str(p), int(rgb.shape[1]), int(rgb.shape[0])), faces, crops,
                        rgb if keep_images else None)
            except ImageError as exc:
                return ImageResult(str(p), None, None, [], str(exc)), [], empty, None

        for item in (map(load, paths) if workers <= 1 else ordered_map(load, paths, workers)):
            pending.append(item)
            n_crops += len(item[2])
            if n_crops >= batch_faces:
                yield from flush()
        yield from flush()


def ordered_map(fn, items: Iterable, workers: int, ahead: int | None = None) -> Iterator:
    """``map(fn, items)`` on ``workers`` threads, results in input order, at most ``ahead`` (default
    ``2 * workers``) calls in flight or done but not yet taken, so memory stays bounded on a long input.
    An exception in ``fn`` is raised here, at its item's turn; closing the iterator cancels what has not started."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    ahead = ahead or 2 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ferkit")
    queue: deque = deque()
    try:
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) >= ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
