"""A measured idea, not shipped: with ``--scales auto``, skip the main pass where the finer pass alone can see a
face as large as the frame (two passes planned, and the short side at the finer scale <= RELIABLE_MAX px; e.g. a
640x480 frame: one pass at 0.8 instead of 0.5 and 0.8). Same run, same (default, int8) detector, ExpW dev's photos
decoded once: labelled faces found (IoU >= 0.3) and mean ms per photo, now against the one-pass plan.

    python benchmarks/detect_one_pass.py [../shared/data/expw_dev] | tee benchmarks/results/detect_one_pass.txt
"""

from __future__ import annotations

import sys
import time

import numpy as np

import ferkit.runtime.detect as detect
from ferkit.data.photoset import read_photo_set
from ferkit.core.images import read_image
from ferkit.analysis.photos import IOU_MIN, iou

PLANNED = detect.plan_scales


def one_pass(height, width, *, max_side, scales="auto", smallest_face=detect.SMALLEST_FACE):
    plan = PLANNED(height, width, max_side=max_side, scales=scales, smallest_face=smallest_face)
    if scales == "auto" and len(plan) == 2 and min(height, width) * plan[-1] <= detect.RELIABLE_MAX:
        return [plan[-1]]
    return plan


def main() -> None:
    by_photo: dict = {}
    for face in read_photo_set(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/expw_dev"):
        by_photo.setdefault(face.path, []).append(face)
    images = {path: read_image(path) for path in sorted(by_photo)}
    detector = detect.create_detector(max_side=320, scales="auto")
    for name, plan in (("now", PLANNED), ("one-pass", one_pass)):
        detect.plan_scales = plan  # CenterFace.detect looks the planner up in its module
        found = total = shorter = 0
        seconds = 0.0
        for path, rgb in images.items():
            start = time.perf_counter()
            faces = detector.detect(rgb)
            seconds += time.perf_counter() - start
            shorter += len(plan(*rgb.shape[:2], max_side=320)) < len(PLANNED(*rgb.shape[:2], max_side=320))
            for labelled in by_photo[path]:
                total += 1
                found += bool(faces) and max(iou(labelled.box, f.box) for f in faces) >= IOU_MIN
        print(f"{name}: found {found}/{total} = {found / total:.4f}, {seconds / len(images) * 1000:.1f} ms/photo, "
              f"photos with a shorter plan: {shorter}")
    sides = [min(rgb.shape[:2]) for rgb in images.values()]
    print("short side of the photos, 10/50/90th percentile:", np.percentile(sides, [10, 50, 90]))


if __name__ == "__main__":
    main()
