"""ferkit's inference speed in one table, side by side in one run: this checkout, a baseline checkout of ferkit
(today's main before a change: ``git worktree add --detach ../baseline COMMIT``) and the `fer` package (25.10.3, in
its own venv, see ``vs_fer.py``). Each ferkit is run from its own ``src/`` (PYTHONPATH) in fresh processes, the
rounds interleaved, so machine noise falls on both alike.

Rows:
- classifier: ms per face, one face per call on one thread (median of 3 x 256 calls), and faces/s with 256 faces
  per call on every core; the default model of each checkout.
- one 640x480 frame with one face (the bundled sample photo, cropped), end to end on one thread (detector, crop,
  classifier; the image already decoded): video's defaults (one detector pass at 320 px) and predict's
  (``--scales auto``), median of 25; `fer`'s ``detect_emotions`` on the same frame.
- ``ferkit video`` as a user runs it (``--jsonl`` and ``--out``, start-up and MP4 encoding included), synthetic 640x480
  clips at 30 fps with 1 and 3 drifting faces; best of ``--rounds``; and the stage profile (``--profile``) of this
  checkout. Peak RSS over clips of ``--rss-minutes`` minutes (memory flat over a long clip).
- ``ferkit predict`` over a folder (``--photos``, e.g. ExpW dev's images) with ``--jsonl``: photos/s of each
  checkout's defaults; the records of this checkout given the baseline's default model must equal the baseline's
  (same photos, faces, boxes and probabilities), and the share of faces whose emotion this checkout's default
  agrees on.

    python benchmarks/speed.py --baseline ../baseline --photos ../shared/data/expw_dev/images \\
        --json benchmarks/results/speed.json | tee benchmarks/results/speed.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PARTS = ["classifier", "frame", "video", "predict"]
sys.path.insert(0, str(HERE))
from compare_models import cpu_flags  # noqa: E402  (benchmarks/ is not a package)

CLASSIFIER = """
import json, sys, time, numpy as np
from ferkit.runtime.classifier import Classifier
faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48)).astype(np.uint8)
one, many = Classifier(threads=1), Classifier(threads=0)
one.predict_proba(faces[:8]); many.predict_proba(faces)
singles = []
for _ in range(3):
    t = time.perf_counter()
    for f in faces:
        one.predict_proba(f[None])
    singles.append((time.perf_counter() - t) * 1000 / len(faces))
t = time.perf_counter()
for _ in range(8):
    many.predict_proba(faces)
print(json.dumps({"model": one.name, "precision": getattr(one, "precision", "fp32"), "ms_single": float(np.median(singles)),
                  "faces_per_s": 8 * len(faces) / (time.perf_counter() - t)}))
"""

FRAME = """
import json, sys, time, cv2, numpy as np
from ferkit.pipeline.recognize import Recognizer
rgb = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
out = {}
for scales in ("single", "auto"):
    rec = Recognizer(threads=1, scales=scales)
    faces = len(rec.predict(rgb, color="RGB").faces)
    ms = []
    for _ in range(25):
        t = time.perf_counter()
        rec.predict(rgb, color="RGB")
        ms.append((time.perf_counter() - t) * 1000)
    out[scales] = {"ms": float(np.median(ms)), "faces": faces}
print(json.dumps(out))
"""


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Checkout:
    """A ferkit source tree run in fresh processes (its ``src`` first on PYTHONPATH)."""

    def __init__(self, label: str, root: Path):
        self.label, self.root = label, root.resolve()
        self.env = {**os.environ, "PYTHONPATH": str(self.root / "src")}

    def python(self, code: str, *args: str) -> dict:
        out = subprocess.run([sys.executable, "-c", code, *args], env=self.env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{self.label}: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def cli(self, *args: str) -> tuple[float, str, float]:
        """Wall seconds, stderr and the child's peak RSS (MiB) of ``python -m ferkit.cli ARGS``."""
        wrapper = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'ferkit.cli', "
                   "*sys.argv[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
                   "sys.stderr.write(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                   "sys.exit(r.returncode)")
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", wrapper, *args], env=self.env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if out.returncode not in (0, 1):
            raise RuntimeError(f"{self.label}: ferkit {' '.join(args)}: {out.stderr[-2000:]}")
        return seconds, out.stderr, int(out.stdout.strip().splitlines()[-1]) / 1024


def sample_frame(path: Path) -> Path:
    """The bundled sample photo (one face) as a 640x480 frame."""
    import cv2

    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    img = cv2.imread(str(SAMPLE_PHOTO))
    h, w = img.shape[:2]
    scale = max(640 / w, 480 / h)
    img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y, x = (img.shape[0] - 480) // 2, (img.shape[1] - 640) // 2
    cv2.imwrite(str(path), img[y:y + 480, x:x + 640])
    return path


