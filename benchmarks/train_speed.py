"""Training throughput (images/s) of a model on this CPU: fp32 vs bf16 autocast, NCHW vs channels_last.

All variants run side by side in one process, interleaved round-robin so machine noise hits them alike.
Usage: python benchmarks/train_speed.py [--model seed] [--batch 200] [--steps 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from ferkit.models import create_model
from ferkit.train import cpu_supports_bf16


def step_time(model, x, y, opt, bf16: bool, steps: int) -> float:
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="seed")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    variants = [(bf16, cl) for bf16 in (False, True) for cl in (False, True)]
    if not cpu_supports_bf16():
        variants = [v for v in variants if not v[0]]
    setups = {}
    for bf16, cl in variants:
        model = create_model(args.model).train()
        fmt = torch.channels_last if cl else torch.contiguous_format
        model = model.to(memory_format=fmt)
        x = torch.randn(args.batch, 1, 48, 48).to(memory_format=fmt)
        y = torch.randint(0, 7, (args.batch,))
        opt = torch.optim.Adam(model.parameters())
        step_time(model, x, y, opt, bf16, 2)  # warm-up: oneDNN picks its kernels
        setups[(bf16, cl)] = (model, x, y, opt)
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            times[v].append(step_time(*setups[v], v[0], args.steps))
    print(f"# {args.model}, batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, bf16 native: {cpu_supports_bf16()}")
    base = args.batch / min(times[(False, False)])
    print(f"{'precision':10s} {'layout':14s} {'images/s':>9s} {'vs fp32 NCHW':>13s}")
    for (bf16, cl), ts in times.items():
        ips = args.batch / min(ts)
        print(f"{'bf16' if bf16 else 'fp32':10s} {'channels_last' if cl else 'NCHW':14s} {ips:9.0f} {ips / base:12.2f}x")


if __name__ == "__main__":
    main()
