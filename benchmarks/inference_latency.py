"""Inference latency per face and throughput of shipped models on onnxruntime, side by side.

Each model runs exactly as `ferkit classify` runs it (ferkit.runtime.classifier.Classifier: preprocessing, the
fitted temperature), first with its shipped flip-TTA setting, then with the other one. Latency: one face per call,
median over many calls; throughput: batches of 64. Models are interleaved round-robin, so machine noise
hits all alike; ratios are against the first model (default: the paper's network, `seed`).
``--families`` adds untrained networks of registered families (latency does not depend on the weights;
needs PyTorch to export them). Usage:
    python benchmarks/inference_latency.py [--models seed fer-m] [--families vgg-s vgg-l] [--threads 1] [--json OUT]
An ensemble (e.g. the default `fer-ens`) is timed as a whole: every member, each with its own TTA.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ferkit.runtime.classifier import Classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=None, help="shipped names or .onnx files (default: seed + default)")
    ap.add_argument("--families", nargs="*", default=[], help="registered families to export untrained and time")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_models import cpu_flags

    from ferkit.weights import DEFAULT_MODEL

    names = args.models or ["seed", DEFAULT_MODEL]
    sources = {n: n for n in dict.fromkeys(names)}  # display name -> shipped name or .onnx path
    if args.families:
        import tempfile

        from ferkit.models import create_model
        from ferkit.runtime.onnx_io import export_onnx

        tmp = tempfile.mkdtemp()
        meta = {**Classifier(names[0]).metadata, "tta": False, "temperature": 1.0}
        for family in args.families:
            path = export_onnx(create_model(family).eval(), f"{tmp}/{family}.onnx", {**meta, "arch": family})
            sources[f"{family}*"] = str(path)
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, 48, 48), dtype=np.uint8)
    batch = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)
    variants = {}
    for n, source in sources.items():
        default = Classifier(source, threads=args.threads)
        variants[(n, default.tta)] = default  # as shipped first, then the other TTA setting: what TTA costs
        variants[(n, not default.tta)] = Classifier(source, threads=args.threads, tta=not default.tta)
    for clf in variants.values():
        for _ in range(20):
            clf.predict_proba(one)
        clf.predict_proba(batch)
    lat = {k: [] for k in variants}
    thr = {k: [] for k in variants}
    for _ in range(args.rounds):
        for key, clf in variants.items():
            ts = []
            for _ in range(args.calls // args.rounds):
                t0 = time.perf_counter()
                clf.predict_proba(one)
                ts.append(time.perf_counter() - t0)
            lat[key].extend(ts)
            t0 = time.perf_counter()
            clf.predict_proba(batch)
            thr[key].append(len(batch) / (time.perf_counter() - t0))
    print(f"# onnxruntime, {args.threads} thread(s), {platform.machine()}, CPU flags: {cpu_flags()}")
    base_key = next(iter(variants))
    base = np.median(lat[base_key])
    print(f"{'model':10s} {'flip TTA':>8s} {'ms/face':>8s} {'p90 ms':>7s} {'faces/s @64':>12s} {'speed-up vs ' + base_key[0]:>16s}")
    for key in variants:
        med = np.median(lat[key])
        print(f"{key[0]:10s} {str(key[1]):>8s} {med * 1000:8.2f} {np.percentile(lat[key], 90) * 1000:7.2f} "
              f"{max(thr[key]):12.0f} {base / med:15.2f}x")
    if args.families:
        print("* untrained network of the family, exported like a shipped model")
    if args.json:
        rows = [{"model": k[0], "tta": k[1], "ms_per_face_median": float(np.median(lat[k]) * 1000),
                 "ms_per_face_p90": float(np.percentile(lat[k], 90) * 1000), "faces_per_s_batch64": float(max(thr[k]))}
                for k in variants]
        args.json.write_text(json.dumps({"threads": args.threads, "cpu": cpu_flags(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
