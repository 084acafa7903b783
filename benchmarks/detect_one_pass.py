"""A measured idea, not shipped: with ``--scales auto``, skip the main pass where the finer pass alone can see a
face as large as the frame (two passes planned, and the short side at the finer scale <= RELIABLE_MAX px; e.g. a
640x480 frame: one pass at 0.8 instead of 0.5 and 0.8). Same run, same int8 detector, ExpW dev's photos decoded
once: labelled faces found (IoU >= 0.3) and mean ms per photo, now against the one-pass plan.

    python benchmarks/detect_one_pass.py | tee benchmarks/results/detect_one_pass.txt
"""
import time, numpy as np, sys
import ferkit.detect as D
from ferkit.data import read_photo_set
from ferkit.images import read_image
from ferkit.photos import IOU_MIN, iou
orig = D.plan_scales
def one_pass(height, width, *, max_side, scales="auto", smallest_face=D.SMALLEST_FACE):
    plan = orig(height, width, max_side=max_side, scales=scales, smallest_face=smallest_face)
    if scales == "auto" and len(plan) == 2 and min(height, width) * plan[-1] <= D.RELIABLE_MAX:
        return [plan[-1]]
    return plan
faces = read_photo_set(sys.argv[1] if len(sys.argv) > 1 else '../shared/data/expw_dev'); by = {}
for f in faces: by.setdefault(f.path, []).append(f)
det = D.create_detector(max_side=320, scales="auto")
res = {}
imgs = {p: read_image(p) for p in sorted(by)}
sizes = [min(i.shape[:2]) for i in imgs.values()]
for name, fn in [("now", orig), ("one-pass", one_pass)]:
    D.plan_scales = fn
    found = 0; ms = 0; n = 0; changed = 0
    for p, rgb in imgs.items():
        t = time.perf_counter(); out = det.detect(rgb); ms += time.perf_counter() - t
        if len(fn(*rgb.shape[:2], max_side=320)) != len(orig(*rgb.shape[:2], max_side=320)): changed += 1
        for f in by[p]:
            n += 1
            if out and max(iou(f.box, g.box) for g in out) >= IOU_MIN: found += 1
    res[name] = (found / n, ms / len(imgs) * 1000, changed)
    print(name, f"found {found}/{n} = {found/n:.4f}, {ms/len(imgs)*1000:.1f} ms/photo, photos with a shorter plan: {changed}")
print("short side quantiles", np.percentile(sizes, [10, 50, 90]))
