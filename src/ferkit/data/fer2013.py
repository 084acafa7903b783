"""FER2013 readers: the challenge CSV and the per-image folder export, as uint8 arrays.

Both layouts load into one :class:`FerData`: ``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 in
FER2013 order (see :mod:`ferkit.core.labels`) and ``usage`` (N,) strings (``Training``, ``PublicTest``,
``PrivateTest``). A parsed CSV is cached as ``.npz`` keyed on the source's path, size and mtime, so a
second load of the 32k-row file takes well under a second. :func:`save_npz` writes the same arrays to a
file of your choice (``ferkit data pack``), which :func:`load_fer2013` reads back directly.

Bad input raises :class:`DataError` whose message names the file and row (or image) and what is wrong.
Images in a folder export that are not 48x48 are refused, not resized: a resized face is framed
differently from the rest of FER2013 and would silently cost accuracy.

FER+ labels are read by :mod:`ferkit.data.ferplus`, labelled photo sets by :mod:`ferkit.data.photoset` (both beside this
module, below everything that reads data); the cache they share (:func:`cache_dir`, :func:`cached_arrays`) is here.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS, NUM_CLASSES, label_from_name

IMAGE_SIZE = 48
SPLITS = ("Training", "PublicTest", "PrivateTest")
_CACHE_VERSION = 1


class DataError(ValueError):
    """A data set could not be read; the message names the file/row and what to fix."""


@dataclass(frozen=True)
class FerData:
    """Faces, labels and split names of a FER2013-style data set."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, 0..6
    usage: np.ndarray  # (N,) str
    source: str = ""
    targets: np.ndarray | None = None  # (N, 7) float32 soft labels (FER+ votes), or None: one-hot of ``labels``

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> FerData:
        """Rows of one split. A source that holds a single split answers for it under any name."""
        name = canonical_split(name)
        mask = self.usage == name
        if not mask.any():
            present = sorted(set(self.usage.tolist()))
            if len(present) == 1 and present[0] == "Unknown":
                return self  # a file without a Usage column: all rows are "the" split
            raise DataError(f"{self.source}: no rows of split {name!r}; it has {', '.join(present) or 'no rows'}")
        return self.subset(mask)

    def subset(self, rows: np.ndarray) -> FerData:
        """The rows selected by a boolean mask or an index array (soft targets follow)."""
        return FerData(self.images[rows], self.labels[rows], self.usage[rows], self.source,
                       None if self.targets is None else self.targets[rows])

    def has_splits(self) -> bool:
        """False for a source without split names (a CSV without Usage, a flat folder): every row is "Unknown"."""
        return bool((self.usage != "Unknown").any())

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)


def canonical_split(name: str) -> str:
    """Accept ``publictest``, ``public-test``, ``train`` ... and return the FER2013 Usage name."""
    key = re.sub(r"[^a-z]", "", name.lower())
    aliases = {"training": "Training", "train": "Training", "publictest": "PublicTest", "public": "PublicTest",
               "privatetest": "PrivateTest", "private": "PrivateTest"}
    if key not in aliases:
        raise DataError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
    return aliases[key]


