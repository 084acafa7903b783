"""Where the default goes wrong on web photos: accuracy and the share of faces called angry by face size,
and what smoothing the crops at run time does. One run, one photo set.

On ExpW dev the default calls far more faces angry than there are (recall of angry ~85%, precision ~28%).
Two questions a user would ask: is it the small, upscaled faces (then the bigger faces would be better), and
are crops from sharp, large faces too detailed for a network trained on FER2013's soft 48x48 faces (then a
blur or a downscale-upscale before the classifier would help)? Each variant classifies the same crops
(found once, as ``ferkit predict`` crops them).

    python benchmarks/photo_crops.py --photos ../shared/data/expw_dev --model fer-ens \\
        --json docs/results/photo-crops.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

SIZE_BINS = [(0, 48), (48, 80), (80, 120), (120, 200), (200, 100_000)]  # detected box width, photo pixels


def smoothed(crops: np.ndarray, kind: str, amount: float) -> np.ndarray:
    if kind == "blur":
        return np.stack([cv2.GaussianBlur(c, (0, 0), amount) for c in crops])
    side = int(amount)
    return np.stack([cv2.resize(cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA), c.shape[::-1],
                                interpolation=cv2.INTER_LINEAR) for c in crops])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--model", default=None, help="shipped name or file (default: the default model)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_models import cpu_flags

    from ferkit.analysis.evaluate import compute_metrics
    from ferkit.core.labels import EMOTIONS
    from ferkit.analysis.photos import find_faces
    from ferkit.runtime.classifier import Classifier

    found = find_faces(args.photos)
    crops, labels, width = found.crops[found.found], found.labels[found.found], found.boxes[found.found, 2]
    n_labelled = len(found.labels)
    clf = Classifier(args.model, threads=1)
    angry = EMOTIONS.index("angry")
    print(f"{clf.name} on {args.photos.name}: {len(crops)} of {n_labelled} labelled faces found; "
          f"{platform.machine()}, CPU flags: {cpu_flags()}")

    probs = clf.predict_proba(crops)
    pred = probs.argmax(1)
    by_size = []
    for lo, hi in SIZE_BINS:
        m = (width >= lo) & (width < hi)
        row = {"box_width": [lo, hi], "faces": int(m.sum()), "accuracy": float((pred[m] == labels[m]).mean()),
               "called_angry": float((pred[m] == angry).mean()), "truly_angry": float((labels[m] == angry).mean())}
        by_size.append(row)
        print(f"box width {lo:>3}-{hi if hi < 100_000 else '':<4} px: {row['faces']:4d} faces, accuracy "
              f"{row['accuracy'] * 100:.1f}%, called angry {row['called_angry'] * 100:.1f}% "
              f"(truly angry {row['truly_angry'] * 100:.1f}%)")

    variants = []
    for name, kind, amount in [("as cropped", None, 0), ("blur sigma 0.6", "blur", 0.6), ("blur sigma 1.0", "blur", 1.0),
                               ("blur sigma 1.5", "blur", 1.5), ("down-up via 32 px", "resize", 32),
                               ("down-up via 24 px", "resize", 24)]:
        variant_probs = probs if kind is None else clf.predict_proba(smoothed(crops, kind, amount))
        p = variant_probs.argmax(1)
        per_class = compute_metrics(variant_probs, labels)["per_class"]
        recall = {e: per_class[e]["recall"] for e in EMOTIONS}
        row = {"variant": name, "end_to_end": float((p == labels).sum() / n_labelled),
               "called_angry": float((p == angry).mean()), "recall_of_found": recall}
        variants.append(row)
        print(f"{name:18s} end to end {row['end_to_end'] * 100:.2f}%, called angry {row['called_angry'] * 100:.1f}%; "
              "recall " + " ".join(f"{e} {r * 100:.0f}" for e, r in recall.items()))
    if args.json:
        args.json.write_text(json.dumps({"model": clf.name, "photos": str(args.photos), "found": int(len(crops)),
                                         "labelled": n_labelled, "cpu": cpu_flags(), "by_size": by_size,
                                         "variants": variants}, indent=2) + "\n")


if __name__ == "__main__":
    main()
