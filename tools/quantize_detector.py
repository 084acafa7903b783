"""Quantize the shipped CenterFace detector to int8: ``weights/detectors/centerface-int8.onnx``.

Calibration scenes are made from RAF-DB's training crops (never the ExpW dev or CK+ photos the detector is judged
on): 1-3 faces of 30-180 px pasted at random places on a 320x256 background of random grey, 96 scenes, seed 0.
The quantization itself is :func:`ferkit.runtime.onnx_io.quantize_static_int8` (per-channel QDQ, 7-bit weights).
Whether the int8 detector is used is decided by measurement (benchmarks/compare_models.py --detector, and
benchmarks/speed.py).

    python tools/quantize_detector.py --faces ../shared/data/rafdb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from ferkit.data.photoset import read_photo_set, split_held_out
from ferkit.runtime.detect import DETECTORS_DIR
from ferkit.runtime.onnx_io import quantize_static_int8
from ferkit.data.sources import HOLDOUT_SEED


def scenes(folder: Path, count: int = 96, seed: int = 0):
    """``count`` (1, 3, 256, 320) float32 RGB scenes of RAF-DB training faces (its validation part left out)."""
    faces = read_photo_set(folder)
    train, _, _ = split_held_out(np.array([f.label for f in faces]), 0.1, HOLDOUT_SEED)  # ferkit train's holdout
    paths = [faces[i].path for i in train]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        canvas = np.full((256, 320, 3), rng.integers(60, 200), np.float32)
        for _ in range(rng.integers(1, 4)):
            face = cv2.cvtColor(cv2.imread(str(paths[rng.integers(len(paths))])), cv2.COLOR_BGR2RGB)
            side = int(rng.integers(30, 180))
            face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
            y, x = rng.integers(0, 256 - side), rng.integers(0, 320 - side)
            canvas[y:y + side, x:x + side] = face
        yield {"input.1": canvas.transpose(2, 0, 1)[None]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, required=True, help="RAF-DB's training folder (labels.csv or <emotion>/)")
    ap.add_argument("--out", type=Path, default=DETECTORS_DIR / "centerface-int8.onnx")
    args = ap.parse_args()
    quantize_static_int8(DETECTORS_DIR / "centerface.onnx", args.out, scenes(args.faces))
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
