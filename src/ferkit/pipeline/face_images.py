"""Read face images for classification (each whole image is one face)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.core.images import ImageError  # noqa: F401  (raised by read_face; kept importable from here)

SAMPLE_FACE = Path(__file__).resolve().parent.parent / "assets" / "sample_face.png"
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample_photo.jpg"


def read_face(path: str | Path) -> tuple[np.ndarray, str | None]:
    """A uint8 (48, 48) grey face and a note when the image had to be converted or resized.

    Reads like ``ferkit predict`` does (:func:`ferkit.core.images.read_image`: any Pillow format, EXIF
    orientation, 16-bit, alpha) and converts to grey the same way, so `classify` and `predict --no-detect`
    give the same probabilities for the same file. Raises :class:`~ferkit.core.images.ImageError`.
    """
    from ferkit.runtime.crop import whole_face
    from ferkit.core.images import read_image

    img = read_image(path)
    note = None if img.shape[:2] == (48, 48) else \
        f"{img.shape[1]}x{img.shape[0]} image resized to 48x48 and taken as one face"
    return whole_face(img), note
