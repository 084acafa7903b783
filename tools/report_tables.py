"""Print the Markdown tables of the model card from `ferkit evaluate --json` reports (no hand copying).

    python tools/report_tables.py docs/results/fer-s-shipped.json [docs/results/fer-s-expw.json ...]
    python tools/report_tables.py 'docs/results/default-fer-ens.json#fer-ens#expw_dev'   # one report of a
        benchmarks/compare_models.py result: FILE#MODEL#SET
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def tables(report: dict) -> str:
    lines = [f"**{report.get('model')}** on {report.get('data')} ({report.get('split')}, {report['n']} faces"
             + (f", {report['found']} found" if "found" in report else "") + f"): accuracy "
             f"{report['accuracy'] * 100:.2f}%, top-2 {report['top2_accuracy'] * 100:.2f}%, macro F1 "
             f"{report['macro_f1']:.3f}" + (f", ECE {report['ece'] * 100:.2f}%" if report.get("ece") is not None else ""),
             "", "| class | recall | precision | faces |", "|---|---|---|---|"]
    for e in EMOTIONS:
        m = report["per_class"][e]
        if m["support"]:
            lines.append(f"| {e} | {m['recall'] * 100:.1f}% | {m['precision'] * 100:.1f}% | {m['support']} |")
    missed = report.get("not_found")
    lines += ["", "| true \\ predicted | " + " | ".join(EMOTIONS) + (" | not found |" if missed else " |"),
              "|---" * (len(EMOTIONS) + 1 + bool(missed)) + "|"]
    for e, row in zip(EMOTIONS, report["confusion"]):
        if report["per_class"][e]["support"]:
            cells = [f"**{v}**" if j == EMOTIONS.index(e) else str(v) for j, v in enumerate(row)]
            lines.append(f"| {e} | " + " | ".join(cells) + (f" | {missed[e]} |" if missed else " |"))
    return "\n".join(lines)


def load(spec: str) -> dict:
    path, *keys = spec.split("#")
    report = json.loads(Path(path).read_text())
    if keys:  # compare_models.py's layout: {"models": {MODEL: {SET: report}}}
        report = report["models"][keys[0]][keys[1]]
    return report


if __name__ == "__main__":
    for spec in sys.argv[1:]:
        print(tables(load(spec)) + "\n")
