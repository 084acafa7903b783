"""Reading photos robustly: every format Pillow reads, EXIF orientation applied, one clear error per file.

:func:`read_image` returns an RGB uint8 array (H, W, 3) or raises :class:`ImageError` with a one-line
message naming the file. Handled: 16-bit grey and colour (scaled to 8 bits), RGBA/LA (alpha dropped onto
white), CMYK, palette, greyscale, EXIF-rotated photos; refused: missing, empty, non-image and truncated
files, and images over ``MAX_PIXELS`` (a decompression-bomb guard; the one limit: Pillow's own
``Image.MAX_IMAGE_PIXELS`` is raised to it where it is lower, so it does not refuse images under it first).

:func:`to_levels` is the one rule for the values of NumPy images and faces (photos, frames, 48x48 faces).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

MAX_PIXELS = 100_000_000  # 100 megapixels: larger images are refused, not decoded
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
                  ".jfif", ".jpe", ".ico", ".tga", ".dib"}


class ImageError(ValueError):
    """A file that could not be read as an image; the message names the file and the reason."""


class NotAnImage(ImageError):
    """Content that no image decoder recognises (a text file, a video, random bytes)."""


class TooManyPixels(ImageError):
    """An image over the pixel limit: refused before it is decoded."""


def check_file(path: str | os.PathLike, what: str, error: type[ValueError] = ValueError) -> Path:
    """``path`` as a Path if it is a non-empty file; else raise ``error`` naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such file")
    if path.is_dir():
        raise error(f"{path}: is a folder, not {what}")
    if path.stat().st_size == 0:
        raise error(f"{path}: empty file (0 bytes)")
    return path


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """The image at ``path`` as RGB uint8 (H, W, 3), upright (EXIF orientation applied)."""
    path = check_file(path, "an image", ImageError)
    return decode_image(path, str(path), max_pixels=max_pixels)


def decode_image(source, name: str, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``source`` (a path, bytes or a binary file object) as RGB uint8 (H, W, 3), upright.

    The format is sniffed from the content (never from a file name). Errors name ``name``:
    :class:`NotAnImage` for content no decoder recognises, :class:`TooManyPixels` over ``max_pixels``
    (checked from the header, before decoding; default ``MAX_PIXELS``), :class:`ImageError` for a broken
    or truncated image.
    """
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        source = io.BytesIO(source)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's guard (a warning over it, an error over twice it) must
        # not refuse, before the header is read, an image under ferkit's limit: the one limit is max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the header check below decides
            with Image.open(source) as img:
                if img.width * img.height > max_pixels:
                    raise TooManyPixels(f"{name}: {img.width}x{img.height} is over the {_megapixels(max_pixels)} "
                                        "megapixel limit (decompression-bomb guard)")
                img.load()  # decode now: a truncated file fails here, not later
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: not a readable image") from None
    except Image.DecompressionBombError:  # over twice the limit: refused by Pillow while opening
        raise TooManyPixels(f"{name}: over the {_megapixels(max_pixels)} megapixel limit "
                            "(decompression-bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in reason.lower():
            reason = "truncated file"
        raise ImageError(f"{name}: broken image ({reason})") from None


def _megapixels(n: int) -> str:
    return f"{n / 1_000_000:g}"


def to_rgb(img) -> np.ndarray:
    """A PIL image of any mode -> RGB uint8 (H, W, 3)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        grey = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        grey = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        from PIL import Image

        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def to_levels(values: np.ndarray, what: str = "array") -> np.ndarray:
    """Image values (any shape) as uint8 levels 0..255, by one rule for every entry point (``from_array``,
    :meth:`ferkit.pipeline.recognize.Recognizer.predict`, :meth:`ferkit.runtime.classifier.Classifier.predict_proba`):

    - uint8: as is; uint16: 16-bit levels, scaled by 255 / 65535 and rounded;
    - other integers: every value in 0..255 as is; in 0..65535 (some over 255) as 16-bit levels;
    - floats: in 0..1 (the largest value <= 1) scaled by 255; in 0..255 as is; in 0..65535 as 16-bit levels
      (rounded). A float image that is all but black (every value <= 1 on a 0..255 scale) is read as 0..1;
    - NaN or infinity, negative values, values over 65535 and other types (bool, complex, object) raise
      ValueError naming ``what``, the dtype and the range found. An empty array gives an empty uint8 array.
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    kind = values.dtype.kind
    if kind not in "iuf":
        raise ValueError(f"{what} of dtype {values.dtype}: expected integer or float levels, not "
                         f"{'bool' if kind == 'b' else values.dtype}")
    if values.size == 0:
        return values.astype(np.uint8)
    if kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{what} of dtype {values.dtype}: holds NaN or infinite values")
    low, high = values.min(), values.max()
    if low < 0 or high > 65535:
        raise ValueError(f"{what} of dtype {values.dtype}: values {low:g}..{high:g} are not image levels "
                         "(expected 0..255 or 16-bit 0..65535, or floats in 0..1)")
    if values.dtype == np.uint16 or high > 255:
        scale = 255.0 / 65535.0
    elif kind == "f" and high <= 1.0:
        scale = 255.0
    elif kind == "f":
        scale = 1.0
    else:
        return values.astype(np.uint8)
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def from_array(image: np.ndarray, color: str) -> np.ndarray:
    """A NumPy image -> RGB uint8 (H, W, 3). ``color``: "RGB", "BGR" (OpenCV's order) or "GRAY"; (H, W) is
    grey. Values by :func:`to_levels`; an empty image (no pixels) or values that are not levels raise
    :class:`ImageError`."""
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = image.reshape(image.shape[0], image.shape[1])
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"array of shape {image.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    if image.size == 0:
        raise ImageError(f"array of shape {image.shape}: empty image (no pixels)")
    try:
        image = to_levels(image, f"array of shape {image.shape}")
    except ValueError as exc:
        raise ImageError(str(exc)) from None
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    color = color.upper()
    if color == "BGR":
        return np.ascontiguousarray(image[..., ::-1])
    if color == "RGB":
        return np.ascontiguousarray(image)
    raise ImageError(f"color must be RGB or BGR for a 3-channel array, not {color!r}")


def find_images(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursive, image suffixes only) and glob patterns, keeping the given order; a file
    reached twice (a folder and a glob over its files, a path given twice) is kept once, where it first appears.

    A path that does not exist is kept, so it is reported as an error rather than silently dropped.
    """
    import glob

    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        elif not p.exists() and any(ch in str(item) for ch in "*?["):
            out.extend(sorted(Path(m) for m in glob.glob(str(item), recursive=True) if Path(m).is_file()))
        else:
            out.append(p)
    seen: set = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
