"""Does the framing of real-photo crops matter? End-to-end accuracy on a photo set when the FER2013 square
around each detected face is scaled and shifted (detection once; the same detections re-cropped each time).

    python benchmarks/photo_framing.py ../shared/data/expw_dev --model fer-m
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.9, 1.0, 1.1, 1.25])
    ap.add_argument("--shifts", type=float, nargs="+", default=[-0.05, 0.0, 0.05], help="centre shift, box heights")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ferkit.runtime.crop import FerFrame, crop_face, fitted_frames
    from ferkit.runtime.detect import Face
    from ferkit.analysis.evaluate import compute_metrics
    from ferkit.core.images import read_image
    from ferkit.analysis.photos import find_faces
    from ferkit.runtime.classifier import Classifier

    fs = find_faces(args.photos)
    clf = Classifier(args.model)
    base = fitted_frames()["box"]
    idx = np.flatnonzero(fs.found)
    images = {}
    for i in idx:
        images.setdefault(fs.faces[i].path, None)
    images = {p: read_image(p) for p in images}
    rows = []
    print(f"{clf.metadata.get('name')}: {len(idx)} of {len(fs.labels)} faces found; fitted square = "
          f"{base.side:.3f} x the box")
    for scale in args.scales:
        for shift in args.shifts:
            frame = FerFrame("box", base.side * scale, base.dx, base.dy + shift)
            crops = np.stack([crop_face(images[fs.faces[i].path], Face(tuple(fs.boxes[i]), 1.0), frame) for i in idx])
            probs = np.zeros((len(fs.labels), 7))
            probs[idx] = clf.predict_proba(crops)
            m = compute_metrics(probs, fs.labels, found=fs.found)
            rows.append({"scale": scale, "shift": shift, "accuracy": m["accuracy"],
                         "recall": {k: v["recall"] for k, v in m["per_class"].items()}})
            print(f"square x{scale:.2f}, centre {shift:+.2f} box heights: end to end {m['accuracy'] * 100:.2f}%  "
                  + " ".join(f"{k[:3]} {v['recall'] * 100:.0f}" for k, v in m["per_class"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": clf.metadata.get("name"), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
