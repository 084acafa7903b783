"""ferkit against the `fer` package (justinshenk/fer 25.10.3), the same photos in the same run.

`fer` is installed into its own virtual environment (default ``~/.cache/ferkit/fer-venv``), apart from
ferkit's, with ``--no-deps`` plus what it needs to classify a photo (tensorflow-cpu, OpenCV < 5 for its
Haar detector, requests, Pillow, setuptools < 81 for pkg_resources) -- its other pins (facenet-pytorch's
torch, moviepy) are for features not used here. If it cannot be installed, the benchmark says so and
exits 0. Measured: CK+ end-to-end accuracy (the largest detected face per frame; none found counts as
wrong) and detection recall for both, and the time per 640x480 frame with one face, interleaved.
Usage: python benchmarks/vs_fer.py --ckplus ../shared/data/ckplus_peak [--venv DIR] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from ferkit.labels import EMOTIONS
from ferkit.recognize import Recognizer

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "ferkit" / "fer-venv")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--max-side", type=int, default=None, help="detector's frame size (default: the Recognizer's)")
    args = ap.parse_args()
    python = ensure_fer(args.venv)
    if python is None:
        return
    rows = [r for r in csv.DictReader(open(args.ckplus / "labels.csv")) if r["emotion"] in EMOTIONS]
    paths = [str(args.ckplus / r["path"]) for r in rows]
    truth = np.array([EMOTIONS.index(r["emotion"]) for r in rows])
    worker = subprocess.Popen([str(python), "-c", FER_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)
    assert json.loads(worker.stdout.readline())["ready"]

    def fer_run(path: str) -> dict:
        worker.stdin.write(path + "\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    rec = Recognizer(**({"max_side": args.max_side} if args.max_side else {}))
    results = {"fer": [], "ferkit": []}
    for path in paths:
        out = fer_run(path)
        face = max(out["faces"], key=lambda f: f["box"][2] * f["box"][3]) if out["faces"] else None
        results["fer"].append(EMOTIONS.index(max(face["emotions"], key=face["emotions"].get)) if face else -1)
        res = rec.predict(path)
        face = max(res.faces, key=lambda f: f.box[2] * f.box[3]) if res.faces else None
        results["ferkit"].append(EMOTIONS.index(face.emotion) if face else -1)
    # speed: one 640x480 frame with one face, both tools interleaved, end to end (read excluded)
    frame = paths[0]
    import cv2

    img = cv2.imread(frame)
    img = cv2.resize(img, (640, 480)) if img.shape[:2] != (480, 640) else img
    tmp = Path(args.venv) / "frame640.png"
    cv2.imwrite(str(tmp), img)
    rgb = np.ascontiguousarray(img[..., ::-1])
    times = {"fer": [], "ferkit": []}
    for _ in range(args.rounds):
        for _ in range(5):
            times["fer"].append(fer_run(str(tmp))["ms"])
            start = time.perf_counter()
            rec.predict(rgb, color="RGB")
            times["ferkit"].append((time.perf_counter() - start) * 1000)
    worker.stdin.close()
    worker.wait()
    report = {}
    for tool in ("fer", "ferkit"):
        pred = np.array(results[tool])
        report[tool] = {"accuracy": float((pred == truth).mean()), "detected": int((pred >= 0).sum()),
                        "frames": len(truth), "ms_640x480": float(np.median(times[tool]))}
    print(f"CK+ peak frames ({len(truth)}), largest face per frame; 640x480 frame, median of "
          f"{args.rounds * 5} interleaved runs, 1 thread for ferkit")
    print(f"{'tool':8s} {'accuracy':>9s} {'faces found':>12s} {'ms/frame':>9s}")
    for tool, r in report.items():
        print(f"{tool:8s} {r['accuracy'] * 100:8.1f}% {r['detected']:6d} / {r['frames']:<4d} {r['ms_640x480']:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
