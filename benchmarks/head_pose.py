"""How good ferkit's 5-landmark head pose is (ferkit.runtime.pose), on what can be measured without 3D ground truth:

- roll on real faces turned by known angles (CK+ peak frames, -45..45 degrees): roll + turn is the face's own roll,
  so its spread over the turns is the error (deviation from the median per face); with the landmarks as
  CenterFace gives them and with ferkit's upright re-detection of tilted faces (``ferkit.runtime.detect.upright_landmarks``);
- yaw on mirrored faces (ExpW dev web faces and CK+): a mirror image must read the opposite yaw, so
  |yaw(face) + yaw(mirror)| / 2 is an error floor (it cannot see a yaw scale error);
- the spread of yaw and pitch on CK+'s frontal, posed faces (|yaw|, |pitch|: frontal faces should read near 0);
- the synthetic round trip (the mean face projected at known angles, weak perspective): the method's own error;
- the time of the pose itself and of the upright re-detection, per face.

Usage: python benchmarks/head_pose.py --ckplus D/ckplus_peak --expw D/expw_dev [--expw-faces 400] [--json F]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_models import cpu_flags  # noqa: E402

from ferkit.runtime.detect import create_detector, upright_landmarks  # noqa: E402
from ferkit.core.images import read_image  # noqa: E402
from ferkit.runtime.pose import head_pose, project  # noqa: E402

ANGLES = (-45, -30, -15, 0, 15, 30, 45)


def largest(faces):
    return max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None


def stats(values) -> dict:
    v = np.abs(np.asarray(values, np.float64))
    return {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "max": float(v.max())}


def roll_errors(paths: list[Path], detector) -> dict:
    out = {"raw": [], "upright": []}
    missed = 0
    for path in paths:
        rgb = read_image(path)
        h, w = rgb.shape[:2]
        side = int(np.hypot(h, w)) + 2
        canvas = cv2.copyMakeBorder(rgb, (side - h) // 2, side - h - (side - h) // 2, (side - w) // 2,
                                    side - w - (side - w) // 2, cv2.BORDER_REPLICATE)
        own = {"raw": [], "upright": []}
        for angle in ANGLES:
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
            turned = cv2.warpAffine(canvas, turn, (side, side), borderMode=cv2.BORDER_REPLICATE)
            face = largest(detector.detect(turned))
            if face is None or face.landmarks is None:
                missed += 1
                break
            own["raw"].append(head_pose(face.landmarks).roll + angle)
            own["upright"].append(head_pose(upright_landmarks(detector, turned, face).landmarks).roll + angle)
        else:
            for kind in out:
                out[kind] += list(np.asarray(own[kind]) - np.median(own[kind]))
    return {"angles": list(ANGLES), "images": len(paths), "missed": missed,
            **{kind: stats(v) for kind, v in out.items()}}


def mirror_yaw(images: list[np.ndarray], detector) -> dict:
    errs, yaws, pitches, unreliable = [], [], [], 0
    for rgb in images:
        a, b = largest(detector.detect(rgb)), largest(detector.detect(np.ascontiguousarray(rgb[:, ::-1])))
        if a is None or b is None or a.landmarks is None or b.landmarks is None:
            continue
        pa, pb = head_pose(upright_landmarks(detector, rgb, a).landmarks, a.box), head_pose(b.landmarks, b.box)
        errs.append((pa.yaw + pb.yaw) / 2)
        yaws.append(pa.yaw)
        pitches.append(pa.pitch)
        unreliable += not pa.reliable
    return {"faces": len(errs), "mirror_yaw_error": stats(errs), "abs_yaw": stats(yaws), "abs_pitch": stats(pitches),
            "unreliable_share": unreliable / max(1, len(errs))}


def synthetic() -> dict:
    """Max errors over views of the mean face, within the range the estimate calls reliable and beyond it."""
    out = {}
    for name, yaws, pitches in (("reliable", (0, 15, 30, 45), (-30, -15, 0, 15, 30)),
                                ("beyond", (60, 75), (-30, 0, 30))):
        rows = []
        for yaw in yaws:
            for pitch in pitches:
                for roll in (0, 20):
                    pose = head_pose(project(yaw, pitch, roll))
                    rows.append([pose.yaw - yaw, pose.pitch - pitch, pose.roll - roll])
        e = np.abs(np.array(rows))
        out[name] = {"views": len(rows), "yaw": list(yaws), "pitch": list(pitches), "yaw_max": float(e[:, 0].max()),
                     "pitch_max": float(e[:, 1].max()), "roll_max": float(e[:, 2].max())}
    return out


def timing(images: list[np.ndarray], detector) -> dict:
    faces = [(rgb, largest(detector.detect(rgb))) for rgb in images]
    faces = [(rgb, f) for rgb, f in faces if f is not None and f.landmarks is not None]
    start = time.perf_counter()
    for _ in range(20):
        for _, f in faces:
            head_pose(f.landmarks, f.box)
    pose_ms = (time.perf_counter() - start) * 1000 / (20 * len(faces))
    tilted = []
    for rgb, f in faces:
        turn = cv2.getRotationMatrix2D((rgb.shape[1] / 2, rgb.shape[0] / 2), 30, 1.0)
        turned = cv2.warpAffine(rgb, turn, rgb.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
        g = largest(detector.detect(turned))
        if g is not None and g.landmarks is not None:
            tilted.append((turned, g))
    start = time.perf_counter()
    for rgb, f in tilted:
        upright_landmarks(detector, rgb, f)
    upright_ms = (time.perf_counter() - start) * 1000 / max(1, len(tilted))
    return {"pose_ms_per_face": pose_ms, "upright_redetection_ms_per_tilted_face": upright_ms,
            "tilted_faces": len(tilted)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--expw-faces", type=int, default=400)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    detector = create_detector(threads=1, scales="single")
    ck = sorted((args.ckplus / "images").glob("*.png"))
    ck_images = [read_image(p) for p in ck]
    expw = []
    with open(args.expw / "labels.csv") as f:
        for row in csv.DictReader(f):
            if len(expw) >= args.expw_faces:
                break
            x, y, w, h = (int(row[k]) for k in "xywh")
            rgb = read_image(args.expw / row["path"])
            pad = w // 2  # the face with a margin, as a photo of one face
            expw.append(np.ascontiguousarray(rgb[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]))
    report = {"cpu": cpu_flags(), "detector": "centerface-int8, one pass", "roll_ckplus": roll_errors(ck, detector),
              "mirror_ckplus": mirror_yaw(ck_images, detector), "mirror_expw": mirror_yaw(expw, detector),
              "synthetic": synthetic(), "timing_ckplus": timing(ck_images, detector)}
    r = report["roll_ckplus"]
    lines = [f"# head pose from 5 landmarks (ferkit.runtime.pose), CPU flags: {report['cpu']}; detector {report['detector']}",
             f"roll on CK+ turned by {r['angles']} ({r['images']} images, {r['missed']} missed at some angle), "
             "|deviation| in degrees:",
             *(f"  {kind:8s} mean {r[kind]['mean']:.2f}  median {r[kind]['median']:.2f}  p95 {r[kind]['p95']:.2f}  "
               f"max {r[kind]['max']:.2f}" for kind in ("raw", "upright"))]
    for name in ("mirror_ckplus", "mirror_expw"):
        m = report[name]
        lines.append(f"{name}: {m['faces']} faces; |yaw + mirrored yaw| / 2 mean {m['mirror_yaw_error']['mean']:.2f} "
                     f"p95 {m['mirror_yaw_error']['p95']:.2f}; |yaw| median {m['abs_yaw']['median']:.1f} p95 "
                     f"{m['abs_yaw']['p95']:.1f}; |pitch| median {m['abs_pitch']['median']:.1f} p95 "
                     f"{m['abs_pitch']['p95']:.1f}; unreliable {m['unreliable_share'] * 100:.1f}%")
    t = report["timing_ckplus"]
    for name, s in report["synthetic"].items():
        lines.append(f"synthetic round trip, {name} ({s['views']} views, yaw {s['yaw']}, pitch {s['pitch']}, roll 0/20):"
                     f" max error yaw {s['yaw_max']:.2f}, pitch {s['pitch_max']:.2f}, roll {s['roll_max']:.2f}")
    lines.append(f"time: pose {t['pose_ms_per_face'] * 1000:.0f} us per face; upright re-detection "
                 f"{t['upright_redetection_ms_per_tilted_face']:.2f} ms per tilted face ({t['tilted_faces']} faces)")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
