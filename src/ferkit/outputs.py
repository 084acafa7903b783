"""Where results go: checks that an output can be written, made before any work is done.

A command that would classify ten thousand photos and then fail to write its JSON must fail first, in one
line, having done nothing. :func:`check_writable` is that check for a file (``-`` is standard output and
always writable) and for a folder (created if missing).
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




def open_output(target: str | os.PathLike):
    """``(file, owned)``: standard output for ``-`` (not to be closed), else the file opened for writing."""
    import sys

    return (sys.stdout, False) if str(target) == "-" else (open(target, "w", newline=""), True)


# One CSV row per face (one row with empty face fields for an image without faces or with an error).
CSV_FIELDS = ["path", "width", "height", "face", "x", "y", "w", "h", "score", "emotion", "angry", "disgust", "fear",
              "happy", "sad", "surprise", "neutral", "low_confidence", "small", "uncertain", "error"]


def csv_rows(record: dict):
    """The CSV rows (dicts over :data:`CSV_FIELDS`) of one image record."""
    base = {"path": record["path"], "width": record["width"], "height": record["height"], "error": record["error"]}
    if not record["faces"]:
        yield {**base, "face": ""}
    for i, face in enumerate(record["faces"]):
        x, y, w, h = face["box"]
        yield {**base, "face": i, "x": x, "y": y, "w": w, "h": h, "score": face["score"], "emotion": face["emotion"],
               **face["probabilities"], "low_confidence": face["low_confidence"], "small": face["small"],
               "uncertain": face.get("uncertain", False)}


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

        if self.json_target is not None:
            self.records.append(record)
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
        if self._csv is not None:
            self._csv.writerows(csv_rows(record))

    def close(self) -> None:
        import json

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

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CSV_FIELDS", "OutputError", "RecordWriter", "check_writable", "csv_rows", "open_output"]
