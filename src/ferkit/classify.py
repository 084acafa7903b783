"""Read face images for classification (each whole image is one face)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_FACE = Path(__file__).resolve().parent / "assets" / "sample_face.png"
SAMPLE_PHOTO = Path(__file__).resolve().parent / "assets" / "sample_photo.jpg"


class ImageError(ValueError):
    """An image file could not be read; the message names the file."""


def read_face(path: str | Path) -> tuple[np.ndarray, str | None]:
    """A uint8 (48, 48) grey face and a note when the image had to be converted or resized."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise ImageError(f"{path}: not a readable image")
    if img.shape == (48, 48):
        return img, None
    resized = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
    return resized, f"{img.shape[1]}x{img.shape[0]} image resized to 48x48 and taken as one face"
