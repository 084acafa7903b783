"""Where a file came from: the command line that made it (needs no PyTorch)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    argv = list(sys.argv)
    script = Path(argv[0])
    if script.parts[-2:] == ("train", "__main__.py") and "WORLD_SIZE" in os.environ:  # torchrun ... -m ferkit.train
        return shlex.join(["torchrun", "--nproc-per-node", os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]),
                           "-m", "ferkit.train", *argv[1:]])
    argv[0] = Path(argv[0]).name
    return shlex.join(argv)
