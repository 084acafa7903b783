"""LocallyConnected2d: the batched einsum vs the per-position definition, forward and forward+backward.

Runs both on the seed network's two locally-connected layers (batch 200), interleaved in one process.
Usage: python benchmarks/locally_connected.py [--batch 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from ferkit.models.layers import LocallyConnected2d, locally_connected_reference


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"# batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, best of {args.repeats}")
    print(f"{'layer':24s} {'pass':10s} {'naive ms':>9s} {'fast ms':>8s} {'speed-up':>9s}")
    for name, (cin, cout, size) in {"local1 60->100 @12x12": (60, 100, 12), "local2 100->100 @10x10": (100, 100, 10)}.items():
        layer = LocallyConnected2d(cin, cout, (size, size), 3)
        x = torch.randn(args.batch, cin, size, size, requires_grad=True)
        for label, backward in (("forward", False), ("fwd+bwd", True)):
            def run(impl):
                def go():
                    with torch.set_grad_enabled(backward):
                        out = impl(x)
                        if backward:
                            out.sum().backward()
                return go
            naive = timed(run(lambda t: locally_connected_reference(t, layer)), args.repeats)
            fast = timed(run(layer), args.repeats)
            print(f"{name:24s} {label:10s} {naive * 1e3:9.1f} {fast * 1e3:8.1f} {naive / fast:8.1f}x")


if __name__ == "__main__":
    main()
