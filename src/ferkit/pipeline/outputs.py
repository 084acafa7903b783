"""Where results go: checks that an output can be written, made before any work is done.

A command that would classify ten thousand photos and then fail to write its JSON must fail first, in one
line, having done nothing. :func:`check_writable` is that check for a file (``-`` is standard output and
always writable) and for a folder (created if missing); :func:`check_apart` refuses an output that is one of
the inputs or another output.

What happens to an existing output file is the same in every command: it is replaced, but only by a finished
file (:class:`PendingFile`: written beside it, moved into place at the end). A run that fails before it has a
result to write leaves the old file as it was; a run stopped by Ctrl-C keeps the complete records it had.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputError(ValueError):
    """An output file or folder cannot be written; the message names it and says why."""


def check_writable(target: str | os.PathLike | None, *, folder: bool = False, what: str = "output") -> None:
    """Raise :class:`OutputError` unless ``target`` can be written. ``None`` and ``-`` (stdout) pass.

    A file: its folder must exist and be writable, and the file itself, if it exists, must be a writable file.
    A folder (``folder=True``): created with its parents if missing, then it must be a writable folder.
    """
    if target is None or str(target) == "-":
        return
    path = Path(target)
    if folder:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: {what} folder is a file")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{path}: cannot create the {what} folder ({exc.strerror or exc})") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: {what} folder is not writable")
        return
    if path.is_dir():
        raise OutputError(f"{path}: {what} is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: {what} is not writable (permission denied)")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: the same inode where both exist (hard links, symlinks, ``./x`` and ``x``),
    else the same resolved path."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def save_crop(path: str | os.PathLike, crop) -> Path:
    """Write one face crop, (size, size) grey or (size, size, 3) RGB uint8 as the model saw it, as a PNG file
    (folders made as needed); returns its path. Raises OutputError when it cannot be written."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"{path}: the face crop cannot be written here")
    return path


def check_crops_folder(folder: str | os.PathLike, inputs: list, searched: list | None = None) -> None:
    """Refuse a ``--crops`` folder that holds one of ``inputs`` or lies inside a folder the inputs were searched in
    (``searched``): the crops would mix with the photos, and the next run over that folder would read them as
    photos. Raises :class:`OutputError` naming the input or the folder."""
    root = Path(folder).resolve()
    for p in inputs:
        if root in Path(p).resolve().parents:
            raise OutputError(f"{folder}: --crops is a folder that holds inputs ({p}); give the crops a folder of "
                              "their own")
    for d in searched or []:
        if Path(d).is_dir() and (root == Path(d).resolve() or Path(d).resolve() in root.parents):
            raise OutputError(f"{folder}: --crops lies inside {d}, a folder of inputs (the next run over it would "
                              "read the crops as photos); give the crops a folder of their own")


def check_apart(inputs: list, outputs: dict[str, str | os.PathLike | None], *, annotated: list | None = None) -> None:
    """Refuse, before anything is written, an output that would destroy an input or another output: an output
    file (``outputs``: option -> path; ``None`` and ``-`` skipped) that is one of ``inputs``, two options naming one
    file, and an annotated copy (``annotated``: the files ``--annotate`` would write, one per input) that would
    replace one of the inputs. Raises :class:`OutputError` naming both."""
    files = {opt: Path(t) for opt, t in outputs.items() if t is not None and str(t) != "-"}
    names = list(files)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if same_file(files[a], files[b]):
                raise OutputError(f"{files[a]}: {a} and {b} name the same file; give each its own")
    by_inode: dict = {}
    for p in inputs:
        p = Path(p)
        try:
            st = p.stat()
            by_inode[(st.st_dev, st.st_ino)] = p
        except OSError:
            pass
    resolved = {Path(p).resolve(): Path(p) for p in inputs}

    def input_named(target: Path):
        try:
            st = target.stat()
            if (st.st_dev, st.st_ino) in by_inode:
                return by_inode[(st.st_dev, st.st_ino)]
        except OSError:
            pass
        return resolved.get(target.resolve())

    for opt, target in files.items():
        hit = input_named(target)
        if hit is not None:
            raise OutputError(f"{target}: {opt} would overwrite the input {hit}; write it elsewhere")
    for target in annotated or []:
        hit = input_named(Path(target))
        if hit is not None:
            raise OutputError(f"{target}: --annotate would overwrite the input {hit} with its annotated copy; "
                              "choose another folder")


