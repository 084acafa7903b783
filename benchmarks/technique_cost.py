"""What each recipe technique costs on this CPU: milliseconds per training batch, side by side.

One vgg-s (or --model) training step at batch 128 with bf16 autocast (where native) and channels_last,
with each technique added alone to a bare step, interleaved round-robin so machine noise hits all alike.
Evaluation costs are per 1,000 faces. This is the time column of docs/ablation.md.
Usage: python benchmarks/technique_cost.py [--model vgg-s] [--rounds 3] [--steps 5]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from ferkit.data.augment import AugmentConfig, augment, mixup
from ferkit.models import create_model
from ferkit.train import cpu_supports_bf16, predict_proba


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vgg-s")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    bf16 = cpu_supports_bf16()
    model = create_model(args.model).train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    images = torch.randint(0, 256, (args.batch, 48, 48), dtype=torch.uint8)
    y = torch.randint(0, 7, (args.batch,))
    full = AugmentConfig()
    affine_only = AugmentConfig(erase_p=0.0)
    erase_only = AugmentConfig(flip=False, rotate_deg=0.0, scale=0.0, translate=0.0)
    weight = torch.rand(7) + 0.5

    def step(aug=None, mix=False, use_ema=False, smoothing=0.1, w=None):
        g = torch.Generator().manual_seed(0)
        x = (images.float().unsqueeze(1) / 255 - 0.5) / 0.25
        if aug is not None:
            x = augment(x, aug, g)
        target = y
        if mix:
            x, target = mixup(x, y, 0.2, g, 7)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), target, weight=w, label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if use_ema:
            ema.update_parameters(model)

    faces = torch.randint(0, 256, (1000, 48, 48), dtype=torch.uint8).numpy()
    variants = {
        "bare step (no augmentation, LS 0.1)": lambda: step(),
        "+ flip/rotate/zoom/shift (one grid_sample)": lambda: step(affine_only),
        "+ random erasing": lambda: step(erase_only),
        "+ full augmentation (fast preset)": lambda: step(full),
        "+ mixup": lambda: step(mix=True),
        "+ EMA update": lambda: step(use_ema=True),
        "+ class weights": lambda: step(w=weight),
        "no label smoothing": lambda: step(smoothing=0.0),
    }
    evals = {
        "evaluate 1,000 faces, plain": lambda: predict_proba(model, faces, 0.5, 0.25, bf16=bf16),
        "evaluate 1,000 faces, flip TTA": lambda: predict_proba(model, faces, 0.5, 0.25, bf16=bf16, tta=True),
    }
    for fn in list(variants.values()) + list(evals.values()):
        fn()  # warm-up: oneDNN picks its kernels
    times = {k: [] for k in [*variants, *evals]}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - start) / args.steps)
        for name, fn in evals.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    print(f"# {args.model}, batch {args.batch}, bf16 autocast: {bf16}, channels_last, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    base = min(times["bare step (no augmentation, LS 0.1)"])
    print(f"{'technique':45s} {'ms':>8s} {'vs bare step':>13s}")
    for name, ts in times.items():
        best = min(ts)
        rel = f"{best / base:12.2f}x" if name in variants else ""
        print(f"{name:45s} {best * 1000:8.1f} {rel}")
    model.eval()


if __name__ == "__main__":
    main()
