"""End-to-end accuracy on real photos: the CK+ peak frames (uncropped 640x490), detect -> crop -> classify.

Reads ``labels.csv`` (``images/<file>,<emotion>``) under ``--root``; contempt frames (not a FER2013 class)
are not used. Reports detection recall (at least one face found), accuracy over all frames (a frame with
no face counts as wrong), per-class recall and the confusion; then detection recall and accuracy on
variants of each frame: grey, a tight 256x256 head crop (a square 1.4x the face box, the face filling
most of it), and the frame at half size. CK+ is research-only: it is read in place,
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

from ferkit.core.labels import EMOTIONS
from ferkit.pipeline.recognize import Recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--max-side", type=int, default=None, help="detector's frame size (default: the Recognizer's)")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.root / "labels.csv")))
    rows = [r for r in rows if r["emotion"] in EMOTIONS]
    rec = Recognizer(args.model, **({"max_side": args.max_side} if args.max_side else {}))
    truth, pred, found, times, boxes = [], [], [], [], []
    for r in rows:
        start = time.perf_counter()
        result = rec.predict(args.root / r["path"])
        times.append(time.perf_counter() - start)
        face = max(result.faces, key=lambda f: f.box[2] * f.box[3]) if result.faces else None  # the subject
        truth.append(EMOTIONS.index(r["emotion"]))
        pred.append(EMOTIONS.index(face.emotion) if face else -1)
        found.append(face is not None)
        boxes.append(face.box if face else (0, 0, result.width, result.height))
    truth, pred = np.array(truth), np.array(pred)
    import cv2

    from ferkit.core.images import read_image

    variants = {"grey frame": [], "tight 256x256 crop": [], "half-size frame": []}
    for r, (x, y, w, h) in zip(rows, boxes):
        rgb = read_image(args.root / r["path"])
        grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        side = 1.4 * max(w, h)
        m = np.float32([[256 / side, 0, 128 - (x + w / 2) * 256 / side], [0, 256 / side, 128 - (y + h / 2) * 256 / side]])
        tight = cv2.warpAffine(rgb, m, (256, 256), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        half = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
        for name, img in zip(variants, (grey, tight, half)):
            res = rec.predict(np.ascontiguousarray(img), color="RGB")
            face = max(res.faces, key=lambda f: f.box[2] * f.box[3]) if res.faces else None
            variants[name].append(EMOTIONS.index(face.emotion) if face else -1)
    classes = sorted(set(truth.tolist()))
    report = {
        "frames": len(rows), "detected": int(np.sum(found)), "accuracy": float((truth == pred).mean()),
        "per_class_recall": {EMOTIONS[c]: float((pred[truth == c] == c).mean()) for c in classes},
        "confusion": {EMOTIONS[c]: {EMOTIONS[p]: int(((truth == c) & (pred == p)).sum()) for p in range(7)
                                    if ((truth == c) & (pred == p)).any()} for c in classes},
        "ms_per_frame_median": float(np.median(times) * 1000), "model": rec.classifier.metadata.get("name"),
        "variants": {name: {"detected": int((np.array(p) >= 0).sum()), "accuracy": float((np.array(p) == truth).mean())}
                     for name, p in variants.items()},
    }
    print(f"CK+ peak frames: {report['frames']}, faces found in {report['detected']}, "
          f"accuracy {report['accuracy'] * 100:.1f}%, median {report['ms_per_frame_median']:.0f} ms/frame")
    for c in classes:
        print(f"  {EMOTIONS[c]:9s} recall {report['per_class_recall'][EMOTIONS[c]] * 100:5.1f}%   "
              f"{report['confusion'][EMOTIONS[c]]}")
    for name, v in report["variants"].items():
        print(f"  {name:20s} faces found {v['detected']}/{len(rows)}, accuracy {v['accuracy'] * 100:.1f}%")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
