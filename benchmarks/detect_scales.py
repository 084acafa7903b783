"""Face detection at one scale (``--scales single``, ferkit's behaviour before issue 24 item 8) against the
scales the image needs (``--scales auto``, the default now), side by side in one run:

- ms per 640x480 frame with one face (~150 px wide: a webcam or video frame), median of ``--repeats``;
- ms per 12 MP photo (4000x3000) with faces from 24 to 900 px wide, generated from the bundled sample photo's
  face and Grace Hopper's (matplotlib's sample data), pasted on a plain background; median of
  ``--repeats-large``; and how many of its faces each finds (a box with IoU >= 0.3 with the pasted one);
- ExpW dev found rate: the labelled faces matched by a detection with IoU >= 0.3 (the rule of ``ferkit evaluate
  --photos``, :func:`ferkit.analysis.photos.find_faces`), the detections per photo, and the mean ms per photo.

Each mode runs with each ``--detectors`` (default: CenterFace fp32 and its int8 copy, ferkit's default since
issue 25), ``max_side=320`` (the default), one onnxruntime thread; the runs are interleaved so that load on the
machine touches all alike. The real run, on a quiet machine (~15 min):

    OMP_NUM_THREADS=1 python benchmarks/detect_scales.py --expw ../shared/data/expw_dev \\
        --json benchmarks/results/detect_scales.json | tee benchmarks/results/detect_scales.txt

``--limit N``: only the first N ExpW photos (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from compare_models import cpu_flags

MODES = ("single", "auto")
LARGE_FACES = (24, 40, 60, 90, 140, 220, 350, 550, 900)  # px wide, in the 12 MP photo


def face_tiles() -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """Two real faces as RGB squares twice their face's width, each with its face box (x, y, w, h)."""
    import matplotlib.cbook as cbook

    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.runtime.detect import create_detector

    det = create_detector("centerface", max_side=1024, scales="single")
    out = []
    for path in (SAMPLE_PHOTO, cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        x, y, w, h = max(det.detect(rgb), key=lambda f: f.score).box
        side = round(2 * w)  # the face box is ~1.35x taller than wide: it fits
        x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
        pad = cv2.copyMakeBorder(rgb, side, side, side, side, cv2.BORDER_REFLECT)
        out.append((pad[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side].copy(), (x - x0, y - y0, w, h)))
    return out


def paste(canvas: np.ndarray, tile, box, width: float, cx: int, cy: int) -> tuple[float, float, float, float]:
    """``tile`` scaled so its face is ``width`` px wide, centred at (cx, cy); gives the face's box there."""
    k = width / box[2]
    img = cv2.resize(tile, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    t = img.shape[0]
    x0, y0 = cx - t // 2, cy - t // 2
    canvas[y0:y0 + t, x0:x0 + t] = img
    return (x0 + box[0] * k, y0 + box[1] * k, box[2] * k, box[3] * k)


def frame_640(tiles) -> np.ndarray:
    canvas = np.full((480, 640, 3), 170, np.uint8)
    paste(canvas, *tiles[0], 150, 320, 230)
    return canvas


def photo_12mp(tiles) -> tuple[np.ndarray, list]:
    canvas = np.full((3000, 4000, 3), 185, np.uint8)
    boxes = [paste(canvas, *tiles[i % 2], width, cx, cy) for i, (width, (cx, cy)) in enumerate(zip(LARGE_FACES, (
        (3600, 2300), (3200, 2300), (2800, 2300), (2400, 2300), (1800, 2300), (1800, 1600), (1000, 1800),
        (1000, 700), (3050, 950))))]
    return canvas, boxes


def time_ms(dets: dict, image: np.ndarray, repeats: int) -> dict:
    times = {m: [] for m in dets}
    for m, det in dets.items():  # warm-up: the session allocates for the shape
        det.detect(image)
    for _ in range(repeats):
        for m, det in dets.items():
            t = time.perf_counter()
            det.detect(image)
            times[m].append((time.perf_counter() - t) * 1000)
    return {m: statistics.median(v) for m, v in times.items()}


def expw(dets: dict, root: Path, limit: int | None) -> dict:
    from ferkit.core.images import ImageError, read_image
    from ferkit.analysis.photos import IOU_MIN, iou, read_photo_set

    by_photo: dict[Path, list] = {}
    for f in read_photo_set(root):
        by_photo.setdefault(f.path, []).append(f)
    photos = sorted(by_photo)[:limit] if limit else sorted(by_photo)
    stats = {m: {"found": 0, "detections": 0, "ms": []} for m in dets}
    n = unreadable = 0
    for path in photos:
        try:
            rgb = read_image(path)
        except ImageError:
            unreadable += 1
            continue
        n += len(by_photo[path])
        for m, det in dets.items():
            t = time.perf_counter()
            faces = det.detect(rgb)
            stats[m]["ms"].append((time.perf_counter() - t) * 1000)
            stats[m]["detections"] += len(faces)
            for lf in by_photo[path]:
                if faces and (lf.box is None or max(iou(lf.box, d.box) for d in faces) >= IOU_MIN):
                    stats[m]["found"] += 1
    return {"photos": len(photos), "unreadable": unreadable, "faces": n,
            **{m: {"found": s["found"], "found_rate": s["found"] / max(1, n),
                   "detections_per_photo": s["detections"] / max(1, len(photos) - unreadable),
                   "mean_ms": float(np.mean(s["ms"])) if s["ms"] else None,
                   "median_ms": float(np.median(s["ms"])) if s["ms"] else None} for m, s in stats.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--expw", type=Path, default=Path("../shared/data/expw_dev"), help="ExpW dev photo set")
    ap.add_argument("--limit", type=int, default=None, help="only the first N ExpW photos (smoke test)")
    ap.add_argument("--repeats", type=int, default=25, help="timed runs per 640x480 frame and mode")
    ap.add_argument("--repeats-large", type=int, default=5, help="timed runs per 12 MP photo and mode")
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--detectors", nargs="+", default=["centerface", "centerface-int8"])
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)

    from ferkit.runtime.detect import create_detector
    from ferkit.analysis.photos import IOU_MIN, iou

    dets = {f"{d} {m}": create_detector(d, threads=args.threads, max_side=args.max_side, scales=m)
            for d in args.detectors for m in MODES}
    tiles = face_tiles()
    frame = frame_640(tiles)
    photo, boxes = photo_12mp(tiles)
    result = {"cpu": platform.processor() or platform.machine(), "cpu_flags": cpu_flags(), "threads": args.threads,
              "max_side": args.max_side, "python": sys.version.split()[0],
              "frame_640x480_ms": time_ms(dets, frame, args.repeats),
              "photo_12mp_ms": time_ms(dets, photo, args.repeats_large),
              "photo_12mp_faces": {"widths": list(LARGE_FACES)}}
    for m, det in dets.items():
        faces = det.detect(photo)
        hit = [bool(faces) and max(iou(b, f.box) for f in faces) >= IOU_MIN for b in boxes]
        result["photo_12mp_faces"][m] = {"found": int(sum(hit)), "detections": len(faces),
                                         "found_widths": [w for w, h in zip(LARGE_FACES, hit) if h]}
    if args.expw is not None and (args.expw / "labels.csv").exists():
        result["expw"] = expw(dets, args.expw, args.limit)
        result["expw"]["limit"] = args.limit
    else:
        print(f"no ExpW photo set at {args.expw}: skipped", file=sys.stderr)

    print(f"max_side {args.max_side}, {args.threads} thread(s); CPU flags: {result['cpu_flags']}; "
          "single: one pass (video's default), auto: the scales the image needs (predict's default)")
    cols = list(dets)
    print(f"{'':34s}" + "".join(f"{c:>24s}" for c in cols))
    print(f"{'ms per 640x480 frame, 1 face':34s}" + "".join(f"{result['frame_640x480_ms'][c]:24.1f}" for c in cols))
    print(f"{'ms per 12 MP photo':34s}" + "".join(f"{result['photo_12mp_ms'][c]:24.1f}" for c in cols))
    pf = result["photo_12mp_faces"]
    print(f"{f'12 MP photo: faces found of {len(boxes)}':34s}" + "".join(f"{pf[c]['found']:24d}" for c in cols))
    if "expw" in result:
        e = result["expw"]
        label = f"ExpW dev found ({e['faces']} faces)"
        print(f"{label:34s}" + "".join(f"{e[c]['found_rate']:24.2%}" for c in cols))
        print(f"{'ExpW dev detections per photo':34s}" + "".join(f"{e[c]['detections_per_photo']:24.2f}" for c in cols))
        print(f"{'ExpW dev ms per photo (mean)':34s}" + "".join(f"{e[c]['mean_ms']:24.1f}" for c in cols))
        if e["limit"]:
            print(f"(first {e['photos']} photos only: --limit {e['limit']})")
    for c in cols:
        print(f"12 MP photo, face widths found, {c}: {pf[c]['found_widths']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