def fer_frame_ms(venv: Path, frame: Path, runs: int = 25) -> float | None:
    from vs_fer import FER_WORKER, ensure_fer

    python = ensure_fer(venv)
    if python is None:
        return None
    worker = subprocess.Popen([str(python), "-c", FER_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert json.loads(worker.stdout.readline())["ready"]
    ms = []
    for i in range(runs + 3):
        worker.stdin.write(f"{frame}\n")
        worker.stdin.flush()
        answer = json.loads(worker.stdout.readline())
        if i >= 3:
            ms.append(answer["ms"])
    worker.stdin.close()
    worker.wait()
    return float(np.median(ms))


def video_fps(stderr: str) -> float:
    """frames/s from ``ferkit video``'s closing line (its own loop; the wall time of the command is separate)."""
    for line in stderr.splitlines():
        if "frames/s)" in line and "frame(s)" in line:
            return float(line.rsplit("(", 1)[1].split()[0])
    raise ValueError(f"no frames/s line in: {stderr[-500:]}")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of ferkit to compare with")
    ap.add_argument("--photos", type=Path, help="a folder of photos for the predict row (e.g. ExpW dev's images)")
    ap.add_argument("--fer-venv", type=Path, default=Path.home() / ".cache" / "ferkit" / "fer-venv")
    ap.add_argument("--seconds", type=float, default=10, help="length of the 1- and 3-face clips")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rss-minutes", type=float, nargs="*", default=[1, 10])
    ap.add_argument("--baseline-model", default="fer-real", help="the baseline's default model (records check)")
    ap.add_argument("--baseline-detector", default="centerface", help="the baseline's detector (records check)")
    ap.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS, help="what to measure (default: all); with "
                    "--json, the other parts of an existing file are kept")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    this, base = Checkout("this", HERE.parent), Checkout("baseline", args.baseline)
    report = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": len(os.sched_getaffinity(0)),
              "machine": platform.machine(), "baseline": str(args.baseline)}
    print(f"# {report['cpu']}, {report['cores']} cores, CPU flags: {report['cpu_flags']}; this = {this.root}, "
          f"baseline = {base.root}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ferkit-speed-"))

    if args.json and args.json.exists() and set(args.parts) != set(PARTS):
        report = {**json.loads(args.json.read_text()), **report}
    # classifier
    if "classifier" in args.parts:
        classifier_rows(this, base, args, report)
    if "frame" in args.parts:
        frame_rows(this, base, args, report, tmp)
    if "video" in args.parts:
        video_rows(this, base, args, report, tmp)
    if "predict" in args.parts and args.photos:
        predict_rows(this, base, args, report, tmp)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def classifier_rows(this, base, args, report) -> None:
    rows = {c.label: [] for c in (this, base)}
    for _ in range(args.rounds):
        for c in (this, base):
            rows[c.label].append(c.python(CLASSIFIER))
    clf = {k: {"model": v[0]["model"], "precision": v[0]["precision"],
               "ms_single": min(r["ms_single"] for r in v), "faces_per_s": max(r["faces_per_s"] for r in v)}
           for k, v in rows.items()}
    report["classifier"] = clf
    print("\nclassifier (default model)      ms/face 1 call, 1 thread   faces/s, 256 per call, all cores")
    for k, v in clf.items():
        print(f"  {k:9s} {v['model']:>14s} {v['precision']:>5s} {v['ms_single']:12.2f} {v['faces_per_s']:20.0f}")
    print(f"  ratio this/baseline: {clf['baseline']['ms_single'] / clf['this']['ms_single']:.2f}x single, "
          f"{clf['this']['faces_per_s'] / clf['baseline']['faces_per_s']:.2f}x batched", flush=True)



def frame_rows(this, base, args, report, tmp) -> None:
    """One frame, end to end, one thread, beside fer."""
    frame = sample_frame(tmp / "frame640.png")
    per = {c.label: [] for c in (this, base)}
    for _ in range(args.rounds):
        for c in (this, base):
            per[c.label].append(c.python(FRAME, str(frame)))
    fer_ms = fer_frame_ms(args.fer_venv, frame)
    frame_ms = {k: {s: min(r[s]["ms"] for r in v) for s in ("single", "auto")} for k, v in per.items()}
    report["frame_640x480"] = {"ms": frame_ms, "fer_ms": fer_ms, "faces": per["this"][0]["single"]["faces"]}
    print("\none 640x480 frame, one face, end to end, 1 thread (ms; x = fer's time / ferkit's)")
    for k, v in frame_ms.items():
        ratio = lambda ms: f" ({fer_ms / ms:.2f}x fer)" if fer_ms else ""  # noqa: E731
        print(f"  {k:9s} video defaults (1 pass at 320 px) {v['single']:6.2f}{ratio(v['single'])}   "
              f"predict defaults (--scales auto) {v['auto']:6.2f}{ratio(v['auto'])}")
    print(f"  fer       detect_emotions {fer_ms:.2f}" if fer_ms else "  fer: not installed, no comparison", flush=True)



