"""End-to-end accuracy on real photos: the CK+ peak frames (uncropped 640x490), detect -> crop -> classify.

Reads ``labels.csv`` (``images/<file>,<emotion>``) under ``--root``; contempt frames (not a FER2013 class)
are not used. Reports detection recall (at least one face found), accuracy over all frames (a frame with
no face counts as wrong), per-class recall and the confusion. CK+ is research-only: it is read in place,
never copied into the project. Usage:
    python benchmarks/ckplus.py --root ../shared/data/ckplus_peak [--model NAME] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from ferkit.labels import EMOTIONS
from ferkit.recognize import Recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.root / "labels.csv")))
    rows = [r for r in rows if r["emotion"] in EMOTIONS]
    rec = Recognizer(args.model)
    truth, pred, found, times = [], [], [], []
    for r in rows:
        start = time.perf_counter()
        result = rec.predict(args.root / r["path"])
        times.append(time.perf_counter() - start)
        face = max(result.faces, key=lambda f: f.box[2] * f.box[3]) if result.faces else None  # the subject
        truth.append(EMOTIONS.index(r["emotion"]))
        pred.append(EMOTIONS.index(face.emotion) if face else -1)
        found.append(face is not None)
    truth, pred = np.array(truth), np.array(pred)
    classes = sorted(set(truth.tolist()))
    report = {
        "frames": len(rows), "detected": int(np.sum(found)), "accuracy": float((truth == pred).mean()),
        "per_class_recall": {EMOTIONS[c]: float((pred[truth == c] == c).mean()) for c in classes},
        "confusion": {EMOTIONS[c]: {EMOTIONS[p]: int(((truth == c) & (pred == p)).sum()) for p in range(7)
                                    if ((truth == c) & (pred == p)).any()} for c in classes},
        "ms_per_frame_median": float(np.median(times) * 1000), "model": rec.classifier.metadata.get("name"),
    }
    print(f"CK+ peak frames: {report['frames']}, faces found in {report['detected']}, "
          f"accuracy {report['accuracy'] * 100:.1f}%, median {report['ms_per_frame_median']:.0f} ms/frame")
    for c in classes:
        print(f"  {EMOTIONS[c]:9s} recall {report['per_class_recall'][EMOTIONS[c]] * 100:5.1f}%   "
              f"{report['confusion'][EMOTIONS[c]]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
