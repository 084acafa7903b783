"""Several models side by side, in one run, on FER2013 PublicTest and on real photos (ExpW dev, CK+).

Every model decision is judged on both kinds of data at once. Faces in the photo sets are detected, matched
and cropped once (``ferkit.photos.find_faces``, exactly as ``ferkit predict`` crops them), then every model
classifies the same crops. Each model is a shipped name, a run's ``model.safetensors`` (PyTorch, fp32) or an
``.onnx`` file, optionally labelled ``LABEL=MODEL``; each applies its own declared preprocessing and its own
flip-TTA choice, unless the model ends in ``@tta`` or ``@notta`` (e.g. ``fer-m-tta=fer-m@tta``).

    python benchmarks/compare_models.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        --photos ../shared/data/expw_dev --photos ../shared/data/ckplus_peak \\
        fer-m none=runs/pp-none/model.safetensors eq=runs/pp-equalize_hist/model.safetensors --json out.json

Columns: PublicTest accuracy with FER2013 labels (and with the FER+ majority where ``fer2013new.csv`` lies
beside the data), then per photo set the end-to-end accuracy (a labelled face not found counts as wrong),
the classifier alone on the faces found, and the lowest per-class recall. ``--per-class`` adds the recall
table of every photo set.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from ferkit.evaluate import evaluate_model
from ferkit.labels import EMOTIONS


def cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
    except (OSError, IndexError):
        return platform.processor() or "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags.split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="[LABEL=]MODEL: shipped name, .safetensors or .onnx")
    ap.add_argument("--data", type=Path, help="FER2013 file (PublicTest is scored)")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--photos", type=Path, action="append", default=[], help="photo set folder (repeatable)")
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--per-class", action="store_true", help="print per-class recall on every photo set")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from ferkit.data import ferplus_path, load_fer2013
    from ferkit.photos import evaluate_photos, find_faces

    models = [(m.split("=", 1) if "=" in m else (m, m)) for m in args.models]
    data = load_fer2013(args.data) if args.data else None
    has_ferplus = data is not None and ferplus_path(data).exists()
    found_sets = {}
    for root in args.photos:
        t0 = time.perf_counter()
        found_sets[root.name] = find_faces(root, max_side=args.max_side)
        fs = found_sets[root.name]
        print(f"{root.name}: {int(fs.found.sum())} / {len(fs.labels)} labelled faces found "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results = {"cpu": cpu_flags(), "machine": platform.machine(), "models": {}}
    for label, model in models:
        row = {"model": model}
        model, _, view = model.partition("@")
        tta = {"": None, "tta": True, "notta": False}[view]
        if data is not None:
            row[args.split] = evaluate_model(model, data, args.split, tta=tta)
            if has_ferplus:
                row[f"{args.split} (FER+ majority)"] = evaluate_model(model, data, args.split, labels="ferplus-majority",
                                                                      tta=tta)
        for name, fs in found_sets.items():
            row[name] = evaluate_photos(fs, model, tta=tta)
        results["models"][label] = row
        print(f"  scored {label}", flush=True)

    head = f"{'model':22s}"
    if data is not None:
        head += f"{args.split:>12s}" + (f"{'FER+ maj.':>11s}" if has_ferplus else "")
    for name in found_sets:
        head += f"{name + ' e2e':>16s}{'found-only':>12s}{'min recall':>12s}"
    print("\n" + head)
    for label, row in results["models"].items():
        line = f"{label:22s}"
        if data is not None:
            line += f"{row[args.split]['accuracy'] * 100:11.2f}%"
            if has_ferplus:
                line += f"{row[f'{args.split} (FER+ majority)']['accuracy'] * 100:10.2f}%"
        for name in found_sets:
            r = row[name]
            recalls = [r["per_class"][e]["recall"] for e in EMOTIONS if r["per_class"][e]["support"]]
            line += f"{r['accuracy'] * 100:15.2f}%{r['found_accuracy'] * 100:11.2f}%{min(recalls) * 100:11.1f}%"
        print(line)
    if args.per_class:
        for name in found_sets:
            print(f"\n{name}: recall per class (end to end)")
            print(f"{'model':22s}" + "".join(f"{e[:8]:>9s}" for e in EMOTIONS))
            for label, row in results["models"].items():
                pc = row[name]["per_class"]
                print(f"{label:22s}" + "".join(f"{pc[e]['recall'] * 100:8.1f}%" if pc[e]["support"] else f"{'-':>9s}"
                                               for e in EMOTIONS))
    print(f"\nCPU flags: {results['cpu']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
