"""A run's moving parts (:class:`Run`), assembled in a fixed order from the config and the data, so that a
seed gives the same run and a resumed run rebuilds exactly what its checkpoint restores."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ferkit.data.augment import AugmentConfig
from ferkit.core.labels import EMOTIONS
from ferkit.models import create_model
from ferkit.train.config import TrainConfig
from ferkit.train.dataset import TrainingData
from ferkit.train.distributed import Dist
from ferkit.train.recipe import class_weights, epoch_length, make_optimizer, teacher_targets, use_bf16


class Run:
    """One training run's moving parts, built from its config and data: the model (and its DistributedDataParallel
    wrapper), optimiser, EMA, loss weights, soft targets, the counters a checkpoint saves. The steps that move them
    are the functions of :mod:`ferkit.train`."""

    def __init__(self, cfg: TrainConfig, d: TrainingData, out: Path, log, dist: Dist = Dist()):
        self.cfg, self.d, self.out, self.log, self.dist = cfg, d, out, log, dist
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and dist.world > 1:
            self.device = torch.device("cuda", dist.local_rank)
        self.bf16 = use_bf16(cfg.precision, self.device.type)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = create_model(cfg.model)
        if cfg.init:
            from ferkit.models import load_tensors_into
            from ferkit.weights import load_tensors, read_metadata, resolve

            init_path = resolve(cfg.init)
            init_meta = read_metadata(init_path)
            if init_meta.get("arch") != cfg.model:
                raise ValueError(f"--init {cfg.init}: its architecture is {init_meta.get('arch')!r}, not {cfg.model!r}")
            load_tensors_into(self.model, load_tensors(init_path),
                              backbone_only=init_meta.get("kind") == "pretrained-backbone")
        self.model = self.model.to(self.device, memory_format=fmt)
        self.net = self.model  # what the steps run: the model, or its DistributedDataParallel wrapper
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[dist.local_rank] if self.device.type == "cuda"
                                               else None)
        weight = class_weights(d.y_train.cpu().numpy(), cfg.class_weight)
        self.weight = weight.to(self.device) if weight is not None else None
        self.log_prior = None
        if cfg.logit_adjust:  # the class prior of the faces an epoch draws (source weights included)
            y = d.y_train.cpu().numpy()
            groups = d.groups or [np.arange(len(y))]
            counts = sum(w * np.bincount(y[idx], minlength=len(EMOTIONS)) for idx, w in zip(groups, d.weights))
            prior = np.clip(counts / counts.sum(), 1e-4, None)
            self.log_prior = cfg.logit_adjust * torch.tensor(np.log(prior), dtype=torch.float32, device=self.device)
        if cfg.mixup < 0:
            raise ValueError(f"mixup must be >= 0, not {cfg.mixup}")
        if not 0 <= cfg.aug_photo <= 1 or (cfg.aug_photo > 0 and not cfg.augment):
            raise ValueError(f"aug_photo must be in 0..1 and needs augment on (got {cfg.aug_photo}, augment {cfg.augment})")
        if cfg.select not in ("best", "last"):
            raise ValueError(f"select must be best or last, not {cfg.select!r}")
        if cfg.select == "best" and len(d.y_val) == 0:
            raise ValueError("select=best needs a validation subset: set val_fraction > 0")
        self.soft = self._teacher_targets() if cfg.distill else None
        self.opt = make_optimizer(cfg, self.model)
        self.ema = None
        if cfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        self.aug = AugmentConfig(flip=True, rotate_deg=cfg.aug_rotate, scale=cfg.aug_scale,
                                 translate=cfg.aug_translate, erase_p=cfg.aug_erase,
                                 photo_p=cfg.aug_photo, colour_p=cfg.aug_colour)
        self.monitor = d.data.split(cfg.test_split) if cfg.monitor_test else None
        # one step = one batch of cfg.batch_size faces on each process (a global batch of batch_size x world)
        self.n_batches = math.ceil(epoch_length(d.groups, d.weights, len(d.x_train)) / (cfg.batch_size * dist.world))
        self.total_steps = self.n_batches * cfg.epochs
        self.state = {"epoch": 0, "step": 0, "best_acc": -1.0, "best_epoch": -1, "bad_epochs": 0, "elapsed_s": 0.0,
                      "wall_s": 0.0, "run_loss": 0.0, "run_correct": 0, "run_seen": 0, "world": dist.world}
        self.stop_reason = 0  # 0: none, 1: time budget, 2: a signal (agreed between processes)

    def _teacher_targets(self) -> torch.Tensor:
        cfg = self.cfg
        if cfg.mixup > 0:
            raise ValueError("distill and mixup cannot be combined")
        t0 = time.perf_counter()
        soft = teacher_targets(cfg.distill, self.d.raw_train, cfg.distill_t, bf16=self.bf16, device=cfg.device,
                               channels_last=cfg.channels_last).to(self.device)
        agree = float((soft.argmax(1) == self.d.y_train).float().mean())
        self.log(f"distilling from {cfg.distill}: soft targets for {len(soft)} faces in {time.perf_counter() - t0:.1f} s "
                 f"(teacher agrees with the labels on {agree:.1%})")
        return soft

    @property
    def judged(self) -> torch.nn.Module:
        """The weights that are evaluated and kept: the EMA where there is one."""
        return self.ema.module if self.ema is not None else self.model
