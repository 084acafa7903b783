"""Batched augmentation in tensor ops: a whole mini-batch at once, no per-image Python, no workers.

Input and output are float tensors (B, 1, H, W) on any device. Each transform draws its random numbers
on the CPU from the generator it is given, so a seeded run is reproducible and resumable, and the same
seed gives the same augmentation on a CPU and on a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True  # horizontal flip with probability 0.5
    rotate_deg: float = 10.0  # uniform in [-rotate_deg, rotate_deg]
    scale: float = 0.1  # zoom uniform in [1 - scale, 1 + scale]
    translate: float = 0.1  # shift uniform in [-translate, translate] of the image size
    erase_p: float = 0.5  # probability of one random-erasing rectangle per image
    erase_area: tuple[float, float] = (0.02, 0.2)  # erased share of the image
    photo_p: float = 0.0  # probability of each photo degradation per image (see photo_degrade; 0: off)
    colour_p: float = 0.0  # colour input only: probability of colour jitter per image (see colour_jitter; 0: off)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (high - low) + low


def random_affine(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Flip, rotation, zoom and shift in one grid_sample per batch (border pixels repeat)."""
    b = x.shape[0]
    angle = _uniform(b, -cfg.rotate_deg, cfg.rotate_deg, g) * (math.pi / 180)
    zoom = _uniform(b, 1 - cfg.scale, 1 + cfg.scale, g)
    shift = _uniform(2 * b, -cfg.translate, cfg.translate, g).view(b, 2) * 2  # grid units span 2
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(b)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Zero one random rectangle (aspect 0.3..3.3) in a share ``erase_p`` of the images."""
    b, _, h, w = x.shape
    area = _uniform(b, *cfg.erase_area, g) * h * w
    aspect = torch.exp(_uniform(b, math.log(0.3), math.log(1 / 0.3), g))
    eh = torch.sqrt(area * aspect).clamp(1, h).floor()
    ew = torch.sqrt(area / aspect).clamp(1, w).floor()
    top = (torch.rand(b, generator=g) * (h - eh + 1)).floor()
    left = (torch.rand(b, generator=g) * (w - ew + 1)).floor()
    on = torch.rand(b, generator=g) < cfg.erase_p
    top, left, eh, ew, on = (t.to(x.device) for t in (top, left, eh, ew, on))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    mask = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
            & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)) & on.view(b, 1, 1))
    return x.masked_fill(mask.unsqueeze(1), 0.0)


def photo_degrade(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """What a face cropped from someone's photo goes through and a FER2013 face did not: each of these, with
    probability ``photo_p`` per image, in this order:

    - Gaussian blur, sigma uniform in 0.4..1.4 px (an out-of-focus or motion-soft face; 5x5 kernel);
    - downscale-upscale by a factor uniform in 0.3..0.8 (one factor per batch: a small face scaled up to 48 px);
    - contrast x0.6..1.4 around the image's mean and brightness +-0.4 (in the normalised units the network
      sees, +-0.1 of the grey range at std 0.25): lighting;
    - Gaussian noise, sigma uniform in 0..0.2 normalised units: sensor noise and compression grain.

    Every operation is linear in the pixels, so it commutes with the normalisation the input already had.
    """
    b, _, h, w = x.shape

    def chosen() -> torch.Tensor:
        return (torch.rand(b, generator=g) < cfg.photo_p).view(b, 1, 1, 1).to(x.device)

    sigma = _uniform(b, 0.4, 1.4, g)
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(x.device, x.dtype)
    blurred = F.conv2d(F.pad(x.reshape(1, b, h, w), (2, 2, 0, 0), mode="replicate"), kernel.view(b, 1, 1, 5), groups=b)
    blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="replicate"), kernel.view(b, 1, 5, 1), groups=b)
    x = torch.where(chosen(), blurred.view(b, 1, h, w), x)

    factor = float(_uniform(1, 0.3, 0.8, g))
    small = (max(8, round(h * factor)), max(8, round(w * factor)))
    resampled = F.interpolate(F.interpolate(x, size=small, mode="area"), size=(h, w), mode="bilinear",
                              align_corners=False)
    x = torch.where(chosen(), resampled, x)

    contrast = _uniform(b, 0.6, 1.4, g).view(b, 1, 1, 1).to(x.device, x.dtype)
    brightness = _uniform(b, -0.4, 0.4, g).view(b, 1, 1, 1).to(x.device, x.dtype)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = torch.where(chosen(), (x - mean) * contrast + mean + brightness, x)

    noise = torch.randn(x.shape, generator=g) * _uniform(b, 0.0, 0.2, g).view(b, 1, 1, 1)
    return torch.where(chosen(), x + noise.to(x.device, x.dtype), x)


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """RGB batches (B, 3, H, W) only: with probability ``colour_p`` per image, brightness x0.7..1.3, contrast x0.7..1.3
    around the image's mean, saturation x0.5..1.5 around each pixel's grey; with probability ``colour_p / 4``, the
    image turned grey (FER2013's faces are grey, most photos are not: the network must know both). Linear in the
    pixels; brightness scales about the normalisation's zero, which is black for the models that use it (FaceRes:
    mean 0)."""
    b = x.shape[0]

    def per_image(low: float, high: float) -> torch.Tensor:
        return _uniform(b, low, high, g).view(b, 1, 1, 1).to(x.device, x.dtype)

    on = (torch.rand(b, generator=g) < cfg.colour_p).view(b, 1, 1, 1).to(x.device)
    grey_on = (torch.rand(b, generator=g) < cfg.colour_p / 4).view(b, 1, 1, 1).to(x.device)
    brightness, contrast, saturation = per_image(0.7, 1.3), per_image(0.7, 1.3), per_image(0.5, 1.5)
    luma = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    jittered = x * brightness
    mean = jittered.mean((1, 2, 3), keepdim=True)
    jittered = (jittered - mean) * contrast + mean
    grey = (jittered * luma).sum(1, keepdim=True)
    jittered = (jittered - grey) * saturation + grey
    x = torch.where(on, jittered, x)
    return torch.where(grey_on, (x * luma).sum(1, keepdim=True).expand_as(x), x)


def augment(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    if cfg.colour_p > 0 and x.shape[1] == 3:
        x = colour_jitter(x, cfg, g)
    if cfg.photo_p > 0:
        x = photo_degrade(x, cfg, g)
    if cfg.flip or cfg.rotate_deg > 0 or cfg.scale > 0 or cfg.translate > 0:
        x = random_affine(x, cfg, g)
    if cfg.erase_p > 0:
        x = random_erase(x, cfg, g)
    return x


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, g: torch.Generator, num_classes: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018): blend each image and its label with a shuffled partner.

    ``y`` holds class indices (B,) or soft targets (B, num_classes). One mixing weight per batch, drawn from
    Beta(alpha, alpha) and folded to >= 0.5 so the first label stays the dominant one. Returns the mixed
    images and soft targets (B, num_classes).
    """
    lam = _beta(alpha, g)
    lam = max(lam, 1 - lam)
    perm = torch.randperm(x.shape[0], generator=g).to(x.device)
    target = F.one_hot(y, num_classes).to(x.dtype) if y.ndim == 1 else y.to(x.dtype)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]


def _beta(alpha: float, g: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw, seeded from the torch generator (torch has no seeded Beta sampler)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    return float(np.random.default_rng(seed).beta(alpha, alpha))
