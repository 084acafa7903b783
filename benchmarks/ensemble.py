"""Combining the calibrated probabilities of shipped models: PublicTest and a photo set in one run, for a sweep
of the first model's weight (the others share the rest equally), by the weighted mean of the probabilities
(``mean``) and by their weighted geometric mean (``log-mean``, what ``ferkit ensemble`` ships by default), with
the PublicTest ECE of each.

    python benchmarks/ensemble.py --data ../shared/data/fer2013/fer2013.csv.gz --photos ../shared/data/expw_dev \\
        fer-m fer-mix --json docs/results/ensemble.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ferkit.adapt import collect_faces
    from ferkit.analysis.calibrate import expected_calibration_error
    from ferkit.data.fer2013 import load_fer2013
    from ferkit.core.inference import combine_probabilities
    from ferkit.runtime.classifier import Classifier

    test = load_fer2013(args.data).split("PublicTest")
    faces = collect_faces(args.photos)
    n_photos = len(faces) + len(faces.skipped)  # labelled faces; those not found count as wrong
    clfs = [Classifier(m) for m in args.models]
    pt = [c.predict_proba(test.images) for c in clfs]
    ph = [c.predict_proba(faces.crops) for c in clfs]
    rows = []
    print(f"{' + '.join(args.models)}: PublicTest {len(test)} faces, {args.photos.name} {n_photos} labelled faces "
          f"({len(faces)} found)")

    for how in ("mean", "log-mean"):
        for w in args.weights:
            rest = (1 - w) / max(1, len(clfs) - 1)
            ws = [w] + [rest] * (len(clfs) - 1)
            p, q = combine_probabilities(pt, ws, how), combine_probabilities(ph, ws, how)
            row = {"combine": how, "weights": ws, "PublicTest": float((p.argmax(1) == test.labels).mean()),
                   "PublicTest_ece": expected_calibration_error(p, test.labels),
                   args.photos.name: float((q.argmax(1) == faces.labels).sum() / n_photos)}
            rows.append(row)
            print(f"{how:8s} weight of {args.models[0]} {w:.1f}: PublicTest {row['PublicTest'] * 100:.2f}% "
                  f"(ECE {row['PublicTest_ece'] * 100:.2f}%), {args.photos.name} end to end "
                  f"{row[args.photos.name] * 100:.2f}%")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"models": args.models, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