def load_fer2013(path: str | os.PathLike, *, cache: bool = True) -> FerData:
    """Read FER2013 from a challenge CSV (``.csv`` / ``.csv.gz``), a per-image folder export, or a ``.npz``
    written by :func:`save_npz`.

    >>> data = load_fer2013("fer2013.csv.gz")          # doctest: +SKIP
    >>> data.split("PublicTest").images.shape           # doctest: +SKIP
    (3589, 48, 48)
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_folder(path)
    if path.suffix == ".npz":
        return _load_npz(path)
    if not (path.name.endswith(".csv") or path.name.endswith(".csv.gz")):
        raise DataError(f"{path}: expected a FER2013 .csv / .csv.gz / .npz file or an image folder export")
    if not cache:
        return _load_csv(path)
    cache_file = _cache_path(path)
    if cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                return FerData(z["images"], z["labels"], z["usage"].astype(str), str(path))
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    data = _load_csv(path)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: DDP ranks may write at once
    np.savez(tmp, images=data.images, labels=data.labels, usage=data.usage.astype("U11"))
    os.replace(tmp, cache_file)
    return data


def save_npz(data: FerData, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write ``data`` as an ``.npz`` of ``images``, ``labels`` and ``usage`` (no pickle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compress else np.savez)(path, images=data.images, labels=data.labels,
                                                     usage=data.usage.astype("U11"))
    return path


def _load_npz(path: Path) -> FerData:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, usage = z["images"], z["labels"], z["usage"].astype(str)
    except KeyError as exc:
        raise DataError(f"{path}: not a ferkit data file: missing array {exc.args[0]}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable .npz: {exc}") from None
    if images.ndim != 3 or images.shape[1:] != (48, 48) or images.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (N, 48, 48), not {images.dtype} {images.shape}")
    if not (len(images) == len(labels) == len(usage)):
        raise DataError(f"{path}: images, labels and usage differ in length")
    bad = np.flatnonzero((labels < 0) | (labels >= len(EMOTIONS)))
    if len(bad):
        raise DataError(f"{path}: row {int(bad[0])}: label {int(labels[bad[0]])} is not in 0..{len(EMOTIONS) - 1}")
    return FerData(images, labels.astype(np.int64), usage, str(path))


def _cache_path(path: Path) -> Path:
    stat = path.stat()
    key = f"{_CACHE_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_dir() / f"fer2013-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _load_csv(path: Path) -> FerData:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading a FER2013 CSV needs pandas: pip install 'ferkit[train]'") from None

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas' own message is precise (bad gzip, ragged quoting, ...)
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("emotion", "pixels") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a FER2013 CSV has "
                        f"emotion,pixels,Usage (found: {', '.join(frame.columns)})")
    row = lambda i: i + 2  # noqa: E731  (1-based file line: the header is line 1)

    labels = pd.to_numeric(frame["emotion"].str.strip(), errors="coerce")
    bad = labels.isna() | ~labels.isin(range(NUM_CLASSES))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: row {row(i)}: emotion {frame['emotion'].iloc[i]!r} is not a label 0..6 "
                        f"({', '.join(f'{k}={e}' for k, e in enumerate(EMOTIONS))})")

    if "Usage" in frame.columns:
        usage = frame["Usage"].str.strip().to_numpy().astype("U11")
        bad_usage = ~np.isin(usage, SPLITS)
        if bad_usage.any():
            i = int(np.flatnonzero(bad_usage)[0])
            raise DataError(f"{path}: row {row(i)}: unknown Usage {str(usage[i])!r}; expected one of {', '.join(SPLITS)}")
    else:
        usage = np.full(len(frame), "Unknown", dtype="U11")

    pixels = frame["pixels"].str.strip()
    counts = pixels.str.count(r"\s+").to_numpy() + 1
    bad_count = counts != IMAGE_SIZE * IMAGE_SIZE
    if bad_count.any():
        i = int(np.flatnonzero(bad_count)[0])
        raise DataError(f"{path}: row {row(i)}: {counts[i]} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE} "
                        f"(48x48 grey levels separated by spaces)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            flat = np.fromstring(" ".join(pixels), dtype=np.int64, sep=" ")
        ok = flat.size == len(frame) * IMAGE_SIZE * IMAGE_SIZE
    except ValueError:  # a token that is not a number (older NumPy stops early instead of raising)
        ok = False
    if not ok:
        bad_token = ~pixels.str.fullmatch(r"[+-]?\d+(\s+[+-]?\d+)*").to_numpy(dtype=bool)
        i = int(np.flatnonzero(bad_token)[0]) if bad_token.any() else 0
        raise DataError(f"{path}: row {row(i)}: pixels contain a value that is not an integer")
    images = flat.reshape(len(frame), IMAGE_SIZE, IMAGE_SIZE)
    out_of_range = (images < 0) | (images > 255)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range.any(axis=(1, 2)))[0])
        raise DataError(f"{path}: row {row(i)}: pixel value {int(images[i][out_of_range[i]][0])} outside 0..255")
    return FerData(images.astype(np.uint8), labels.to_numpy().astype(np.int64), usage, str(path))


def _usage_from_filename(name: str, top: str) -> str:
    for split in SPLITS:
        if name.startswith(split):
            return split
    # Files without a split prefix: the top-level folder decides (train/ -> Training; test/ or val/ -> PublicTest).
    top = top.lower()
    if top.startswith("train"):
        return "Training"
    if top.startswith(("test", "val", "public")):
        return "PublicTest"
    if top.startswith("private"):
        return "PrivateTest"
    return "Unknown"


def _load_folder(root: Path) -> FerData:
    from ferkit.runtime.crop import to_grey
    from ferkit.core.images import IMAGE_SUFFIXES, ImageError, read_image

    images, labels, usage = [], [], []
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{root}: no images found; expected <split>/<emotion>/*.jpg (e.g. train/happy/Training_1.jpg)")
    for file in files:
        rel = file.relative_to(root).parts
        if len(rel) < 2:
            raise DataError(f"{file}: image outside an emotion folder; expected <split>/<emotion>/{file.name}")
        try:
            label = label_from_name(rel[-2])
        except KeyError as exc:
            raise DataError(f"{file}: folder {rel[-2]!r}: {exc.args[0]}") from None
        try:  # read as `ferkit predict` reads (any Pillow format, EXIF orientation, 16-bit, alpha), then grey
            img = to_grey(read_image(file))
        except ImageError as exc:
            raise DataError(str(exc)) from None
        if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{file}: image is {img.shape[1]}x{img.shape[0]}, expected 48x48 "
                            f"(FER2013 faces are 48x48; crop faces from photos with `ferkit predict`)")
        images.append(img)
        labels.append(label)
        usage.append(_usage_from_filename(file.name, rel[0] if len(rel) > 2 else ""))
    return FerData(np.stack(images), np.array(labels, dtype=np.int64), np.array(usage, dtype="U11"), str(root))


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random, seeded split of ``range(n)`` into train and validation indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def cache_dir(sub: str = "") -> Path:
    """ferkit's cache folder (``FERKIT_CACHE``, default ``~/.cache/ferkit``), or a sub-folder of it."""
    root = Path(os.environ.get("FERKIT_CACHE", Path.home() / ".cache" / "ferkit"))
    return root / sub if sub else root


def files_key(faces: list, *, boxes: bool = True) -> list:
    """Part of a cache key: each labelled file's resolved path, label, (box,) size and mtime (-1 if missing)."""
    items = []
    for f in faces:
        st = f.path.stat() if f.path.exists() else None
        items.append([str(f.path.resolve()), f.label, *([f.box] if boxes else []), st.st_size if st else -1,
                      st.st_mtime_ns if st else -1])
    return items


def cached_arrays(path: Path, make, *, cache: bool = True) -> dict[str, np.ndarray]:
    """The arrays saved in ``path`` (.npz) when ``cache`` and it exists; else ``make()`` (a dict of arrays),
    saved there atomically (a temporary file per process, then a rename) when ``cache``."""
    if cache and path.exists():
        with np.load(path) as z:
            return dict(z)
    arrays = make()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    return arrays
