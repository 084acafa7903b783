"""Data-parallel training speed on this machine: images/s of `ferkit train` with 1 process (all cores) and with
N processes (`--nproc N`, DistributedDataParallel over gloo, cores shared out), on the same subset of FER2013
Training, the same model and per-process batch, in one run. On 2 cores this measures the overhead of the
processes and the gradient all-reduce, not a speed-up: the cores are the same.

    python benchmarks/ddp_speed.py --data ../shared/data/fer2013/fer2013.csv.gz --json docs/results/ddp-speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from compare_models import cpu_flags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="vgg-s")
    ap.add_argument("--faces", type=int, default=8000, help="Training faces to use")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ferkit.data.fer2013 import FerData, load_fer2013, save_npz
    from ferkit.train import cpu_supports_bf16, launch, make_config, train

    data = load_fer2013(args.data)
    train_rows = np.flatnonzero(data.usage == "Training")[: args.faces]
    test_rows = np.flatnonzero(data.usage == "PublicTest")[:200]
    keep = np.concatenate([train_rows, test_rows])
    report = {"cpu": cpu_flags(), "cores": os.cpu_count(), "bf16": cpu_supports_bf16(), "model": args.model,
              "faces": len(train_rows), "batch_per_process": args.batch_size, "device": args.device, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        subset = save_npz(FerData(data.images[keep], data.labels[keep], data.usage[keep], str(args.data)),
                          Path(tmp) / "subset.npz")
        for n in args.nproc:
            cfg = make_config("fast", data=str(subset), out=str(Path(tmp) / f"run-{n}"), model=args.model,
                              epochs=args.epochs, batch_size=args.batch_size, device=args.device)
            results = train(cfg, progress=False, log=lambda _m: None) if n == 1 else launch(cfg, n)
            rows = [json.loads(x) for x in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
            speed = float(np.median([r["images_per_s"] for r in rows[1:] or rows]))
            report["runs"][str(n)] = {"images_per_s": speed, "train_minutes": results["train_minutes"]}
            print(f"{n} process(es): {speed:.0f} images/s (median over epochs {'2+' if len(rows) > 1 else '1'})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