class PendingFile:
    """A text file written beside its target (``.NAME.PID.tmp``) and moved into place by :meth:`close`, so that an
    existing file is replaced only by a finished one: a run that fails before it has anything to write
    (:meth:`discard`) leaves the old file as it was, and no reader ever sees half a JSON array."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        self.tmp = self.target.with_name(f".{self.target.name}.{os.getpid()}.tmp")
        self._f = open(self.tmp, "w", newline="")

    def write(self, text: str) -> int:
        return self._f.write(text)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Finish the file and move it into place (``os.replace``: atomic on one file system)."""
        if self._f.closed:
            return
        self._f.close()
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        """Drop what was written; the target stays as it was."""
        if not self._f.closed:
            self._f.close()
            self.tmp.unlink(missing_ok=True)


def open_output(target: str | os.PathLike, *, pending: bool = True):
    """``(file, owned)``: standard output for ``-`` (not to be closed), else a :class:`PendingFile` for the target
    (closing it moves the finished file into place; ``discard()`` leaves an existing file untouched), or with
    ``pending=False`` the target itself, opened for writing (for output read while it grows: open it only once
    there is something to write)."""
    import sys

    if str(target) == "-":
        return sys.stdout, False
    return (PendingFile(target), True) if pending else (open(target, "w", newline=""), True)


# One CSV row per face (one row with empty face fields for an image without faces or with an error).
LANDMARK_NAMES = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")  # image-left/right, as detected
LANDMARK_FIELDS = [f"{name}_{axis}" for name in LANDMARK_NAMES for axis in "xy"]
POSE_FIELDS = ["yaw", "pitch", "roll", "pose_reliable"]
# One column per field of a face record; a new one also needs its Arrow type in ferkit.batch.schemas (int64 otherwise).
CSV_FIELDS = ["path", "width", "height", "face", "person", "x", "y", "w", "h", "score", "emotion", "angry", "disgust", "fear",
              "happy", "sad", "surprise", "neutral", "low_confidence", "small", "uncertain", *LANDMARK_FIELDS,
              *POSE_FIELDS, "crop", "error"]


def landmark_columns(face: dict) -> dict:
    """A record face's landmarks and pose as flat columns (:data:`LANDMARK_FIELDS`, :data:`POSE_FIELDS`); empty
    strings where it has none."""
    marks, pose = face.get("landmarks"), face.get("pose")
    out = dict.fromkeys(LANDMARK_FIELDS + POSE_FIELDS, "")
    if marks:
        out.update({f"{name}_{axis}": v for name, point in zip(LANDMARK_NAMES, marks) for axis, v in zip("xy", point)})
    if pose:
        out.update({"yaw": pose["yaw"], "pitch": pose["pitch"], "roll": pose["roll"], "pose_reliable": pose["reliable"]})
    return out


def csv_rows(record: dict):
    """The CSV rows (dicts over :data:`CSV_FIELDS`) of one image record."""
    base = {"path": record["path"], "width": record["width"], "height": record["height"], "error": record["error"]}
    if not record["faces"]:
        yield {**base, "face": ""}
    for i, face in enumerate(record["faces"]):
        x, y, w, h = face["box"]
        yield {**base, "face": i, "person": face.get("person", ""), "x": x, "y": y, "w": w, "h": h,
               "score": face["score"], "emotion": face["emotion"],
               **face["probabilities"], "low_confidence": face["low_confidence"], "small": face["small"],
               "uncertain": face.get("uncertain", False), **landmark_columns(face), "crop": face.get("crop", "")}


VIDEO_FIELDS = ["frame", "time_s", "track_id", "x", "y", "w", "h", "score", "emotion", "angry", "disgust", "fear",
                "happy", "sad", "surprise", "neutral", *[f"smoothed_{e}" for e in ("angry", "disgust", "fear", "happy",
                                                                                   "sad", "surprise", "neutral")],
                "low_confidence", *LANDMARK_FIELDS, *POSE_FIELDS, "crop"]


def video_columns(row: dict) -> dict:
    """One ``ferkit video --jsonl`` row flat (:data:`VIDEO_FIELDS`): the box as x, y, w, h, this frame's own
    probabilities, the smoothed ones as ``smoothed_<emotion>``, ``low_confidence`` (the smoothed top under 0.4)."""
    from ferkit.core.labels import LOW_CONFIDENCE

    x, y, w, h = row["box"]
    smoothed = row["smoothed"]
    return {"frame": row["frame"], "time_s": row["time_s"], "track_id": row["track_id"], "x": x, "y": y, "w": w,
            "h": h, "score": row["score"], "emotion": row["emotion"], **row["probabilities"],
            **{f"smoothed_{k}": v for k, v in smoothed.items()},
            "low_confidence": max(smoothed.values()) < LOW_CONFIDENCE, **landmark_columns(row),
            "crop": row.get("crop", "")}


