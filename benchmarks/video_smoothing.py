"""What per-track smoothing buys, and the lag it adds: a synthetic "video" track built from still faces.

Each segment is one FER2013 PublicTest face held for ``--frames`` frames, every frame with fresh camera
noise (Gaussian, sigma 8 grey levels), brightness jitter (+-12) and a random shift of up to 2 px; the
expression (true label) changes from segment to segment. The shipped classifier scores every frame; the
track's probabilities are averaged over a sliding window exactly as `ferkit video` does. Reported per
window: per-frame accuracy (raw = window 1); steady-state accuracy (frames at least `window` frames after
a change, where the window holds one expression only); label flips per 30 frames in that steady state
(how often the shown emotion changes while the face does not: jitter); and the lag after an expression change: frames until
the smoothed emotion equals the new label (median over the changes where it gets there in the segment).
Usage: python benchmarks/video_smoothing.py --data fer2013.csv.gz [--segments 200] [--frames 30]
"""

from __future__ import annotations

import argparse
from collections import deque

import numpy as np

from ferkit.data.fer2013 import load_fer2013
from ferkit.runtime.classifier import Classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 5, 10, 15, 30])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    test = load_fer2013(args.data).split("PublicTest")
    picks, last = [], -1
    while len(picks) < args.segments:  # consecutive segments show different expressions
        i = int(rng.integers(len(test)))
        if test.labels[i] != last:
            picks.append(i)
            last = test.labels[i]
    frames, truth = [], []
    for i in picks:
        for _ in range(args.frames):
            face = np.pad(test.images[i].astype(np.float32), 2, mode="edge")
            dy, dx = rng.integers(0, 5, 2)
            face = face[dy:dy + 48, dx:dx + 48] + rng.normal(0, 8, (48, 48)) + rng.uniform(-12, 12)
            frames.append(np.clip(face, 0, 255).astype(np.uint8))
            truth.append(test.labels[i])
    probs = Classifier().predict_proba(np.stack(frames))
    truth = np.array(truth)
    print(f"# {args.segments} segments x {args.frames} frames of PublicTest faces with per-frame noise; "
          f"shipped default model, no TTA")
    print(f"{'window':>6s} {'per-frame acc':>14s} {'steady-state acc':>17s} {'flips per 30 frames':>20s} "
          f"{'median lag':>11s} {'changes caught':>15s}")
    for w in args.windows:
        hist: deque = deque(maxlen=w)
        smoothed = []
        for p in probs:  # one track through all segments: the window spans expression changes, as in a video
            hist.append(p)
            smoothed.append(np.mean(hist, axis=0).argmax())
        smoothed = np.array(smoothed)
        lags, caught = [], 0
        for s in range(1, args.segments):
            seg = smoothed[s * args.frames:(s + 1) * args.frames] == truth[s * args.frames]
            if seg.any():
                caught += 1
                lags.append(int(np.argmax(seg)))
        acc = (smoothed == truth).mean() * 100
        pos = np.arange(len(truth)) % args.frames
        steady = (smoothed == truth)[pos >= min(w, args.frames - 1)].mean() * 100
        seg = smoothed.reshape(args.segments, args.frames)
        start = min(max(1, w), args.frames - 1)  # count flips only once the window holds this segment alone
        flips = (seg[:, start:] != seg[:, start - 1:-1]).mean() * 30  # per 30 frames (1 s at 30 fps)
        lag = np.median(lags) if lags else float("nan")
        print(f"{w:6d} {acc:13.2f}% {steady:16.2f}% {flips:20.2f} {lag:11.1f} {caught:8d} / {args.segments - 1}")


if __name__ == "__main__":
    main()
