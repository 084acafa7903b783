"""FER2013 readers: the challenge CSV and the per-image folder export, as uint8 arrays.

Both layouts load into one :class:`FerData`: ``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 in
FER2013 order (see :mod:`ferkit.labels`) and ``usage`` (N,) strings (``Training``, ``PublicTest``,
``PrivateTest``). A parsed CSV is cached as ``.npz`` keyed on the source's path, size and mtime, so a
second load of the 32k-row file takes well under a second. :func:`save_npz` writes the same arrays to a
file of your choice (``ferkit data pack``), which :func:`load_fer2013` reads back directly.

Bad input raises :class:`DataError` whose message names the file and row (or image) and what is wrong.
Images in a folder export that are not 48x48 are refused, not resized: a resized face is framed
differently from the rest of FER2013 and would silently cost accuracy.

Over 400 lines on purpose: every reader of labelled faces (FER2013, FER+ labels, labelled photo sets) and the
cache they share live here, below everything that reads data, so that no import circle forms (issue 26).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.labels import EMOTIONS, NUM_CLASSES, label_from_name

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
    from ferkit.crop import to_grey
    from ferkit.images import IMAGE_SUFFIXES, ImageError, read_image

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


LABEL_SOURCES = ("fer2013", "ferplus-majority", "ferplus-votes", "mixed")
MIX_WEIGHT = 0.5  # share of the FER2013 one-hot label in the ``mixed`` targets
FERPLUS_FILE = "fer2013new.csv"
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                   "NF")
# FER+ vote columns in FER2013's label order (angry, disgust, fear, happy, sad, surprise, neutral).
_FERPLUS_TO_FER = [FERPLUS_COLUMNS.index(c) for c in ("anger", "disgust", "fear", "happiness", "sadness", "surprise",
                                                        "neutral")]


def ferplus_path(data: FerData, ferplus: str | os.PathLike | None = None) -> Path:
    """The FER+ file for ``data``: ``ferplus`` if given, else ``fer2013new.csv`` beside the data file."""
    if ferplus:
        return Path(ferplus)
    return Path(data.source).parent / FERPLUS_FILE


def load_ferplus_votes(path: str | os.PathLike, data: FerData) -> np.ndarray:
    """The FER+ votes (N, 10) for the rows of ``data``, in Microsoft's column order (:data:`FERPLUS_COLUMNS`).

    The FER+ file (Microsoft's ``fer2013new.csv`` layout: ``Usage,Image name,neutral,...,NF``) must hold one
    row per row of the FER2013 file, in the same order: Microsoft's full 35,887-row file beside the full
    ``fer2013.csv``, or a subset of both in the same order. Rows FER+ dropped (empty ``Image name``) get no
    votes. A file that does not line up (row count, or a row whose Usage differs) raises :class:`DataError`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; FER+ labels need Microsoft's fer2013new.csv beside the FER2013 CSV "
                        "(or give its path with --ferplus)")
    if Path(data.source).is_dir():
        raise DataError(f"{data.source}: FER+ labels are aligned by row with the challenge CSV (or a .npz packed from "
                        "it), not with a per-image folder export")
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading FER+ labels needs pandas: pip install 'ferkit[train]'") from None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("Usage", "Image name", *FERPLUS_COLUMNS) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a FER+ file has Usage,Image name,"
                        f"{','.join(FERPLUS_COLUMNS)}")
    if len(frame) != len(data):
        raise DataError(f"{path}: {len(frame)} rows, but {data.source} has {len(data)}: the FER+ file must have one "
                        "row per row of the FER2013 file, in the same order")
    usage = frame["Usage"].str.strip().to_numpy().astype("U11")
    known = data.usage != "Unknown"
    differ = np.flatnonzero(known & (usage != data.usage))
    if len(differ):
        i = int(differ[0])
        raise DataError(f"{path}: row {i + 2}: Usage {str(usage[i])!r}, but row {i + 2} of {data.source} is "
                        f"{str(data.usage[i])!r}: the files are not aligned row by row")
    named = frame["Image name"].str.strip().to_numpy() != ""
    votes = np.zeros((len(frame), len(FERPLUS_COLUMNS)), np.int64)
    for j, col in enumerate(FERPLUS_COLUMNS):
        values = pd.to_numeric(frame[col].str.strip().where(named, "0"), errors="coerce")
        bad = values.isna() | (values < 0) | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: row {i + 2}: {col} = {frame[col].iloc[i]!r} is not a vote count")
        votes[:, j] = values.to_numpy().astype(np.int64)
    return votes


