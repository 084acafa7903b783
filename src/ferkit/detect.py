"""Face detection, offline: CenterFace (Xu et al. 2019) on onnxruntime, behind a small interface.

The weights (``weights/detectors/centerface.onnx``, 7 MB, MIT licence, see ``LICENSE-centerface``) ship
inside the package; nothing is downloaded. A detector takes an RGB uint8 image (H, W, 3) and returns
:class:`Face` records in that image's pixel coordinates. Register another one with
:func:`register_detector` to make it available as ``--detector NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

DETECTORS_DIR = Path(__file__).parent / "weights" / "detectors"


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` = (x, y, w, h) in image pixels, detector ``score`` in 0..1, and 5
    ``landmarks`` (x, y) when the detector gives them: the eyes (image-left first), nose tip, mouth corners."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)


class CenterFace:
    """CenterFace on onnxruntime. Frames larger than ``max_side`` are downscaled before detection (faster;
    faces under about 10 px at that scale are lost); boxes come back in the original frame's pixels."""

    name = "centerface"

    def __init__(self, *, threads: int = 1, max_side: int = 640, threshold: float = 0.5, nms: float = 0.3):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(DETECTORS_DIR / "centerface.onnx"), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.max_side, self.threshold, self.nms = max_side, threshold, nms

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image (H, W, 3), best score first."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sh, sw = image.shape[:2]
        ph, pw = -(-sh // 32) * 32, -(-sw // 32) * 32  # the network needs sides divisible by 32
        canvas = np.zeros((ph, pw, 3), np.float32)
        canvas[:sh, :sw] = image
        heat, size, offset, marks = self.session.run(None, {self.input_name: canvas.transpose(2, 0, 1)[None]})
        ys, xs = np.nonzero(heat[0, 0] > self.threshold)
        if len(ys) == 0:
            return []
        bh = np.exp(size[0, 0, ys, xs]) * 4  # box size, in input pixels (the maps are at 1/4 resolution)
        bw = np.exp(size[0, 1, ys, xs]) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        x0 = np.clip(cx - bw / 2, 0, sw)
        y0 = np.clip(cy - bh / 2, 0, sh)
        x1 = np.clip(cx + bw / 2, 0, sw)
        y1 = np.clip(cy + bh / 2, 0, sh)
        scores = heat[0, 0, ys, xs]
        lx = marks[0, 1::2][:, ys, xs] * bw + x0  # (5, n): landmarks relative to the box's corner
        ly = marks[0, 0::2][:, ys, xs] * bh + y0
        boxes = np.stack([x0, y0, x1 - x0, y1 - y0], 1)
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, self.nms)
        faces = []
        for i in np.asarray(keep).reshape(-1):
            faces.append(Face(tuple(float(v) / scale for v in boxes[i]), float(scores[i]),
                              tuple((float(lx[j, i]) / scale, float(ly[j, i]) / scale) for j in range(5))))
        return sorted(faces, key=lambda f: -f.score)


_DETECTORS: dict[str, Callable[..., object]] = {"centerface": CenterFace}


def register_detector(name: str, factory: Callable[..., object]) -> None:
    if name in _DETECTORS:
        raise ValueError(f"detector {name!r} is already registered")
    _DETECTORS[name] = factory


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


def create_detector(name: str = "centerface", **kwargs):
    try:
        factory = _DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; available: {', '.join(list_detectors())}") from None
    return factory(**kwargs)
