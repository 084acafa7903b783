"""Does correcting for FER2013's class balance help on balanced photo sets? One run, PublicTest and a photo set.

FER2013's Training set is unbalanced (disgust 1.5%, happy 25%); ExpW dev is balanced (7 x ~270). Bayes' rule
says a classifier trained on one prior should divide its probabilities by that prior (and renormalise) to
be right under a uniform one. ``tau`` interpolates: p * prior**-tau, tau 0 = as shipped, 1 = the full
correction. Reported: PublicTest accuracy and ECE (its own, FER2013-like prior), photo-set accuracy end to end
and per-class recall.

    python benchmarks/prior_shift.py --data ../shared/data/fer2013/fer2013.csv.gz --photos ../shared/data/expw_dev \\
        --model fer-ens --json docs/results/prior-shift.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--model", default=None, help="shipped name or file (default: the default model)")
    ap.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ferkit.adapt import collect_faces
    from ferkit.analysis.calibrate import expected_calibration_error
    from ferkit.data.fer2013 import load_fer2013
    from ferkit.core.labels import EMOTIONS
    from ferkit.runtime.classifier import Classifier

    data = load_fer2013(args.data)
    test, train = data.split("PublicTest"), data.split("Training")
    prior = np.bincount(train.labels, minlength=len(EMOTIONS)) / len(train.labels)
    faces = collect_faces(args.photos)
    n_labelled = len(faces) + len(faces.skipped)  # faces not found count as wrong
    clf = Classifier(args.model, threads=0)
    pt, ph = clf.predict_proba(test.images), clf.predict_proba(faces.crops)
    print(f"{clf.name}: Training prior " + ", ".join(f"{e} {p:.3f}" for e, p in zip(EMOTIONS, prior)))
    rows = []
    for tau in args.taus:
        a = pt / prior ** tau
        a /= a.sum(1, keepdims=True)
        b = ph / prior ** tau
        b /= b.sum(1, keepdims=True)
        recall = {e: float(((b.argmax(1) == c) & (faces.labels == c)).sum() / max(1, (faces.labels == c).sum()))
                  for c, e in enumerate(EMOTIONS)}
        row = {"tau": tau, "PublicTest": float((a.argmax(1) == test.labels).mean()),
               "PublicTest_ece": expected_calibration_error(a, test.labels),
               args.photos.name: float((b.argmax(1) == faces.labels).sum() / n_labelled),
               f"{args.photos.name}_recall_of_found": recall}
        rows.append(row)
        print(f"tau {tau:.2f}: PublicTest {row['PublicTest'] * 100:.2f}% (ECE {row['PublicTest_ece'] * 100:.2f}%), "
              f"{args.photos.name} end to end {row[args.photos.name] * 100:.2f}%; recall of found faces "
              + " ".join(f"{e} {r * 100:.1f}" for e, r in recall.items()))
    if args.json:
        args.json.write_text(json.dumps({"model": clf.name, "prior": prior.tolist(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