def video_rows(this, base, args, report, tmp) -> None:
    """``ferkit video`` as a user runs it: the whole command."""
    from video_speed import make_clip

    report["video"] = {}
    print("\nferkit video clip.mp4 --jsonl --out (640x480, 30 fps): frames/s of its loop and of the whole command "
          "(frames / wall time, start-up included)")
    for n in (1, 3):
        clip = make_clip(tmp / f"clip{n}.mp4", args.seconds, n)
        frames = int(args.seconds * 30)
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for c in (this, base):
                wall, err, rss = c.cli("video", str(clip), "--jsonl", str(tmp / "t.jsonl"), "--out", str(tmp / "a.mp4"))
                fps = video_fps(err)
                if c.label not in best or fps > best[c.label]["fps"]:
                    best[c.label] = {"fps": fps, "wall_s": wall, "command_fps": frames / wall, "rss_mib": rss}
        _, err, _ = this.cli("video", str(clip), "--jsonl", str(tmp / "t.jsonl"), "--out", str(tmp / "a.mp4"), "--profile")
        profile = {line.split()[0]: float(line.split()[1]) for line in err.splitlines()
                   if len(line.split()) >= 3 and line.split()[0] in ("decode", "scene", "detect", "classify", "draw",
                                                                      "encode", "write", "other")}
        _, err, _ = this.cli("video", str(clip), "--jsonl", str(tmp / "t.jsonl"), "--out", str(tmp / "a.mp4"),
                             "--detect-every", "3", "--classify-every", "5")
        cheap = video_fps(err)
        report["video"][f"{n}_faces"] = {**best, "profile_ms_per_frame": profile, "this_detect3_classify5_fps": cheap}
        print(f"  {n} face(s), {frames} frames: this {best['this']['fps']:.1f} frames/s in its loop, "
              f"{best['this']['command_fps']:.1f} over the whole command ({best['this']['wall_s']:.2f} s); baseline "
              f"{best['baseline']['fps']:.1f}, {best['baseline']['command_fps']:.1f} ({best['baseline']['wall_s']:.2f} s)"
              f": {best['this']['command_fps'] / best['baseline']['command_fps']:.2f}x; this with --detect-every 3 "
              f"--classify-every 5: {cheap:.1f} frames/s in its loop", flush=True)
        print("     this --profile, ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in profile.items()), flush=True)
    for minutes in args.rss_minutes:
        clip = make_clip(tmp / "long.mp4", minutes * 60, 1)
        wall, err, rss = this.cli("video", str(clip), "--jsonl", str(tmp / "t.jsonl"), "--out", str(tmp / "a.mp4"))
        report["video"][f"rss_{minutes:g}_min"] = {"fps": video_fps(err), "wall_s": wall, "rss_mib": rss}
        print(f"  {minutes:g}-minute clip, this: {video_fps(err):.1f} frames/s, peak RSS {rss:.0f} MiB", flush=True)
        clip.unlink()



def predict_rows(this, base, args, report, tmp) -> None:
    """``ferkit predict`` over a folder, the records checked."""
    from ferkit.runtime.detect import iou

    n_photos = sum(1 for p in args.photos.iterdir() if p.is_file())
    runs = {}
    for label, c, extra in (("baseline", base, []), ("this", this, []),
                            ("this, baseline's model and detector", this, ["--model", args.baseline_model,
                                                                         "--detector", args.baseline_detector])):
        out = tmp / f"{len(runs)}.jsonl"
        wall, err, rss = c.cli("predict", str(args.photos), "--jsonl", str(out), "--no-progress", *extra)
        runs[label] = {"wall_s": wall, "photos_per_s": n_photos / wall, "rss_mib": rss, "file": out}
    b, t, same = (records(runs[k]["file"]) for k in runs)
    identical = b == same
    found = {k: sum(len(r["faces"]) for r in recs) for k, recs in (("baseline", b), ("this", t))}
    matched = agree = 0
    for rb, rt in zip(b, t):  # each baseline face matched to this default's best box (IoU >= 0.5)
        for x in rb["faces"]:
            best = max(rt["faces"], key=lambda y: iou(x["box"], y["box"]), default=None)
            if best is not None and iou(x["box"], best["box"]) >= 0.5:
                matched += 1
                agree += x["emotion"] == best["emotion"]
    report["predict"] = {"photos": n_photos, "faces": found,
                         **{k: {kk: vv for kk, vv in v.items() if kk != "file"} for k, v in runs.items()},
                         "records_identical_with_baselines_model_and_detector": identical,
                         "baseline_faces_matched_by_default": matched / max(1, found["baseline"]),
                         "emotion_agreement_on_matched": agree / max(1, matched)}
    print(f"\nferkit predict FOLDER --jsonl ({n_photos} photos), whole command; faces found: baseline "
          f"{found['baseline']}, this {found['this']}")
    for k, v in runs.items():
        print(f"  {k:38s} {v['wall_s']:7.1f} s  {v['photos_per_s']:6.1f} photos/s  "
              f"{v['photos_per_s'] / runs['baseline']['photos_per_s']:.2f}x baseline")
    print(f"  records of this checkout with --model {args.baseline_model} --detector {args.baseline_detector} "
          f"identical to the baseline's: {identical}")
    print(f"  this default against the baseline: {matched / max(1, found['baseline']) * 100:.2f}% of the "
          f"baseline's faces found again (IoU >= 0.5), the same emotion on {agree / max(1, matched) * 100:.2f}% "
          "of them")


if __name__ == "__main__":
    main()
