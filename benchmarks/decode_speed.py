"""Decoding a video file to RGB frames, side by side in one run: OpenCV's VideoCapture (+ BGR->RGB, ferkit's reader
before issue 31) against ferkit.pipeline.decode.AvFile (PyAV; 4:2:0 frames converted by OpenCV) and PyAV's own rgb24
conversion (swscale). Synthetic 640x480 clips at 30 fps (MPEG-4 part 2, as `benchmarks/video_speed.py` makes
them), rounds interleaved, the median of each reported in ms per frame.
Usage: python benchmarks/decode_speed.py [--seconds 10] [--rounds 5] [--out benchmarks/results/decode_speed.txt]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_models import cpu_flags, emit  # noqa: E402
from video_speed import make_clip  # noqa: E402


def opencv(path: Path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            return n
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1


def ferkit_decode(path: Path) -> int:
    from ferkit.pipeline.decode import AvFile

    src, n = AvFile(path), 0
    while src.read() is not None:
        n += 1
    src.close()
    return n


def pyav_rgb24(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    readers = {"OpenCV VideoCapture + BGR->RGB": opencv, "ferkit.pipeline.decode (PyAV, OpenCV I420->RGB)": ferkit_decode,
               "PyAV rgb24 (swscale)": pyav_rgb24}
    times: dict[str, list[float]] = {k: [] for k in readers}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, 1)
        counts = {}
        for _ in range(args.rounds):
            for name, read in readers.items():
                start = time.perf_counter()
                counts[name] = read(clip)
                times[name].append((time.perf_counter() - start) * 1000 / counts[name])

    lines = [f"# decoding a 640x480 30 fps MPEG-4 clip of {args.seconds:g} s to RGB, median of {args.rounds} "
             f"interleaved rounds; CPU flags: {cpu_flags()}",
             f"{'reader':42} {'frames':>6} {'ms/frame':>9}"]
    for name in readers:
        lines.append(f"{name:42} {counts[name]:>6} {statistics.median(times[name]):>9.3f}")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
