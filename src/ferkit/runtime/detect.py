"""Face detection, offline: CenterFace (Xu et al. 2019) on onnxruntime, behind a small interface.

The weights (``weights/detectors/centerface.onnx``, 7 MB, MIT licence, see ``LICENSE-centerface``) ship
inside the package; nothing is downloaded. A detector takes an RGB uint8 image (H, W, 3) and returns
:class:`Face` records in that image's pixel coordinates. Register another one with
:func:`register_detector` to make it available as ``--detector NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ferkit.runtime.onnx_io import session_options
from ferkit.weights import DEFAULT_DETECTOR

DETECTORS_DIR = Path(__file__).parent.parent / "weights" / "detectors"


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` = (x, y, w, h) in image pixels, detector ``score`` in 0..1, and 5
    ``landmarks`` (x, y) when the detector gives them: the eyes (image-left first), nose tip, mouth corners."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)


SCALES = ("auto", "single")
SMALLEST_FACE = 20  # px of the original image: with scales="auto", faces this narrow are still found
# CenterFace's reliable range, in pixels of the image it sees (measured on the bundled faces pasted at 6-700 px):
# faces narrower than ~16 px are missed or scored under 0.6; wider than ~400 px only an inner part is boxed
RELIABLE_MIN, RELIABLE_MAX = 16, 400
KEEP_MIN, KEEP_MAX = 24, 300  # a pass with a finer/coarser neighbour keeps only the faces in this band of its own
MAX_STEP = 12.0  # at most this ratio between neighbouring scales: their kept bands overlap (24*12 < 300)
COARSE_SIDE = 320  # the pass for faces as large as the frame sees the image at most this large
TILE, TILE_OVERLAP = 1024, KEEP_MAX  # fine passes run on tiles this large (in the pass's pixels), this much overlap


def plan_scales(height: int, width: int, *, max_side: int, scales: str = "auto",
                smallest_face: float = SMALLEST_FACE) -> list[float]:
    """The scales (resize factors, coarsest first) the detector runs at on a ``height`` x ``width`` image.

    ``single``: one pass, the image downscaled to at most ``max_side`` pixels per side. ``auto``: that pass,
    plus finer ones where it would miss faces ``smallest_face`` pixels wide (they need >= 16 px where the
    detector sees them), plus a coarser one where a face as large as the frame would be too large for it
    (over ~400 px); neighbouring scales are at most 12x apart, so every face size in between is covered."""
    if scales not in SCALES:
        raise ValueError(f"scales must be one of {', '.join(SCALES)}, not {scales!r}")
    long_side, short_side = max(height, width), min(height, width)
    base = min(1.0, max_side / long_side)
    plan = [base]
    if scales == "single":
        return plan
    if smallest_face > 0:  # finer passes, for the small faces
        fine = min(1.0, RELIABLE_MIN / smallest_face)
        if fine > base * 1.25:
            plan += _between(base, fine)[1:]
    if short_side * base > RELIABLE_MAX:  # a coarser pass, for faces as large as the frame
        coarse = min(base, COARSE_SIDE / long_side)
        if base > coarse * 1.001:
            plan = _between(coarse, base)[:-1] + plan
    return plan


def _between(low: float, high: float) -> list[float]:
    """``low`` to ``high`` in equal ratios of at most MAX_STEP, both ends included."""
    n = int(np.ceil(np.log(high / low) / np.log(MAX_STEP) - 1e-9))
    return [float(low * (high / low) ** (i / n)) for i in range(n + 1)] if n > 0 else [low, high]


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou_max: float) -> np.ndarray:
    """Indices of the boxes (N, 4: x, y, w, h) kept by greedy non-maximum suppression, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), 0.0, iou_max)
    return np.asarray(keep, np.int64).reshape(-1)


PRECISIONS = {"fp32": "centerface.onnx", "int8": "centerface-int8.onnx"}  # int8: tools/quantize_detector.py

