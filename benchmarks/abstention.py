"""Know when not to trust an answer: coverage vs accuracy of ``--min-confidence`` on PublicTest and real photos.

A face whose top calibrated probability is under the threshold is answered ``uncertain`` (``ferkit predict
--min-confidence T``). For each threshold this prints the share of faces still answered (coverage) and the
accuracy on those, on FER2013 PublicTest and on the faces the detector found in each photo set, and draws
accuracy against coverage for every threshold.

    python benchmarks/abstention.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        --photos ../shared/data/expw_dev --json docs/results/abstention.json --plot docs/figures/abstention.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

THRESHOLDS = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def curve(probs: np.ndarray, labels: np.ndarray) -> dict:
    top, right = probs.max(1), probs.argmax(1) == labels
    table = []
    for t in THRESHOLDS:
        kept = top >= t
        table.append({"threshold": t, "coverage": float(kept.mean()),
                      "accuracy": float(right[kept].mean()) if kept.any() else None})
    order = np.argsort(-top)  # answer the most confident first: every possible threshold
    answered = np.arange(1, len(order) + 1)
    return {"faces": int(len(labels)), "table": table,
            "coverage": (answered / len(order)).tolist()[::max(1, len(order) // 200)],
            "accuracy": (np.cumsum(right[order]) / answered).tolist()[::max(1, len(order) // 200)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model (default: the shipped default)")
    ap.add_argument("--data", type=Path, help="FER2013 file (PublicTest is scored)")
    ap.add_argument("--photos", type=Path, action="append", default=[])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()

    from ferkit.runtime.classifier import Classifier

    clf = Classifier(args.model)
    sets = {}
    if args.data:
        from ferkit.data.fer2013 import load_fer2013

        test = load_fer2013(args.data).split("PublicTest")
        sets["PublicTest"] = curve(clf.predict_proba(test.images), test.labels)
    for root in args.photos:
        from ferkit.adapt import collect_faces

        faces = collect_faces(root, progress=True)
        sets[root.name] = curve(clf.predict_proba(faces.crops), faces.labels)
        sets[root.name]["not_found"] = len(faces.skipped)
    name = clf.metadata.get("name", str(args.model))
    print(f"model {name}: coverage / accuracy on the faces answered")
    print("threshold | " + " | ".join(sets))
    for i, t in enumerate(THRESHOLDS):
        cells = [f"{s['table'][i]['coverage'] * 100:5.1f}% / {s['table'][i]['accuracy'] * 100:5.1f}%"
                 if s["table"][i]["accuracy"] is not None else "none answered" for s in sets.values()]
        print(f"{t:9.1f} | " + " | ".join(cells))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for label, s in sets.items():
            ax.plot(np.array(s["coverage"]) * 100, np.array(s["accuracy"]) * 100, label=f"{label} ({s['faces']} faces)")
            for row in s["table"]:
                if row["threshold"] in (0.5, 0.7) and row["accuracy"] is not None:
                    ax.annotate(f"{row['threshold']}", (row["coverage"] * 100, row["accuracy"] * 100), fontsize=8)
                    ax.plot(row["coverage"] * 100, row["accuracy"] * 100, "k.", ms=4)
        ax.set_xlabel("coverage: faces answered (%)")
        ax.set_ylabel("accuracy on the faces answered (%)")
        ax.set_title(f"--min-confidence: {name}")
        ax.grid(alpha=0.3)
        ax.legend()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(args.plot)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": name, "sets": sets}, indent=2) + "\n")


if __name__ == "__main__":
    main()
