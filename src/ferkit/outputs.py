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


__all__ = ["OutputError", "check_writable"]
