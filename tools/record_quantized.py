"""Record a quantized model's measured accuracy, and its change from the fp32 model it was quantized from, in
its metadata and manifest entry, from one `benchmarks/compare_models.py --json` run that scored both.

    python benchmarks/compare_models.py --data D/fer2013/fer2013.csv.gz --photos D/expw_dev --photos D/ckplus_peak \\
        --crops D/rafdb --crops D/affectnet_subset --per-class fer-real fer-real-int8 --json docs/results/int8.json
    python tools/record_quantized.py docs/results/int8.json fer-real-int8

Exits 1 (recording nothing) when the quantized model loses more than --max-loss points (0.5, issue 25's rule)
on PublicTest or on ExpW dev end to end: such a model does not ship.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferkit.analysis.export import update_metadata
from ferkit.weights import WEIGHTS_DIR, read_manifest


def figures(row: dict) -> dict[str, float]:
    """The headline accuracies (0..1) of one compare_models row."""
    out = {"PublicTest": row["PublicTest"]["accuracy"]}
    for key, name in (("expw_dev", "expw_dev_e2e"), ("ckplus_peak", "ckplus_peak_e2e")):
        if key in row:
            out[name] = row[key]["accuracy"]
    for key, name in (("rafdb validation", "rafdb_validation"), ("affectnet_subset validation",
                                                                 "affectnet_subset_validation")):
        if key in row:
            out[name] = row[key]["framed"]["accuracy"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="compare_models --json output that scored both models")
    ap.add_argument("name", help="the quantized shipped model, e.g. fer-real-int8")
    ap.add_argument("--max-loss", type=float, default=0.5, help="points allowed on PublicTest and ExpW dev")
    args = ap.parse_args()
    entry = read_manifest()[args.name]["onnx"]
    base = entry["quantized_from"]
    results = json.loads(args.results.read_text())
    new, old = figures(results["models"][args.name]), figures(results["models"][base])
    change = {k: round((new[k] - old[k]) * 100, 2) for k in new if k in old}
    print(f"{args.name} vs {base} (points): " + ", ".join(f"{k} {v:+.2f}" for k, v in change.items()))
    losses = {k: -change[k] for k in ("PublicTest", "expw_dev_e2e") if k in change and -change[k] > args.max_loss}
    if losses:
        sys.exit(f"{args.name} loses more than {args.max_loss} points on " + ", ".join(losses) + ": it does not ship")
    note = (f"as shipped (calibrated, no TTA), measured beside {base} in one run ({args.results.as_posix()}, "
            f"CPU flags: {results.get('cpu', '?')}); photo sets end to end, crop folders' validation parts re-framed")
    update_metadata(args.name, {"accuracy": new, "accuracy_change_points": change, "accuracy_note": note},
                    drop=("measured",))
    manifest_path = WEIGHTS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[args.name]["onnx"]["accuracy_change_points"] = change
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
