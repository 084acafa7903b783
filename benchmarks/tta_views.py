"""How much test-time augmentation buys a trained model: PublicTest accuracy with 1, 2, 6 and 10 views.

Views: the face; its mirror image; and shifts of both by 2 px (left/right, or left/right/up/down). Each
extra view costs one more forward pass per face. Softmax probabilities (with the model's temperature) are
averaged over the views. Usage:
    python benchmarks/tta_views.py --data fer2013.csv.gz --weights runs/X/model.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ferkit.data.fer2013 import load_fer2013
from ferkit.models import load_model
from ferkit.train import predict_logits, views_to_proba


def shift(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift uint8 faces (N, 48, 48) by (dx, dy) pixels, repeating the border."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)), mode="edge")
    return np.ascontiguousarray(padded[:, 2 - dy:2 - dy + 48, 2 - dx:2 - dx + 48])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--split", default="PublicTest")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = load_model(args.weights)
    meta = net.ferkit_meta
    norm, t = meta["normalization"], meta.get("temperature", 1.0)
    test = load_fer2013(args.data).split(args.split)
    views = {}
    for name, (dx, dy) in {"face": (0, 0), "left": (-2, 0), "right": (2, 0), "up": (0, -2), "down": (0, 2)}.items():
        both = predict_logits(net, shift(test.images, dx, dy), norm["mean"], norm["std"], tta=True)
        views[name], views[name + "+flip"] = both[0], both[1]
    sets = {"1 view (face)": ["face"], "2 views (face + mirror)": ["face", "face+flip"],
            "6 views (+ 2 px left/right shifts)": ["face", "face+flip", "left", "left+flip", "right", "right+flip"],
            "10 views (+ up/down shifts)": list(views)}
    print(f"# {args.weights}, {args.split} ({len(test)} faces), temperature {t:.3f}")
    print(f"{'views':40s} {'accuracy':>9s} {'forward passes/face':>20s}")
    for name, keys in sets.items():
        probs = views_to_proba(np.stack([views[k] for k in keys]), t)
        print(f"{name:40s} {(probs.argmax(1) == test.labels).mean() * 100:8.2f}% {len(keys):20d}")


if __name__ == "__main__":
    main()