class CenterFace:
    """CenterFace on onnxruntime; boxes and landmarks come back in the original image's pixels.

    ``max_side``: the main pass sees the image downscaled to at most this many pixels per side (faster; on
    its own it loses faces under ~16 px at that scale and boxes only part of a face over ~400 px).
    ``scales``: ``"auto"`` (the default) adds the passes the image needs so that faces from ``smallest_face``
    pixels wide (of the original image) up to the whole frame are found: a finer pass (on overlapping tiles)
    where the image is larger than the main pass sees it, and a coarser one (the image at 320 px) where
    ``max_side`` was raised so high that a large face would be missed; the passes' faces are merged by NMS.
    ``"single"``: the main pass only (cheaper; ferkit's one mode before, and ``ferkit video``'s default).
    See :func:`plan_scales`. ``precision``: ``"fp32"`` (the published weights) or ``"int8"`` (quantized by
    ``tools/quantize_detector.py``; registered as ``--detector centerface-int8``)."""

    def __init__(self, *, threads: int = 1, max_side: int = 640, threshold: float = 0.5, nms: float = 0.3,
                 scales: str = "auto", smallest_face: float = SMALLEST_FACE, precision: str = "fp32"):
        import onnxruntime as ort

        if scales not in SCALES:
            raise ValueError(f"scales must be one of {', '.join(SCALES)}, not {scales!r}")
        opts = session_options(threads)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.name = "centerface" if precision == "fp32" else f"centerface-{precision}"
        self.session = ort.InferenceSession(str(DETECTORS_DIR / PRECISIONS[precision]), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.max_side, self.threshold, self.nms = max_side, threshold, nms
        self.scales, self.smallest_face = scales, smallest_face

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One network pass on an RGB image as it is: boxes (N, 4: x0, y0, x1, y1), scores (N,), landmarks
        (N, 5, 2), in that image's pixels, before NMS."""
        sh, sw = image.shape[:2]
        ph, pw = -(-sh // 32) * 32, -(-sw // 32) * 32  # the network needs sides divisible by 32
        canvas = np.zeros((ph, pw, 3), np.float32)
        canvas[:sh, :sw] = image
        heat, size, offset, marks = self.session.run(None, {self.input_name: canvas.transpose(2, 0, 1)[None]})
        ys, xs = np.nonzero(heat[0, 0] > self.threshold)
        bh = np.exp(size[0, 0, ys, xs]) * 4  # box size, in input pixels (the maps are at 1/4 resolution)
        bw = np.exp(size[0, 1, ys, xs]) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        x0 = np.clip(cx - bw / 2, 0, sw)
        y0 = np.clip(cy - bh / 2, 0, sh)
        x1 = np.clip(cx + bw / 2, 0, sw)
        y1 = np.clip(cy + bh / 2, 0, sh)
        lx = marks[0, 1::2][:, ys, xs] * bw + x0  # (5, n): landmarks relative to the box's corner
        ly = marks[0, 0::2][:, ys, xs] * bh + y0
        return (np.stack([x0, y0, x1, y1], 1).astype(np.float64), heat[0, 0, ys, xs].astype(np.float64),
                np.stack([lx.T, ly.T], 2).astype(np.float64))

    def _pass(self, image: np.ndarray, scale: float, tiled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The faces at one scale, in original-image pixels (x0, y0, x1, y1). ``tiled``: large images are cut
        into overlapping tiles (bounded memory); a face cut by a tile's inner edge is left to the tile
        that holds it whole (the overlap is wider than any face the pass keeps)."""
        h, w = image.shape[:2]
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        sh, sw = image.shape[:2]
        step = TILE - TILE_OVERLAP
        if not tiled or max(sh, sw) <= TILE + TILE_OVERLAP // 2:
            origins = [(0, 0, sh, sw)]
        else:
            ny, nx = max(1, -(-(sh - TILE) // step) + 1), max(1, -(-(sw - TILE) // step) + 1)
            ty = np.linspace(0, max(0, sh - TILE), ny).round().astype(int)
            tx = np.linspace(0, max(0, sw - TILE), nx).round().astype(int)
            origins = [(y, x, min(sh, y + TILE), min(sw, x + TILE)) for y in ty for x in tx]
        boxes, scores, marks = [], [], []
        for y0, x0, y1, x1 in origins:
            b, s, m = self._run(np.ascontiguousarray(image[y0:y1, x0:x1]))
            inner = np.zeros(len(b), bool)  # touching an edge this tile shares with a neighbour
            inner |= (b[:, 0] <= 1) & (x0 > 0)
            inner |= (b[:, 1] <= 1) & (y0 > 0)
            inner |= (b[:, 2] >= x1 - x0 - 1) & (x1 < sw)
            inner |= (b[:, 3] >= y1 - y0 - 1) & (y1 < sh)
            offset = np.array([x0, y0], np.float64)
            boxes.append(b[~inner] + np.tile(offset, 2))
            scores.append(s[~inner])
            marks.append(m[~inner] + offset)
        sx, sy = sw / w, sh / h  # the exact resize factors, per axis
        div = np.array([sx, sy, sx, sy])
        return np.concatenate(boxes) / div, np.concatenate(scores), np.concatenate(marks) / np.array([sx, sy])

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image (H, W, 3), best score first."""
        h, w = image.shape[:2]
        plan = plan_scales(h, w, max_side=self.max_side, scales=self.scales, smallest_face=self.smallest_face)
        boxes, scores, marks, level = [], [], [], []
        for k, scale in enumerate(plan):
            b, s, m = self._pass(image, scale, tiled=len(plan) > 1 and scale > plan[0])
            keep = nms(np.c_[b[:, :2], b[:, 2:] - b[:, :2]], s, self.nms)  # within the pass, as before
            b, s, m = b[keep], s[keep], m[keep]
            width = (b[:, 2] - b[:, 0]) * scale  # in the pass's pixels
            ok = np.ones(len(b), bool)
            if k > 0:  # a coarser pass finds the large faces whole
                ok &= width <= KEEP_MAX
            if k < len(plan) - 1:  # a finer pass finds the small faces more surely
                ok &= width >= KEEP_MIN
            boxes.append(b[ok]), scores.append(s[ok]), marks.append(m[ok]), level.append(np.full(ok.sum(), k))
        b, s, m, level = (np.concatenate(boxes), np.concatenate(scores), np.concatenate(marks),
                          np.concatenate(level))
        if len(plan) > 1:
            keep = nms(np.c_[b[:, :2], b[:, 2:] - b[:, :2]], s, self.nms)
            keep = _drop_parts(b, level, keep)
            b, s, m = b[keep], s[keep], m[keep]
        faces = [Face((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), float(sc),
                      tuple((float(px), float(py)) for px, py in lm))
                 for (x0, y0, x1, y1), sc, lm in zip(b, s, m)]
        return sorted(faces, key=lambda f: -f.score)


UPRIGHT_MIN_ROLL = 10.0  # degrees: faces turned further in the image plane get their landmarks found again upright
UPRIGHT_PATCH = 192  # px: the square the face is searched again in (the face half its width)


def upright_landmarks(detector, rgb: np.ndarray, face: Face, min_roll: float = UPRIGHT_MIN_ROLL) -> Face:
    """``face`` with its landmarks found again on the face turned upright, when its eye line is tilted by at least
    ``min_roll`` degrees: CenterFace learnt its landmarks on upright faces and pulls them towards upright (its roll
    read 5-17 degrees short at 30-45 degrees, measured on the bundled faces turned by known angles:
    ``tests/test_pose.py``). A square of twice the face's size around it, scaled to :data:`UPRIGHT_PATCH` pixels,
    is turned by the measured roll and searched again, with its mirror image; the mean landmarks of the face found nearest its centre in the two are
    mapped back into ``rgb``'s pixels. The box and score stay; a face not found again keeps its landmarks."""
    from ferkit.runtime.pose import head_pose

    pose = head_pose(face.landmarks)
    if pose is None or abs(pose.roll) < min_roll:
        return face
    x, y, w, h = face.box
    if max(w, h) < 8:
        return face
    cx, cy, side = x + w / 2, y + h / 2, UPRIGHT_PATCH
    # counter-clockwise by the face's clockwise roll, scaled so the face is half the patch: one cheap pass finds it
    turn = cv2.getRotationMatrix2D((cx, cy), pose.roll, side / (2 * max(w, h)))
    turn[:, 2] += (side / 2 - cx, side / 2 - cy)
    patch = cv2.warpAffine(rgb, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    views = []
    for flip in (False, True):  # the patch and its mirror image: their mean halves the landmarks' jitter
        seen = cv2.flip(patch, 1) if flip else patch
        found = [f for f in detector.detect(seen) if f.landmarks is not None]
        if not found:
            return face
        near = min(found, key=lambda f: (f.box[0] + f.box[2] / 2 - side / 2) ** 2 + (f.box[1] + f.box[3] / 2 - side / 2) ** 2)
        marks = np.asarray(near.landmarks, np.float64)
        if flip:  # back to the patch's pixels; the image-left eye (mouth corner) of the mirror is the right one
            marks[:, 0] = side - 1 - marks[:, 0]
            marks = marks[[1, 0, 2, 4, 3]]
        views.append(marks)
    back = cv2.invertAffineTransform(turn)
    marks = np.mean(views, axis=0) @ back[:, :2].T + back[:, 2]
    return Face(face.box, face.score, tuple((float(px), float(py)) for px, py in marks))


def _drop_parts(boxes: np.ndarray, level: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``keep`` without the boxes of a finer pass that lie mostly (70%) inside a box twice as wide from a
    coarser pass: a part of a large face (an eye, the mouth) boxed by the finer pass, not a face of its own."""
    b, lv = boxes[keep], level[keep]
    ix = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    area = np.maximum(1e-9, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    width = b[:, 2] - b[:, 0]
    inside = (ix * iy / area[:, None] > 0.7) & (lv[None, :] < lv[:, None]) & (width[None, :] >= 2 * width[:, None])
    return keep[~inside.any(1)]


_DETECTORS: dict[str, Callable[..., object]] = {"centerface": CenterFace,
                                                "centerface-int8": partial(CenterFace, precision="int8")}


def register_detector(name: str, factory: Callable[..., object]) -> None:
    if name in _DETECTORS:
        raise ValueError(f"detector {name!r} is already registered")
    _DETECTORS[name] = factory


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


def describe_detectors() -> list[str]:
    """One line per registered detector for ``ferkit models``: name, what it is, its file and size (MB); the
    default is marked. A detector registered by a user (no shipped file) is listed by name."""
    lines = []
    for name in list_detectors():
        default = " (default)" if name == DEFAULT_DETECTOR else ""
        precision = name.removeprefix("centerface").lstrip("-") or "fp32"
        if name.startswith("centerface") and precision in PRECISIONS:
            path = DETECTORS_DIR / PRECISIONS[precision]
            how = "published weights" if precision == "fp32" else "quantized by tools/quantize_detector.py"
            lines.append(f"  {name}{default}: CenterFace (Xu et al. 2019), {precision}, {how}; "
                         f"{path.name} {path.stat().st_size / 1e6:.1f} MB, MIT licence (LICENSE-centerface)")
        else:
            lines.append(f"  {name}{default}: registered with ferkit.runtime.detect.register_detector")
    return lines


def create_detector(name: str = DEFAULT_DETECTOR, **kwargs):
    """A registered detector, made with ``kwargs`` (``threads``, ``max_side``, ``scales``...). A factory
    that takes no ``scales`` argument (a detector registered before it existed) is made without it."""
    try:
        factory = _DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; available: {', '.join(list_detectors())}") from None
    if "scales" in kwargs and not _takes(factory, "scales"):
        kwargs.pop("scales")
    return factory(**kwargs)


def _takes(factory: Callable[..., object], name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)
