"""Training throughput (images/s) of model families on this CPU, as ratios to the paper's network.

One full training step (augmentation excluded) per call: bf16 autocast where the CPU has it natively,
channels_last, Nesterov SGD. All models run side by side, interleaved round-robin, so machine noise hits
them alike. Usage: python benchmarks/arch_speed.py [--models seed vgg-s ...] [--batch 128]
"""

from __future__ import annotations

import argparse
import platform

import torch

from ferkit.models import create_model
from ferkit.train import cpu_supports_bf16
from train_speed import step_time  # the same timed training step (this folder is on sys.path when run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["seed", "vgg-s", "vgg-m", "vgg-l", "resnet-s", "resnet-m"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    bf16 = cpu_supports_bf16()
    setups = {}
    for name in args.models:
        model = create_model(name).train().to(memory_format=torch.channels_last)
        x = torch.randn(args.batch, 1, 48, 48).to(memory_format=torch.channels_last)
        y = torch.randint(0, 7, (args.batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        step_time(model, x, y, opt, bf16, 2)  # warm-up: oneDNN picks its kernels
        setups[name] = (model, x, y, opt)
    times = {name: [] for name in args.models}
    for _ in range(args.rounds):
        for name in args.models:
            times[name].append(step_time(*setups[name], bf16, args.steps))
    print(f"# batch {args.batch}, bf16 autocast: {bf16}, channels_last, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    base = args.batch / min(times[args.models[0]])
    print(f"{'model':10s} {'params':>10s} {'images/s':>9s} {'vs ' + args.models[0]:>10s} {'min/epoch*':>11s}")
    for name, ts in times.items():
        rate = args.batch / min(ts)
        params = sum(p.numel() for p in setups[name][0].parameters())
        print(f"{name:10s} {params:10,d} {rate:9.0f} {rate / base:9.2f}x {27262 / rate / 60:11.2f}")
    print("* one epoch of 95% of Training (27,262 images), training steps only")


if __name__ == "__main__":
    main()