def relabel(data: FerData, source: str = "fer2013", ferplus: str | os.PathLike | None = None) -> FerData:
    """``data`` with the labels of ``source``: ``fer2013`` (as it is), ``ferplus-majority``, ``ferplus-votes`` or
    ``mixed``.

    - ``ferplus-majority``: the emotion with the most of the 10 FER+ votes. Faces are dropped when the top
      count is shared (no majority), when the top vote is contempt, unknown or not-a-face, or when FER+
      dropped the row.
    - ``ferplus-votes``: the soft distribution over the 7 emotions (``targets``; ``labels`` = its argmax,
      ties to the earlier label). Contempt, unknown and not-a-face votes are left out and the rest
      renormalised; faces with no vote for any of the 7 emotions are dropped.
    - ``mixed``: soft targets ``MIX_WEIGHT`` x the FER2013 one-hot label + (1 - ``MIX_WEIGHT``) x the FER+ vote
      distribution above; no face is dropped (faces without emotion votes keep their one-hot label), and
      ``labels`` stay FER2013's (with a weight of 0.5 no emotion gets a larger target than the FER2013 label).
    """
    if source not in LABEL_SOURCES:
        raise DataError(f"unknown label source {source!r}; expected one of {', '.join(LABEL_SOURCES)}")
    if source == "fer2013":
        return data
    votes = load_ferplus_votes(ferplus_path(data, ferplus), data)
    emotion_votes = votes[:, _FERPLUS_TO_FER].astype(np.float32)
    if source == "ferplus-majority":
        top = votes.max(axis=1)
        unique = (votes == top[:, None]).sum(axis=1) == 1
        winner = votes.argmax(axis=1)
        fer_of = np.full(len(FERPLUS_COLUMNS), -1)
        fer_of[_FERPLUS_TO_FER] = np.arange(NUM_CLASSES)
        labels = fer_of[winner]
        keep = (top > 0) & unique & (labels >= 0)
        return FerData(data.images[keep], labels[keep].astype(np.int64), data.usage[keep], data.source)
    total = emotion_votes.sum(axis=1)
    if source == "mixed":
        onehot = np.eye(NUM_CLASSES, dtype=np.float32)[data.labels]
        voted = np.where(total[:, None] > 0, emotion_votes / np.maximum(total, 1)[:, None], onehot)
        targets = MIX_WEIGHT * onehot + (1 - MIX_WEIGHT) * voted
        return FerData(data.images, data.labels, data.usage, data.source, targets.astype(np.float32))
    keep = total > 0
    targets = emotion_votes[keep] / total[keep, None]
    return FerData(data.images[keep], targets.argmax(axis=1).astype(np.int64), data.usage[keep], data.source,
                   targets.astype(np.float32))


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random, seeded split of ``range(n)`` into train and validation indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# Labelled face folders (photo sets, crop folders): read here, below ferkit.photos, ferkit.sources and ferkit.adapt,
# which all use them.


@dataclass(frozen=True)
class LabelledFace:
    path: Path
    label: int
    box: tuple[float, float, float, float] | None  # x, y, w, h; None: the largest face in the photo


def read_photo_set(root: str | Path) -> list[LabelledFace]:
    """The labelled faces of a photo set folder (``labels.csv``, or ``<emotion>/`` folders)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; a photo set is a folder with labels.csv or <emotion>/ folders")
    table = root / "labels.csv"
    if table.exists():
        return _read_labels_csv(table)
    from ferkit.images import IMAGE_SUFFIXES

    faces = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = label_from_name(folder.name)
        except KeyError as exc:
            raise DataError(f"{folder}: {exc.args[0]}") from None
        faces += [LabelledFace(p, label, None) for p in sorted(folder.rglob("*"))
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not faces:
        raise DataError(f"{root}: no labels.csv and no images in <emotion>/ folders")
    return faces


def _read_labels_csv(table: Path) -> list[LabelledFace]:
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns or "emotion" not in columns:
            raise DataError(f"{table}: needs columns path,emotion (and x,y,w,h for boxes); found {', '.join(columns)}")
        box_columns = [c for c in ("x", "y", "w", "h") if c in columns]
        if box_columns and len(box_columns) < 4:  # a half-given box would silently be ignored: refuse it
            missing = [c for c in ("x", "y", "w", "h") if c not in columns]
            raise DataError(f"{table}: has box column(s) {','.join(box_columns)} but not {','.join(missing)}; a box "
                            "needs all of x,y,w,h (or none: the face is then the largest one found)")
        has_box = len(box_columns) == 4
        faces = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                label = label_from_name(row["emotion"])
            except KeyError as exc:
                raise DataError(f"{table}: row {line}: {exc.args[0]}") from None
            box = None
            if has_box:
                try:
                    box = tuple(float(row[k]) for k in ("x", "y", "w", "h"))
                except ValueError:
                    raise DataError(f"{table}: row {line}: box x,y,w,h must be numbers, got "
                                    f"{','.join(row[k] for k in ('x', 'y', 'w', 'h'))}") from None
                if box[2] <= 0 or box[3] <= 0:
                    raise DataError(f"{table}: row {line}: box width and height must be > 0")
            faces.append(LabelledFace(table.parent / row["path"], label, box))
    if not faces:
        raise DataError(f"{table}: no rows")
    return faces


def split_held_out(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stratified split into (train, held-out) indices: from each emotion with at least 2 faces, ``fraction``
    of them (at least 1, and at least 1 left to train on) is held out. Returns warnings for emotions with
    fewer than 2 faces (trained on only, or absent)."""
    rng = np.random.default_rng(seed)
    train, held, warnings = [], [], []
    for c, name in enumerate(EMOTIONS):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            warnings.append(f"no photos of {name}: the model keeps the base's behaviour for it")
            continue
        if len(idx) == 1 or fraction <= 0:
            if len(idx) == 1:
                warnings.append(f"only 1 photo of {name}: trained on, none held out to check it")
            train += idx.tolist()
            continue
        idx = rng.permutation(idx)
        n_held = min(len(idx) - 1, max(1, int(round(len(idx) * fraction))))
        held += idx[:n_held].tolist()
        train += idx[n_held:].tolist()
    return np.sort(np.array(train, np.int64)), np.sort(np.array(held, np.int64)), warnings


def cache_dir(sub: str = "") -> Path:
    """ferkit's cache folder (``FERKIT_CACHE``, default ``~/.cache/ferkit``), or a sub-folder of it."""
    root = Path(os.environ.get("FERKIT_CACHE", Path.home() / ".cache" / "ferkit"))
    return root / sub if sub else root


def files_key(faces: list[LabelledFace], *, boxes: bool = True) -> list:
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
