"""torchrun's entry point: ``torchrun --nproc-per-node N -m ferkit.train --data ... --out ...`` takes the options
of ``ferkit train`` (a module of its own, so that the CLI and the training loop do not import each other)."""

import sys

from ferkit.cli import main

main(["train", *sys.argv[1:]])
