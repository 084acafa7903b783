"""Recipe ablation and candidate runs: many short trainings, each technique switched off or on alone.

Every run is ``ferkit.train.train`` on a named config (a preset plus overrides), so what is measured is
exactly what ``ferkit train`` does. Runs go in worker processes, several at a time (``--jobs``): on a GPU
that fills the card; on the 2-core CPU keep ``--jobs 1`` so the timings mean something.

    python benchmarks/ablation.py run --data fer2013.csv.gz --out runs/ablation --set ablation --seeds 0 1
    python benchmarks/ablation.py table runs/ablation > docs/results/ablation.md

Each run folder keeps ``metrics.jsonl`` (PublicTest accuracy with and without flip TTA per epoch, logged,
never used to select) and ``results.json``. The table reports the mean over seeds of the last epoch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
import traceback
from pathlib import Path

SHORT = 15  # epochs of the fixed short schedule the ablation uses

# name -> (description, overrides of the `fast` preset). Each ablation row changes one thing from `base`.
ABLATION: dict[str, tuple[str, dict]] = {
    "base": ("fast preset: vgg-s, SGD one-cycle, LS 0.1, flip/rotate/zoom/shift/erase", {}),
    "no-label-smoothing": ("label smoothing 0.1 -> 0", {"label_smoothing": 0.0}),
    "no-erasing": ("random erasing off", {"aug_erase": 0.0}),
    "no-rotate-zoom": ("rotation and zoom off (flip + shift only)", {"aug_rotate": 0.0, "aug_scale": 0.0}),
    "no-augment": ("no augmentation at all", {"augment": False}),
    "mixup": ("+ mixup alpha 0.2", {"mixup": 0.2}),
    "ema": ("+ EMA of the weights (0.999)", {"ema": 0.999}),
    "class-weights": ("+ sqrt-inverse class weights", {"class_weight": "sqrt-inverse"}),
}

# Full-length candidates for the shipped model: epochs sized to fit 3 h on the 2-core CPU
# (benchmarks/arch_speed.py: vgg-s ~32 s, vgg-m ~80 s, resnet-s ~100 s per epoch there).
CANDIDATES: dict[str, tuple[str, dict]] = {
    "vgg-s-200": ("vgg-s, 200 epochs", {"epochs": 200}),
    "vgg-s-200-mixup": ("vgg-s, 200 epochs, mixup 0.2", {"epochs": 200, "mixup": 0.2}),
    "vgg-m-100-mixup": ("vgg-m, 100 epochs, mixup 0.2", {"model": "vgg-m", "epochs": 100, "mixup": 0.2}),
    "resnet-s-80-mixup": ("resnet-s, 80 epochs, mixup 0.2", {"model": "resnet-s", "epochs": 80, "mixup": 0.2}),
}
# A 60-epoch sweep (about 35 min of CPU for vgg-s): lighter augmentation and width, after the ablation
# showed lighter augmentation winning at 15 epochs and the 3-hour candidates no better than 60 epochs.
RECIPE60: dict[str, tuple[str, dict]] = {
    "s60": ("vgg-s, 60 epochs", {"epochs": 60}),
    "s60-noerase": ("vgg-s, 60 epochs, no erasing", {"epochs": 60, "aug_erase": 0.0}),
    "s60-light": ("vgg-s, 60 epochs, flip + shift only", {"epochs": 60, "aug_erase": 0.0, "aug_rotate": 0.0,
                                                         "aug_scale": 0.0}),
    "s60-noerase-ls0": ("vgg-s, 60 epochs, no erasing, no label smoothing", {"epochs": 60, "aug_erase": 0.0,
                                                                            "label_smoothing": 0.0}),
    "m60": ("vgg-m, 60 epochs", {"model": "vgg-m", "epochs": 60}),
    "m60-noerase": ("vgg-m, 60 epochs, no erasing", {"model": "vgg-m", "epochs": 60, "aug_erase": 0.0}),
    "r60": ("resnet-s, 60 epochs", {"model": "resnet-s", "epochs": 60}),
    "l40": ("vgg-l, 40 epochs", {"model": "vgg-l", "epochs": 40}),
}
SETS = {"ablation": ABLATION, "candidates": CANDIDATES, "recipe60": RECIPE60}


def _run_one(args: tuple) -> tuple[str, str]:
    name, seed, overrides, data, out, device, threads, epochs = args
    import torch

    from ferkit.train import make_config, train

    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    run_dir = Path(out) / f"{name}-s{seed}"
    values = {"model": "vgg-s", "epochs": epochs, **overrides}
    cfg = make_config("fast", data=data, out=str(run_dir), seed=seed, device=device,
                      command=f"benchmarks/ablation.py {name} seed {seed}", **values)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.txt", "w") as log_file:
        def log(msg: str) -> None:
            log_file.write(msg + "\n")
            log_file.flush()
        try:
            train(cfg, resume=True, progress=False, log=log)
            return f"{name}-s{seed}", "ok"
        except Exception:
            log(traceback.format_exc())
            return f"{name}-s{seed}", "failed: " + traceback.format_exc().splitlines()[-1]


def run(a: argparse.Namespace) -> None:
    table = SETS[a.set]
    names = a.only or list(table)
    jobs = [(n, s, table[n][1], a.data, a.out, a.device, a.threads, a.epochs) for n in names for s in a.seeds]
    start = time.time()
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs, maxtasksperchild=1) as pool:
        for tag, status in pool.imap_unordered(_run_one, jobs):
            print(f"{time.time() - start:7.1f}s  {tag}: {status}", flush=True)


def _last(run_dir: Path) -> dict | None:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[-1] if rows else None


def table(a: argparse.Namespace) -> None:
    root = Path(a.out)
    groups: dict[str, list[tuple[dict, dict]]] = {}
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = run_dir.name.rsplit("-s", 1)[0]
        row = _last(run_dir)
        cfg = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
        if row is not None:
            groups.setdefault(name, []).append((row, cfg))
    known = {**ABLATION, **CANDIDATES, **RECIPE60}
    order = [n for n in known if n in groups] + sorted(set(groups) - set(known))
    print("| config | change | seeds | epochs | PublicTest, flip TTA | PublicTest, plain | val | train acc* |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for name in order:
        rows = groups[name]
        done = [r for r, c in rows if r["epoch"] == c.get("epochs")]
        use = done or [r for r, _ in rows]
        tta = [r["test_acc"] * 100 for r in use]
        plain = [r.get("test_acc_plain", float("nan")) * 100 for r in use]
        val = [r["val_acc"] * 100 for r in use]
        tr = [r["train_acc"] * 100 for r in use]
        mean = statistics.mean(tta)
        if name == "base":
            base = mean
        delta = f" ({mean - base:+.2f})" if base is not None and name != "base" else ""
        spread = f" ± {statistics.stdev(tta):.2f}" if len(tta) > 1 else ""
        epochs = ",".join(sorted({str(r["epoch"]) for r in use})) + ("" if done else " (unfinished)")
        print(f"| {name} | {known.get(name, ('', {}))[0]} | {len(use)} | {epochs} | {mean:.2f}{spread}{delta} | "
              f"{statistics.mean(plain):.2f} | {statistics.mean(val):.2f} | {statistics.mean(tr):.2f} |")
    print("\n*train acc: running accuracy on augmented (and, with mixup, mixed) batches of the last epoch.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the runs of a set")
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--set", choices=list(SETS), default="ablation")
    r.add_argument("--only", nargs="*", help="names of the set to run (default: all)")
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    r.add_argument("--epochs", type=int, default=SHORT, help="epochs unless the config sets its own")
    r.add_argument("--device", default="cpu")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    t = sub.add_parser("table", help="summarise a folder of runs as a markdown table")
    t.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "run":
        if a.threads == 0:
            import os

            a.threads = os.cpu_count() or 1
        run(a)
    else:
        table(a)


if __name__ == "__main__":
    sys.exit(main())
