"""Video throughput and memory, end to end, as a user runs it: `ferkit video clip.mp4 --jsonl t.jsonl --out
annotated.mp4` in a fresh process (start-up, decoding, detection, classification, drawing and encoding
included), on synthetic 640x480 clips at 30 fps with 1 and 3 faces (the bundled sample photo's face and
Grace Hopper's, from matplotlib's sample data, drifting sideways). The detector's share of the time comes
from a second, in-process pass with the detector timed. Peak RSS (the child's ru_maxrss) is reported
for clips of ``--rss-minutes`` minutes, to show memory stays flat.
Usage: python benchmarks/video_speed.py [--seconds 10] [--rss-minutes 1 10] [--models fer-faceres fer-real-int8]
(``--models``: each model's rows in turn, on the same clips; default: the default model only)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def faces() -> list[np.ndarray]:
    import matplotlib.cbook as cbook

    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    a = cv2.imread(str(SAMPLE_PHOTO))
    b = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    a = cv2.resize(a[30:350, 120:360], (150, 200))
    b = cv2.resize(b[80:420, 150:400], (150, 200))
    return [a, b, cv2.flip(a, 1)]


def make_clip(path: Path, seconds: float, n_faces: int, fps: int = 30) -> Path:
    pics = faces()[:n_faces]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        frame = np.full((480, 640, 3), 190, np.uint8)
        for k, pic in enumerate(pics):
            x = 20 + k * 210 + int(15 * np.sin(i / 20 + k))
            frame[140 + 20 * k % 60:340 + 20 * k % 60, x:x + 150] = pic
        writer.write(frame)
    writer.release()
    return path


WRAPPER = ("import resource, subprocess, sys; subprocess.run([sys.executable, '-m', 'ferkit.cli', 'video', sys.argv[1],"
           " '--jsonl', sys.argv[2], '--out', sys.argv[3]] + sys.argv[4:], check=True, capture_output=True);"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run_cli(clip: Path, workdir: Path, model: str | None = None) -> tuple[float, int, float]:
    """Wall seconds, frames processed, and peak RSS in MiB of one `ferkit video` process (run under a
    wrapper so its ru_maxrss is its own)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER, str(clip), str(workdir / "t.jsonl"),
                          str(workdir / "annotated.mp4")] + (["--model", model] if model else []),
                         capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    frames = len({json.loads(line)["frame"] for line in open(workdir / "t.jsonl")})
    return seconds, frames, int(out) / 1024


def detector_share(clip: Path, model: str | None = None) -> float:
    from ferkit.pipeline.recognize import Recognizer
    from ferkit.video import stream

    rec = Recognizer(model, scales="single")
    spent = [0.0]
    real = rec.detector.detect

    def timed(rgb):
        t = time.perf_counter()
        out = real(rgb)
        spent[0] += time.perf_counter() - t
        return out

    rec.detector.detect = timed
    start = time.perf_counter()
    for _ in stream(clip, recognizer=rec):
        pass
    return spent[0] / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rss-minutes", type=float, nargs="*", default=[1, 10])
    ap.add_argument("--models", nargs="*", default=[None], help="models to run, each on the same clips")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print(f"# ferkit video, default flags (detect every frame at 320 px, 1 thread), {os.cpu_count()} cores, "
          f"640x480 at 30 fps, {args.seconds:g} s clips; wall time includes start-up and MP4 encoding")
    print(f"{'model':16s} {'faces':>5s} {'frames':>7s} {'wall s':>7s} {'frames/s':>9s} {'detector share':>15s} "
          f"{'peak RSS':>9s}")
    clips = {n: make_clip(tmp / f"clip{n}.mp4", args.seconds, n) for n in (1, 3)}
    for n, clip in clips.items():
        for model in args.models:
            seconds, frames, rss = run_cli(clip, tmp, model)
            print(f"{model or 'default':16s} {n:5d} {frames:7d} {seconds:7.2f} {frames / seconds:9.1f} "
                  f"{detector_share(clip, model) * 100:14.0f}% {rss:6.0f} MiB", flush=True)
    for minutes in args.rss_minutes:
        clip = make_clip(tmp / f"long{minutes:g}.mp4", minutes * 60, 1)
        seconds, frames, rss = run_cli(clip, tmp)
        print(f"{minutes:g}-minute clip: {frames} frames in {seconds:.0f} s ({frames / seconds:.1f} frames/s), "
              f"peak RSS {rss:.0f} MiB", flush=True)
        (tmp / f"long{minutes:g}.mp4").unlink()


if __name__ == "__main__":
    main()
