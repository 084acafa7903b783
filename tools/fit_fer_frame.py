"""Fit how FER2013 frames a face relative to the detector's output; writes src/ferkit/assets/fer_frame.json.

Each PublicTest face is upscaled 4x (to 192 px) and pasted in the middle of a mid-grey 384x384 canvas, so
its true FER2013 frame is known exactly. The detector runs on the canvas; for every face it finds, the
known frame is expressed relative to (a) the two eye landmarks and (b) the detection box. The medians are
the fitted framings. (c) ``align``: the 5 landmarks in the face's own 48x48 pixels; their medians, made
mirror-symmetric about the vertical centre line and level, are the alignment template. Then each face is cropped back out of its canvas with each framing and classified
with the default model, beside the original 48x48 face, to show what the re-framing costs.
Usage: python tools/fit_fer_frame.py --data fer2013.csv.gz [--limit 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from ferkit.runtime.crop import FRAME_FILE, FerFrame, align_face, crop_face
from ferkit.data.fer2013 import load_fer2013
from ferkit.runtime.detect import create_detector
from ferkit.runtime.classifier import Classifier

UP, CANVAS = 4, 384


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N faces (0: all)")
    ap.add_argument("--detector", default="centerface")
    ap.add_argument("--out", type=Path, default=FRAME_FILE)
    args = ap.parse_args()
    data = load_fer2013(args.data).split(args.split)
    images, labels = data.images, data.labels
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    det = create_detector(args.detector)
    side = 48 * UP
    top = (CANVAS - side) // 2
    centre = np.array([CANVAS / 2, CANVAS / 2])
    eyes, boxes, marks, canvases, faces, found = [], [], [], [], [], np.zeros(len(images), bool)
    start = time.perf_counter()
    for i, img in enumerate(images):
        canvas = np.full((CANVAS, CANVAS), 128, np.uint8)
        canvas[top:top + side, top:top + side] = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        rgb = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
        cands = det.detect(rgb)
        if not cands:
            canvases.append(None), faces.append(None)
            continue
        face = min(cands, key=lambda f: np.hypot(f.box[0] + f.box[2] / 2 - centre[0], f.box[1] + f.box[3] / 2 - centre[1]))
        found[i] = True
        canvases.append(canvas), faces.append(face)
        x, y, w, h = face.box
        boxes.append([side / np.sqrt(w * h), (centre[0] - x - w / 2) / w, (centre[1] - y - h / 2) / h])
        if face.landmarks is not None:
            marks.append((np.array(face.landmarks) - top) / UP)  # in the 48x48 face's pixels
            a, b = np.array(face.landmarks[0]), np.array(face.landmarks[1])
            u = (b - a) / np.linalg.norm(b - a)
            n = np.array([-u[1], u[0]])
            d = np.linalg.norm(b - a)
            rel = centre - (a + b) / 2
            eyes.append([side / d, rel @ u / d, rel @ n / d, np.degrees(np.arctan2(u[1], u[0]))])
    seconds = time.perf_counter() - start
    eyes, boxes = np.array(eyes), np.array(boxes)
    fit = {
        "eyes": dict(zip(("side", "dx", "dy"), map(float, np.median(eyes[:, :3], 0)))),
        "box": dict(zip(("side", "dx", "dy"), map(float, np.median(boxes, 0)))),
    }
    fit["eyes"]["roll_deg_median_abs"] = float(np.median(np.abs(eyes[:, 3])))
    med = np.median(np.array(marks), 0)  # (5, 2): eyes, nose, mouth corners
    mirror = lambda p: np.array([48.0 - p[0], p[1]])  # noqa: E731
    eye = (med[0] + mirror(med[1])) / 2
    mouth = (med[3] + mirror(med[4])) / 2
    template = np.array([eye, mirror(eye), [24.0, med[2][1]], mouth, mirror(mouth)])
    fit["align"] = {"template": [[round(float(v), 3) for v in p] for p in template],
                    "points": "left eye, right eye, nose tip, left mouth corner, right mouth corner (image left first)"}
    clf = Classifier()
    direct = clf.predict_proba(images)
    report = {"split": args.split, "faces": int(len(images)), "detected": int(found.sum()),
              "detector": args.detector, "seconds_per_face": seconds / len(images),
              "accuracy_direct": float((direct.argmax(1) == labels).mean())}
    for method in ("eyes", "box", "align"):
        if method == "align":
            crops = np.stack([align_face(c, f, template) if f is not None else np.zeros((48, 48), np.uint8)
                              for c, f in zip(canvases, faces)])
        else:
            frame = FerFrame(method, fit[method]["side"], fit[method]["dx"], fit[method]["dy"])
            crops = np.stack([crop_face(c, f, frame) if f is not None else np.zeros((48, 48), np.uint8)
                              for c, f in zip(canvases, faces)])
        probs = clf.predict_proba(crops)
        ok = found
        report[f"accuracy_{method}"] = float((probs[ok].argmax(1) == labels[ok]).mean())
        report[f"agreement_{method}"] = float((probs[ok].argmax(1) == direct[ok].argmax(1)).mean())
        report[f"mean_abs_pixel_diff_{method}"] = float(np.abs(crops[ok].astype(float) - images[ok]).mean())
    report["accuracy_direct_on_detected"] = float((direct[found].argmax(1) == labels[found]).mean())
    out = {**fit, "fitted_on": report, "model": clf.metadata.get("name", "?"), "command": "python tools/fit_fer_frame.py "
           + " ".join(f"--{k} {v}" for k, v in (("data", args.data), ("split", args.split), ("limit", args.limit)))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
