"""What a run trains and validates on: FER2013 (relabelled, aligned if asked, preprocessed) and any labelled
face-crop folders beside it, cut into training tensors on the run's device and validation arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ferkit.runtime import preprocess
from ferkit.data.fer2013 import FerData, load_fer2013, train_val_split
from ferkit.data.ferplus import relabel
from ferkit.core.labels import EMOTIONS
from ferkit.train.config import TrainConfig


@dataclass
class TrainingData:
    """What one run trains and validates on: tensors on the run's device, the normalisation, the splits."""

    x_train: torch.Tensor  # uint8 (N, 48, 48) preprocessed, or the model's input: (N, S, S, 3) RGB for a colour model
    y_train: torch.Tensor  # int64 (N,)
    t_train: torch.Tensor  # the targets: soft (N, 7) for FER+ votes, else y_train
    x_val: np.ndarray
    y_val: np.ndarray
    mean: float
    std: float
    data: FerData  # every split, relabelled and preprocessed
    raw_train: np.ndarray  # the training faces as read (a teacher applies its own preprocessing)
    groups: list = None  # index arrays into x_train, one per source (FER2013 first), for weighted sampling
    weights: tuple = (1.0,)  # sampling weight of each group
    source_val: dict = None  # crop folder name -> (faces (N, 48, 48) uint8 preprocessed, labels (N,)): its validation part
    sources: list = None  # one dict per source: name, path, faces per part, weight (the model's metadata)


def source_weights(cfg: TrainConfig) -> tuple[float, ...]:
    """The sampling weight of FER2013 and of each crop folder, in that order (all 1 where not given)."""
    n = 1 + len(cfg.sources)
    if not cfg.source_weights:
        return (1.0,) * n
    if len(cfg.source_weights) != n:
        raise ValueError(f"{len(cfg.source_weights)} source weight(s) for {n} source(s) (FER2013 and "
                         f"{len(cfg.sources)} folder(s)): give one per --data, in the same order")
    if any(w < 0 for w in cfg.source_weights) or not any(w > 0 for w in cfg.source_weights):
        raise ValueError(f"source weights must be >= 0 and not all 0, got {list(cfg.source_weights)}")
    return tuple(float(w) for w in cfg.source_weights)


def load_training_data(cfg: TrainConfig, data: FerData | None = None, progress: bool = False) -> TrainingData:
    """Read (or take) the data, apply the label source and the model's preprocessing, add the crop folders
    (re-framed as ``predict`` frames faces, see :mod:`ferkit.data.sources`) and cut the training/validation subsets
    as tensors on ``cfg.device``."""
    from ferkit.models import input_spec
    from ferkit.data.sources import load_crop_folder

    weights = source_weights(cfg)
    spec = input_spec(cfg.model)
    size, colour = int(spec["size"]), spec["channels"] == 3
    if (size, colour) != (48, False) and (cfg.framing != "box" or preprocess.parse(cfg.preprocessing)["name"] != "none"):
        raise ValueError(f"--model {cfg.model} takes {size}x{size} {'RGB' if colour else 'grey'} faces: it trains "
                         "with --framing box and --preprocessing none")
    data = relabel(data if data is not None else load_fer2013(cfg.data), cfg.labels, cfg.ferplus or None)
    if (size, colour) != (48, False):  # FER2013's 48x48 grey faces as the model's input, as predict would see them
        from ferkit.runtime.spec import as_model_input

        data = FerData(as_model_input(data.images, size, colour), data.labels, data.usage, data.source, data.targets)
    if cfg.framing == "align":  # every split, so that PublicTest is scored as the model will see faces
        from ferkit.data.sources import align_fer2013

        aligned, _ = align_fer2013(data.images, progress=progress)
        data = FerData(aligned, data.labels, data.usage, data.source, data.targets)
    elif cfg.framing != "box":
        raise ValueError(f"framing must be box or align, not {cfg.framing!r}")
    raw_train = data.split("Training").images
    data = preprocessed(data, cfg.preprocessing)
    train_all = data.split("Training")
    train_idx, val_idx = train_val_split(len(train_all), cfg.val_fraction, cfg.seed)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but PyTorch sees no CUDA GPU")
    xs, ys, raws = [train_all.images[train_idx]], [train_all.labels[train_idx]], [raw_train[train_idx]]
    targets = [train_all.targets[train_idx]] if train_all.targets is not None else None
    sources = [{"name": "fer2013", "path": cfg.data, "kind": "fer2013", "labels": cfg.labels, "weight": weights[0],
                "train_faces": len(train_idx), "val_faces": len(val_idx)}]
    source_val = {}
    for path, weight in zip(cfg.sources, weights[1:]):
        folder = load_crop_folder(path, holdout=cfg.holdout, framing=cfg.framing, progress=progress, size=size,
                                  colour=colour)
        f = folder.faces
        tr, va = f.usage == "Training", f.usage == "Validation"
        xs.append(preprocess.apply(f.images[tr], cfg.preprocessing))
        ys.append(f.labels[tr])
        raws.append(f.images[tr])
        if targets is not None:  # soft FER+ targets for FER2013: a crop folder's label is one-hot
            targets.append(np.eye(len(EMOTIONS), dtype=np.float32)[f.labels[tr]])
        source_val[folder.name] = (preprocess.apply(f.images[va], cfg.preprocessing), f.labels[va])
        sources.append({"name": folder.name, "path": str(path), "kind": "crop-folder", "weight": weight,
                        "train_faces": int(tr.sum()), "val_faces": int(va.sum()), "framed_from_median_box":
                        folder.fallback, "train_counts": folder.counts("Training")})
    bounds = np.cumsum([0] + [len(y) for y in ys])
    groups = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(ys))]
    x_train = torch.from_numpy(np.concatenate(xs)).to(device)
    y_train = torch.from_numpy(np.concatenate(ys)).to(device)
    t_train = torch.from_numpy(np.concatenate(targets)).to(device) if targets is not None else y_train
    if "mean" in spec:  # a pretrained backbone fixes its input normalisation
        mean, std = float(spec["mean"]), float(spec["std"])
    elif cfg.init:  # keep the initial weights' input normalisation: their first layer was trained on it
        from ferkit.weights import read_metadata, resolve

        norm = read_metadata(resolve(cfg.init))["normalization"]
        mean, std = float(norm["mean"]), float(norm["std"])
    else:
        mean, std = float(x_train.float().mean() / 255), float(x_train.float().std() / 255)
    return TrainingData(x_train, y_train, t_train, train_all.images[val_idx], train_all.labels[val_idx], mean, std, data,
                 np.concatenate(raws), groups, weights, source_val, sources)


def preprocessed(data: FerData, spec: str) -> FerData:
    """``data`` with the model's input preprocessing applied to every face (once, before training)."""
    if preprocess.parse(spec)["name"] == "none":
        return data
    return FerData(preprocess.apply(data.images, spec), data.labels, data.usage, data.source, data.targets)
