"""The whole classifier's cost per face, side by side in one run on one thread: framing (the crop each model takes
from a detected face: 48x48 grey or 112x112 RGB, :meth:`ferkit.runtime.spec.ModelSpec.crop`) plus the network with its own
TTA choice and without TTA (``Classifier.predict_proba``, one face per call, the face already detected). Rounds are
interleaved so machine noise falls on every model alike; median of 5 rounds of 200 faces.

    python benchmarks/face_cost.py fer-real-int8 fer-real fer-faceres fer-faceres-int8 \\
        | tee benchmarks/results/face_cost.txt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--faces", type=int, default=200)
    args = ap.parse_args()

    import onnxruntime as ort

    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.runtime.detect import create_detector
    from ferkit.core.images import read_image
    from ferkit.runtime.classifier import Classifier
    from speed import cpu_flags, cpu_model

    rgb = read_image(SAMPLE_PHOTO)
    face = create_detector(threads=1).detect(rgb)[0]
    runs = {}
    for m in args.models:
        for tta in (None, False):
            clf = Classifier(m, threads=1, tta=tta)
            runs[(m, "own" if tta is None else "off", clf.tta)] = clf
    times = {k: {"crop": [], "net": []} for k in runs}
    for clf in runs.values():
        clf.predict_proba(clf.spec.crop(rgb, face)[None])
    for _ in range(args.rounds):
        for key, clf in runs.items():
            t0 = time.perf_counter()
            crops = [clf.spec.crop(rgb, face) for _ in range(args.faces)]
            t1 = time.perf_counter()
            for c in crops:
                clf.predict_proba(c[None])
            t2 = time.perf_counter()
            times[key]["crop"].append((t1 - t0) / args.faces * 1000)
            times[key]["net"].append((t2 - t1) / args.faces * 1000)
    print(f"# {cpu_model()}, CPU flags {cpu_flags()}, onnxruntime {ort.__version__}, 1 thread, "
          f"median of {args.rounds} rounds of {args.faces} faces (the bundled sample photo's face)")
    print(f"{'model':20s} {'TTA':>9s} {'input':>12s} {'framing ms':>11s} {'network ms':>11s} {'total ms':>9s}")
    for (m, which, tta), clf in runs.items():
        crop, net = np.median(times[(m, which, tta)]["crop"]), np.median(times[(m, which, tta)]["net"])
        shape = "x".join(map(str, clf.spec.face_shape))
        print(f"{m:20s} {('on' if tta else 'off') + (' (own)' if which == 'own' else ''):>9s} {shape:>12s} "
              f"{crop:11.3f} {net:11.3f} {crop + net:9.3f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
