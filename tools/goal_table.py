"""Print issue 30's Markdown tables from one `benchmarks/compare_models.py --json` result (no hand copying): every
model's row on the developers' sets, and each goal against its measure for one model.

    python tools/goal_table.py docs/results/faceres.json --goals fer-faceres-int8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def pct(x) -> str:
    return "-" if x is None else f"{x * 100:.2f}"


def figures(row: dict) -> dict:
    """The measures issue 30 names, from one model's row (fractions; None where the run had no such set)."""
    raf = row.get("rafdb validation", {})
    aff = row.get("affectnet_subset validation", {})
    expw = row.get("expw_dev", {})
    return {
        "PublicTest": row.get("PublicTest", {}).get("accuracy"),
        "RAF-DB val framed": raf.get("framed", {}).get("accuracy"),
        "RAF-DB val crop": raf.get("crop", {}).get("accuracy"),
        "RAF-DB val e2e": raf.get("e2e", {}).get("accuracy"),
        "RAF-DB val ECE": raf.get("framed", {}).get("ece"),
        "AffectNet val": aff.get("framed", {}).get("accuracy"),
        "CK+": row.get("ckplus_peak", {}).get("accuracy"),
        "ExpW e2e": expw.get("accuracy"),
        "ExpW happy recall": expw.get("per_class", {}).get("happy", {}).get("recall"),
        "ExpW balanced w/o surprise": expw.get("balanced_without_surprise", balanced(expw)),
        "ms/face": row.get("ms_per_face"),
        "MB": row.get("mb"),
    }


def balanced(report: dict):
    """Mean recall over the classes present but surprise (compare_models records it; older results did not)."""
    recalls = [v["recall"] for e, v in report.get("per_class", {}).items() if e != "surprise" and v["support"]]
    return sum(recalls) / len(recalls) if recalls else None


GOALS = [("RAF-DB val framed", ">=", 0.88), ("RAF-DB val e2e", ">=", 0.86), ("AffectNet val", ">=", 0.65),
         ("CK+", ">=", 0.90), ("PublicTest", ">=", 0.68), ("ExpW happy recall", ">=", 0.80),
         ("ExpW balanced w/o surprise", ">=", 0.45), ("RAF-DB val ECE", "<=", 0.03), ("MB", "<=", 15.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--goals", help="the model whose goals to tabulate")
    args = ap.parse_args()
    res = json.loads(args.results.read_text())
    rows = {label: figures(row) for label, row in res["models"].items()}
    cols = ["PublicTest", "RAF-DB val framed", "RAF-DB val crop", "RAF-DB val e2e", "AffectNet val", "CK+",
            "ExpW e2e", "ExpW happy recall", "ExpW balanced w/o surprise", "RAF-DB val ECE"]
    print("| model | " + " | ".join(cols) + " | ms/face (1 core, network) | MB |")
    print("|---" * (len(cols) + 3) + "|")
    for label, f in rows.items():
        print(f"| `{label}` | " + " | ".join(pct(f[c]) for c in cols) + f" | {f['ms/face']:.2f} | {f['MB']:.1f} |")
    if args.goals:
        f = rows[args.goals]
        print(f"\n| goal ({args.goals}) | measured | met |\n|---|---|---|")
        for name, op, target in GOALS:
            v = f[name]
            shown = f"{v:.1f}" if name == "MB" else pct(v)
            goal = f"{target:g}" if name == "MB" else f"{target * 100:g}%"
            ok = v is not None and (v >= target if op == ">=" else v <= target)
            print(f"| {name} {op} {goal} | {shown} | {'yes' if ok else 'no'} |")
    print(f"\nCPU flags: {res.get('cpu')}; detector {res.get('detector')}")


if __name__ == "__main__":
    main()
