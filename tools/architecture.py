"""Draw docs/figures/architecture.png from the code: one band per layer of ferkit.architecture (lowest at the bottom),
its folders and modules in it, and under it how many imports go from it to each lower layer (read from the source as
tests/test_imports.py reads it; the arrows only show that imports run down).

Usage: python tools/architecture.py [--out docs/figures/architecture.png]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _contents(entry: str, graph: dict) -> str:
    """``runtime/: classifier, crop, ...`` for a folder, the module's own name for a top-level one."""
    from ferkit.architecture import layer_of

    own = layer_of(f"ferkit.{entry}")
    inside = sorted(m.split(".")[-1] for m in graph
                    if m.startswith(f"ferkit.{entry}.") and m.count(".") == 2 and layer_of(m) == own)
    if inside:
        return f"{entry}/: {', '.join(inside)}"
    if entry and (ROOT / "src" / "ferkit" / entry / "__init__.py").exists():
        return f"{entry}/"
    return entry or "ferkit (lazy exports)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "architecture.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from ferkit.architecture import LAYERS, layer_of
    from test_imports import import_graph

    graph = import_graph()
    rank = {m: layer_of(m) for m in graph}
    names = list(LAYERS)
    between = Counter((rank[m], rank[d]) for m, deps in graph.items() for d in deps if rank[d] != rank[m])
    fig, ax = plt.subplots(figsize=(12, 0.95 * len(names) + 0.6), dpi=110)
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.2, len(names) * 1.0)
    ax.axis("off")
    colours = plt.cm.Pastel2.colors
    for k, name in enumerate(names):
        y = k * 1.0
        ax.add_patch(FancyBboxPatch((2.2, y + 0.12), 9.6, 0.62, boxstyle="round,pad=0.02",
                                    facecolor=colours[k % len(colours)], edgecolor="#555555"))
        ax.text(0.1, y + 0.43, name, fontsize=11, fontweight="bold", va="center")
        import textwrap

        modules = "\n".join(textwrap.wrap("   ".join(_contents(entry, graph) for entry in LAYERS[name]), 130))
        ax.text(2.35, y + 0.43, modules, fontsize=7.5, va="center")
        targets = [f"{names[b]} {n}" for (a, b), n in sorted(between.items(), key=lambda kv: -kv[0][1]) if a == k]
        if k > 0:
            ax.add_patch(FancyArrowPatch((1.6, y + 0.1), (1.6, y - 0.28), arrowstyle="-|>", mutation_scale=12,
                                         color="#333333"))
            ax.text(2.35, y + 0.02, "imports into " + (", ".join(targets) or "no lower layer"), fontsize=7,
                    va="center", color="#444444")
    up = sum(n for (a, b), n in between.items() if b > a)
    fig.suptitle(f"ferkit's layers, lowest at the bottom: each imports only from its own layer or lower ones "
                 f"({up} imports upward)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
