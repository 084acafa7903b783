"""Crop a detected face the way FER2013 frames its faces: grey, 48x48, the face filling most of the square.

FER2013's framing relative to a detector's output is *measured*, not guessed: ``tools/fit_fer_frame.py``
runs the detector on PublicTest faces (upscaled and padded, so their true 48x48 frame is known) and stores
the median frame geometry in ``assets/fer_frame.json``. Two framings are fitted:

- ``box`` (the default): from the detection box: the frame's side and centre in units of the box size,
  no rotation. Re-framed PublicTest faces keep 68.75% accuracy against 69.33% for the originals.
- ``eyes``: from the two eye landmarks: side and centre in units of the eye distance, rotated so the eyes
  are level. It scored lower (67.05%): FER2013's own faces are not roll-corrected (median roll 4.4°), so
  levelling them moves them away from what the classifier learned.
- ``align``: all 5 landmarks (eyes, nose tip, mouth corners) mapped onto a fixed template by the least-squares
  similarity transform (rotation, uniform scale, shift; Umeyama 1991), as face recognition pipelines align
  faces. The template is where FER2013's own faces have their landmarks (median over PublicTest, made
  mirror-symmetric and level; ``tools/fit_fer_frame.py``), so an aligned face is framed like FER2013's, upright.
  A model declares the framing it was trained on (metadata ``framing``: ``box`` or ``align``; absent: ``box``)
  and every command crops its faces so (:func:`framing_of`). A face without landmarks falls back to ``box``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ferkit.runtime.detect import Face

FRAME_FILE = Path(__file__).parent.parent / "assets" / "fer_frame.json"
SIZE = 48


@dataclass(frozen=True)
class FerFrame:
    """FER2013's square frame relative to a face: ``side`` and centre offset (``dx``, ``dy``) in units of
    the reference length (eye distance for ``eyes``, box width/height for ``box``)."""

    method: str
    side: float
    dx: float
    dy: float


FRAMINGS = ("box", "align")  # what a model may declare; ``eyes`` stays a measured alternative, not shipped


@lru_cache(maxsize=1)
def fitted_frames() -> dict[str, FerFrame]:
    data = json.loads(FRAME_FILE.read_text())
    frames = {m: FerFrame(m, **{k: data[m][k] for k in ("side", "dx", "dy")}) for m in ("eyes", "box")}
    frames["align"] = FerFrame("align", 0.0, 0.0, 0.0)
    return frames


@lru_cache(maxsize=1)
def align_template() -> np.ndarray:
    """The 5-landmark template (5, 2) float, in pixels of the 48x48 crop: eyes (image-left first), nose tip,
    mouth corners (image-left first)."""
    return np.array(json.loads(FRAME_FILE.read_text())["align"]["template"], np.float64)


def framing_of(metadata: dict) -> FerFrame:
    """The framing a model was trained on, from its metadata (``framing``; ``box`` when absent).
    Raises ValueError for an unknown name."""
    name = metadata.get("framing", "box") or "box"
    if name not in FRAMINGS:
        raise ValueError(f"unknown framing {name!r} in the model's metadata; expected one of {', '.join(FRAMINGS)}")
    return fitted_frames()[name]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the least-squares similarity transform (rotation, uniform scale, translation, no
    reflection) taking points ``src`` (N, 2) onto ``dst`` (N, 2) (Umeyama, IEEE PAMI 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign) / s.var(0).sum())
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def align_face(image: np.ndarray, face: Face, template: np.ndarray | None = None, *, size: int = SIZE,
               colour: bool = False) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``face`` (grey uint8, or RGB with ``colour``) with its 5 landmarks mapped onto
    :func:`align_template` (scaled from its 48x48 frame to ``size``; see the module docstring). Raises ValueError
    when the face has no landmarks."""
    if face.landmarks is None or len(face.landmarks) != 5:
        raise ValueError("alignment needs the 5 landmarks")
    src = _pixels(image, colour)
    dst = (align_template() if template is None else template) * (size / SIZE)
    m = similarity_transform(np.array(face.landmarks), dst)
    scale = float(np.hypot(*m[:, 0]))  # output pixels per image pixel
    work = max(size, min(4 * size, int(round(size / scale))))  # warp to at most 4x the output, then area-resize
    m = m * (work / size)
    square = cv2.warpAffine(src, m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return square if work == size else cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def frame_square(face: Face, frame: FerFrame | None = None) -> tuple[float, float, float, float]:
    """The FER2013 square for ``face`` as (centre x, centre y, side, roll angle in degrees; ``box``: the quarter
    turn that brings a face lying on its side upright, see :func:`quarter_turn`)."""
    if frame is None:
        frame = fitted_frames()["box"]
    if frame.method == "eyes":
        if face.landmarks is None:
            raise ValueError("the eyes framing needs landmarks")
        (ax, ay), (bx, by) = face.landmarks[0], face.landmarks[1]
        ex, ey = bx - ax, by - ay
        dist = float(np.hypot(ex, ey))
        angle = float(np.degrees(np.arctan2(ey, ex)))
        ux, uy = ex / dist, ey / dist  # the eye line, and its normal pointing down the face
        mx, my = (ax + bx) / 2, (ay + by) / 2
        cx = mx + (frame.dx * ux - frame.dy * uy) * dist
        cy = my + (frame.dx * uy + frame.dy * ux) * dist
        return cx, cy, frame.side * dist, angle
    x, y, w, h = face.box
    return (x + w / 2 + frame.dx * w, y + h / 2 + frame.dy * h, frame.side * (w * h) ** 0.5,
            quarter_turn(face.landmarks))


def quarter_turn(landmarks) -> float:
    """The multiple of 90 degrees that brings a face upright, from its eye landmarks (0 without them).

    A photo turned sideways or upside down without an EXIF tag shows its faces turned; the box framing keeps a
    face's small roll (as FER2013's faces keep theirs) but turns a face lying on its side upright. The
    sample photo turned by 90, 180 and 270 degrees reads eye-line angles of -80, 167 and 66 degrees."""
    if landmarks is None:
        return 0.0
    (ax, ay), (bx, by) = landmarks[0], landmarks[1]
    roll = float(np.degrees(np.arctan2(by - ay, bx - ax)))
    return float(90 * round(roll / 90)) % 360


def to_grey(image: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) or grey (H, W) uint8 -> grey (H, W) uint8, with the usual luma weights."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _pixels(image: np.ndarray, colour: bool) -> np.ndarray:
    """The image as the model's input channels: grey (H, W) or RGB (H, W, 3) uint8."""
    if not colour:
        return to_grey(image)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def whole_face(image: np.ndarray, size: int = SIZE, colour: bool = False) -> np.ndarray:
    """An image that is already one face crop (``--no-detect``, ``ferkit classify``): ``size`` x ``size``, grey (or
    RGB with ``colour``), resized with area averaging (or bilinear when enlarged) when it has another size."""
    src = _pixels(image, colour)
    if src.shape[:2] == (size, size):
        return src
    enlarge = size > SIZE and size > max(src.shape[:2])  # FER2013's 48x48 faces for a larger model: bilinear
    return cv2.resize(src, (size, size), interpolation=cv2.INTER_LINEAR if enlarge else cv2.INTER_AREA)


def crop_face(image: np.ndarray, face: Face, frame: FerFrame | None = None, *, size: int = SIZE,
              colour: bool = False) -> np.ndarray:
    """The FER2013-style crop of ``face`` from an RGB or grey image: (size, size) grey uint8, or (size, size, 3) RGB
    uint8 with ``colour`` (48 grey for the 48x48 models; the model's spec says, :class:`ferkit.runtime.spec.ModelSpec`).

    The square is rotated upright (eyes level) where the framing uses the eyes or aligns the landmarks (``align``;
    a face without landmarks is then framed by its box); parts of it outside the image repeat the border pixels.
    Large faces are resampled with area averaging (no aliasing).
    """
    if frame is not None and frame.method == "align":
        if face.landmarks is not None:
            return align_face(image, face, size=size, colour=colour)
        frame = None
    src = _pixels(image, colour)
    cx, cy, side, angle = frame_square(face, frame)
    work = max(size, min(4 * size, int(round(side))))  # warp to at most 4x the output, then area-resize
    m = cv2.getRotationMatrix2D((cx, cy), angle, work / side)
    m[0, 2] += work / 2 - cx
    m[1, 2] += work / 2 - cy
    square = cv2.warpAffine(src, m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return square if work == size else cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def largest_face_crop(image, detector=None, spec=None) -> np.ndarray:
    """The crop of the largest face in a photo (a path or an RGB array), framed as ``ferkit predict`` frames it for a
    model of ``spec`` (a :class:`ferkit.runtime.spec.ModelSpec`; None: 48x48 grey, box framing); an image that is already
    48x48 is taken as the face. Raises ValueError when no face is found."""
    from ferkit.runtime.detect import create_detector
    from ferkit.core.images import read_image

    rgb = image if isinstance(image, np.ndarray) else read_image(image)
    if rgb.shape[:2] == (SIZE, SIZE):
        return to_grey(rgb) if spec is None else spec.whole(rgb)
    faces = (detector or create_detector()).detect(rgb)
    if not faces:
        raise ValueError(f"{image if not isinstance(image, np.ndarray) else 'image'}: no face found")
    largest = max(faces, key=lambda f: f.box[2] * f.box[3])
    return crop_face(rgb, largest) if spec is None else spec.crop(rgb, largest)
