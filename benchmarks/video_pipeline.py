"""What ``--detect-every K`` and ``--classify-every M`` cost in accuracy and buy in speed, on a clip with moving faces.

The clip: 640x480 at 30 fps, three faces (the bundled sample photo's, Grace Hopper's and the first one mirrored)
moving at different speeds (2, 5 and 9 px per frame at their fastest: slow, walking, quick) over a grey background,
``--seconds`` long. The reference is ferkit's own default (K = M = 1: detector and classifier on every frame). For
each setting: frames/s of the ``stream`` loop in this process (one thread, no drawing or encoding), the face boxes'
IoU with the reference's (mean, and the share of face-frames under 0.5: a box that fell behind a moving face), faces
lost (in the reference, not matched at IoU >= 0.3), and the share of face-frames whose smoothed emotion equals the
reference's.

    python benchmarks/video_pipeline.py --json benchmarks/results/video_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = [(1, 1), (2, 1), (3, 1), (5, 1), (1, 3), (1, 5), (3, 3), (3, 5), (5, 5)]
SPEEDS = (2, 5, 9)  # px per frame at the fastest point of each face's sine path


def make_moving_clip(path: Path, seconds: float, fps: int = 30) -> Path:
    from video_speed import faces

    pics = faces()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        frame = np.full((480, 640, 3), 190, np.uint8)
        for k, (pic, speed) in enumerate(zip(pics, SPEEDS)):
            amplitude = 60.0
            x = int(20 + k * 210 + amplitude * np.sin(i * speed / amplitude))  # peak speed = speed px/frame
            y = 140 + 40 * (k % 2)
            x = max(0, min(640 - 150, x))
            frame[y:y + 200, x:x + 150] = pic
        writer.write(frame)
    writer.release()
    return path


def run(clip: Path, detect_every: int, classify_every: int) -> tuple[list, float]:
    from ferkit.pipeline.recognize import Recognizer
    from ferkit.video import stream

    rec = Recognizer(threads=1, scales="single")
    start = time.perf_counter()
    frames = [[(f.box, f.emotion) for f in fr.faces]
              for fr in stream(clip, recognizer=rec, detect_every=detect_every, classify_every=classify_every)]
    return frames, len(frames) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from ferkit.runtime.detect import iou
    from speed import cpu_flags, cpu_model

    clip = make_moving_clip(Path(tempfile.mkdtemp()) / "moving.mp4", args.seconds)
    reference, _ = run(clip, 1, 1)
    out = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "seconds": args.seconds, "settings": {}}
    print(f"# {out['cpu']}, CPU flags {out['cpu_flags']}; 640x480 clip, 3 faces moving at up to {SPEEDS} px/frame, "
          f"{len(reference)} frames; reference: --detect-every 1 --classify-every 1")
    print(f"{'K':>2s} {'M':>2s} {'frames/s':>9s} {'mean IoU':>9s} {'IoU<0.5':>8s} {'lost':>6s} {'same emotion':>13s}")
    for k, m in SETTINGS:
        frames, fps = run(clip, k, m)
        ious, lost, same, total = [], 0, 0, 0
        for ref, got in zip(reference, frames):
            for box, emotion in ref:
                total += 1
                best = max(got, key=lambda g: iou(box, g[0]), default=None)
                score = iou(box, best[0]) if best else 0.0
                if score < 0.3:
                    lost += 1
                    continue
                ious.append(score)
                same += best[1] == emotion
        row = {"frames_per_s": fps, "mean_iou": float(np.mean(ious)), "iou_under_half": float(np.mean(np.array(ious) < 0.5)),
               "lost": lost / total, "same_emotion": same / total, "face_frames": total}
        out["settings"][f"K{k}_M{m}"] = row
        print(f"{k:2d} {m:2d} {fps:9.1f} {row['mean_iou']:9.3f} {row['iou_under_half'] * 100:7.1f}% "
              f"{row['lost'] * 100:5.1f}% {row['same_emotion'] * 100:12.1f}%", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
