"""ferkit against the `fer` package (justinshenk/fer 25.10.3), the same photos in the same run.

`fer` is installed into its own virtual environment (default ``~/.cache/ferkit/fer-venv``), apart from
ferkit's, with ``--no-deps`` plus what it needs to classify a photo (tensorflow-cpu, OpenCV < 5 for its
Haar detector, requests, Pillow, setuptools < 81 for pkg_resources) -- its other pins (facenet-pytorch's
torch, moviepy) are for features not used here. If it cannot be installed, the benchmark says so and
exits 0. Measured on each photo set (``ferkit.analysis.photos`` layouts): faces found and end-to-end accuracy for
both tools (each labelled face matched to each tool's own detection by IoU >= 0.3, or the largest face
where the set has no boxes; not found counts as wrong), then the classifier-only comparison: accuracy of
each on the labelled faces that BOTH tools found; and the time per 640x480 frame with one face, interleaved.
Usage: python benchmarks/vs_fer.py --photos ../shared/data/expw_dev --photos ../shared/data/ckplus_peak
       [--models NEW fer-m] [--venv DIR] [--rounds 5 (0: no timing)] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS

FER_PACKAGES = ["tensorflow-cpu>=2.15,<2.21", "opencv-python-headless>=4.8,<5", "requests", "pillow", "setuptools<81"]

# Runs inside fer's venv: reads image paths on stdin, answers one JSON line per image.
FER_WORKER = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import cv2
    from fer.fer import FER
    det = FER(mtcnn=False)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = line.strip()
        img = cv2.imread(path)
        start = time.perf_counter()
        faces = det.detect_emotions(img)
        ms = (time.perf_counter() - start) * 1000
        print(json.dumps({"faces": [{"box": [int(v) for v in f["box"]], "emotions": f["emotions"]} for f in faces],
                          "ms": ms}), flush=True)
""")


def ensure_fer(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import fer.fer"], capture_output=True).returncode == 0:
        return python
    print(f"installing fer into {venv} (once) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(pip + ["--no-deps", "fer==25.10.3"], check=True)
        subprocess.run(pip + FER_PACKAGES, check=True)
        subprocess.run([python, "-c", "import fer.fer"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"fer could not be installed ({exc}); skipping the comparison", file=sys.stderr)
        return None
    return python


def fer_predictions(fs, fer_run) -> tuple[np.ndarray, np.ndarray]:
    """fer's answer for every labelled face of a found set: the detection with the highest IoU (>= 0.3), or
    the largest face where the set has no boxes; -1 where fer found none. Also fer's ms per photo."""
    from ferkit.analysis.photos import IOU_MIN, iou

    pred = np.full(len(fs.labels), -1)
    by_photo: dict = {}
    for i, face in enumerate(fs.faces):
        by_photo.setdefault(face.path, []).append(i)
    ms = []
    for path, idx in by_photo.items():
        out = fer_run(str(path))
        ms.append(out["ms"])
        for i in idx:
            box = fs.faces[i].box
            if not out["faces"]:
                continue
            if box is None:
                f = max(out["faces"], key=lambda f: f["box"][2] * f["box"][3])
            else:
                score, f = max(((iou(box, f["box"]), f) for f in out["faces"]), key=lambda t: t[0])
                if score < IOU_MIN:
                    continue
            pred[i] = EMOTIONS.index(max(f["emotions"], key=f["emotions"].get))
    return pred, np.array(ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, action="append", required=True,
                    help="photo set: labels.csv with boxes (ExpW dev) or without (CK+), or <emotion>/ folders; repeatable")
    ap.add_argument("--models", nargs="+", default=[None], help="ferkit models to put beside fer (default: the default)")
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "ferkit" / "fer-venv")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--max-side", type=int, default=320, help="ferkit detector's frame size")
    args = ap.parse_args()
    python = ensure_fer(args.venv)
    if python is None:
        return
    from ferkit.analysis.photos import find_faces

    worker = subprocess.Popen([str(python), "-c", FER_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)
    assert json.loads(worker.stdout.readline())["ready"]

    def fer_run(path: str) -> dict:
        worker.stdin.write(path + "\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    report = {"sets": {}}
    for root in args.photos:
        fs = find_faces(root, max_side=args.max_side)
        truth = fs.labels
        fer_pred, fer_ms = fer_predictions(fs, fer_run)
        rows = {"fer": {"pred": fer_pred, "found": fer_pred >= 0}}
        for model in args.models:
            pred, meta = _ferkit_pred(fs, model)
            rows[f"ferkit {meta.get('name', model)}"] = {"pred": pred, "found": fs.found}
        both = rows["fer"]["found"] & fs.found
        out = {"faces": int(len(truth)), "found_by_both": int(both.sum()), "fer_ms_per_photo": float(np.median(fer_ms)),
               "tools": {}}
        for tool, r in rows.items():
            pred = np.where(r["found"], r["pred"], -1)
            out["tools"][tool] = {
                "found": int(r["found"].sum()), "accuracy": float((pred == truth).mean()),
                "accuracy_on_faces_both_find": float((pred[both] == truth[both]).mean()) if both.any() else None,
                "recall": {EMOTIONS[c]: float((pred[truth == c] == c).mean()) for c in sorted(set(truth.tolist()))}}
        report["sets"][root.name] = out
        print(f"\n{root.name}: {len(truth)} labelled faces; {int(both.sum())} found by both tools")
        print(f"{'tool':24s} {'found':>7s} {'end to end':>11s} {'on faces both find':>19s}")
        for tool, t in out["tools"].items():
            b = t["accuracy_on_faces_both_find"]
            print(f"{tool:24s} {t['found']:7d} {t['accuracy'] * 100:10.1f}% {'-' if b is None else f'{b * 100:.1f}%':>19s}")
    # speed: one 640x480 frame with one face, both tools interleaved, end to end (read excluded); --rounds 0 skips it
    if args.rounds > 0:
        _time_one_frame(args, fs, fer_run, report)
    worker.stdin.close()
    worker.wait()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def _time_one_frame(args, fs, fer_run, report) -> None:
    import cv2

    from ferkit.pipeline.recognize import Recognizer

    first = fs.faces[0].path
    img = cv2.imread(str(first))
    img = cv2.resize(img, (640, 480)) if img.shape[:2] != (480, 640) else img
    tmp = Path(args.venv) / "frame640.png"
    cv2.imwrite(str(tmp), img)
    rgb = np.ascontiguousarray(img[..., ::-1])
    rec = Recognizer(args.models[0], max_side=args.max_side)
    times = {"fer": [], "ferkit": []}
    for _ in range(args.rounds):
        for _ in range(5):
            times["fer"].append(fer_run(str(tmp))["ms"])
            start = time.perf_counter()
            rec.predict(rgb, color="RGB")
            times["ferkit"].append((time.perf_counter() - start) * 1000)
    report["ms_640x480"] = {k: float(np.median(v)) for k, v in times.items()}
    print(f"\n640x480 frame with one face ({first.name}), median of {args.rounds * 5} interleaved runs, ferkit "
          f"({rec.classifier.name}) on 1 thread: fer {report['ms_640x480']['fer']:.1f} ms, ferkit "
          f"{report['ms_640x480']['ferkit']:.1f} ms")


def _ferkit_pred(fs, model) -> tuple[np.ndarray, dict]:
    from ferkit.analysis.evaluate import load_predictor

    predict, meta = load_predictor(model)
    pred = np.full(len(fs.labels), -1)
    if fs.found.any():
        pred[fs.found] = predict(fs.crops[fs.found]).argmax(axis=1)
    return pred, meta


if __name__ == "__main__":
    main()