def to_pandas(results):
    """A pandas DataFrame of results, one row per face: photos (:class:`~ferkit.pipeline.recognize.ImageResult` objects or
    their record dicts: the ``--csv`` columns, :data:`CSV_FIELDS`, an image without faces or with an error one row
    of its own) or video (:class:`~ferkit.video.FrameResult` objects or ``--jsonl`` rows: one row per face per
    frame, :data:`VIDEO_FIELDS`). Missing values are NaN/None. Needs pandas (``pip install pandas``; in the
    ``train`` extra): raises ImportError with that hint."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("DataFrames need pandas: pip install pandas (or ferkit[train])") from None
    rows, columns = [], CSV_FIELDS
    for item in results:
        if hasattr(item, "rows") and hasattr(item, "faces"):  # a video FrameResult
            rows += [video_columns(r) for r in item.rows()]
            columns = VIDEO_FIELDS
        elif isinstance(item, dict) and "frame" in item:  # a video row
            rows.append(video_columns(item))
            columns = VIDEO_FIELDS
        else:
            record = item if isinstance(item, dict) else item.to_dict()
            rows += list(csv_rows(record))
    frame = pd.DataFrame([{k: (None if v == "" else v) for k, v in r.items()} for r in rows], columns=columns)
    numeric = [c for c in columns if c not in ("path", "emotion", "error", "crop", "low_confidence", "small",
                                               "uncertain", "pose_reliable")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame


class RecordWriter:
    """Writes image records (``ImageResult.to_dict()``, schema in docs/photos.md) to any of a JSON array, JSON lines and
    CSV, each a file or ``-`` for standard output (at most one of them). Every target is checked before the first
    record; JSON lines and CSV rows are written as records come, the JSON array when the writer closes.

    >>> with RecordWriter(jsonl="results.jsonl", csv="faces.csv") as out:   # doctest: +SKIP
    ...     for result in recognizer.predict_paths(paths):
    ...         out.write(result.to_dict())
    """

    def __init__(self, *, json: str | os.PathLike | None = None, jsonl: str | os.PathLike | None = None,
                 csv: str | os.PathLike | None = None):
        targets = {"--json": json, "--jsonl": jsonl, "--csv": csv}
        if [str(t) for t in targets.values()].count("-") > 1:
            raise OutputError("only one of --json, --jsonl and --csv can write to standard output")
        for option, target in targets.items():
            check_writable(target, what=option)
        self.json_target, self.records = json, []
        self._stdout = "-" in [str(t) for t in targets.values()]
        self._files = []
        self.written = 0  # records so far
        self._jsonl = self._open(jsonl) if jsonl is not None else None
        self._csv = None
        if csv is not None:
            import csv as csv_module

            self._csv = csv_module.DictWriter(self._open(csv), fieldnames=CSV_FIELDS)
            self._csv.writeheader()

    @property
    def uses_stdout(self) -> bool:
        """True when one of the outputs is standard output (then nothing else may print there)."""
        return self._stdout

    def _open(self, target):
        f, owned = open_output(target)
        self._files.append((f, owned))
        return f

    def write(self, record: dict) -> None:
        import json

        self.written += 1
        if self.json_target is not None:
            self.records.append(record)
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
        if self._csv is not None:
            self._csv.writerows(csv_rows(record))

    def close(self, *, discard: bool = False) -> None:
        """Write the JSON array and move every file into place; with ``discard``, drop them instead (every existing
        output stays as it was)."""
        import json

        if discard:
            for f, owned in self._files:
                f.discard() if owned else f.flush()
            self._files, self.json_target = [], None
            return
        if self.json_target is not None:
            out = self._open(self.json_target)
            json.dump(self.records, out, indent=2)
            out.write("\n")
            self.json_target = None
        for f, owned in self._files:
            f.close() if owned else f.flush()
        self._files = []

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # a failure before the first record (a model that does not load, ...) leaves every output as it was;
        # after it (Ctrl-C included), the complete records so far are kept
        self.close(discard=exc_type is not None and self.written == 0)


__all__ = ["VIDEO_FIELDS", "check_crops_folder", "save_crop", "to_pandas", "video_columns", "CSV_FIELDS", "LANDMARK_FIELDS", "LANDMARK_NAMES", "POSE_FIELDS", "landmark_columns", "OutputError", "RecordWriter", "check_apart", "check_writable", "csv_rows", "open_output",
           "same_file"]
