"""The end of a run: the best weights measured in fp32 on every split it has (train, the test split, each crop
folder's validation part), written as ``model.safetensors`` with the metadata every command reads, and
``results.json``."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from ferkit.runtime import preprocess
from ferkit.analysis.evaluate import compute_metrics
from ferkit.core.inference import predict_proba
from ferkit.core.labels import EMOTIONS
from ferkit.models import model_tensors
from ferkit.train.config import TrainConfig
from ferkit.train.dataset import TrainingData


def model_metadata(cfg: TrainConfig, mean: float, std: float, extra: dict) -> dict:
    """The metadata of ``model.safetensors``: what every command needs to run the model (labels, input size and
    channels, preprocessing, framing, normalisation) and where it came from (command, config, versions, hardware,
    the pretrained weights it started from), plus ``extra`` (accuracies, sources, timings)."""
    from ferkit.models import input_spec

    spec = input_spec(cfg.model)
    pretrained = {}
    if cfg.init:
        from ferkit.weights import read_metadata, resolve

        init = read_metadata(resolve(cfg.init))
        if init.get("kind") == "pretrained-backbone":
            pretrained = {"pretrained": {"name": cfg.init, **init.get("provenance", {})}}
    return {
        "arch": cfg.model,
        "labels": list(EMOTIONS),
        "input_size": [spec["size"], spec["size"]],
        "channels": spec["channels"],
        **pretrained,
        "preprocessing": preprocess.parse(cfg.preprocessing),
        "framing": cfg.framing,
        "label_source": cfg.labels,
        "normalization": {"scale": 1 / 255, "mean": mean, "std": std},
        "command": cfg.command,
        "config": asdict(cfg),
        "torch": torch.__version__,
        "hardware": (torch.cuda.get_device_name() if cfg.device.startswith("cuda")
                     else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"),
        **extra,
    }


def finish(cfg: TrainConfig, model: torch.nn.Module, out: Path, d: TrainingData, results: dict, log) -> dict:
    """Restore the best weights, measure train/test accuracy (and each crop folder's validation part) in fp32 and
    write model.safetensors."""
    from ferkit.models import load_tensors_into
    from ferkit.weights import load_tensors, save_weights

    data, mean, std = d.data, d.mean, d.std
    x_train, y_train = d.x_train.cpu().numpy(), d.y_train.cpu().numpy()
    load_tensors_into(model, load_tensors(out / "best.safetensors"))
    train_probs = predict_proba(model, x_train, mean, std, device=cfg.device)
    results["train_accuracy"] = float((train_probs.argmax(1) == y_train).mean())
    try:
        test = data.split(cfg.test_split)
    except ValueError:
        test = None
    accuracy = {"train": results["train_accuracy"], "val": results["best_val_acc"]}
    if test is not None and len(test):
        report = compute_metrics(predict_proba(model, test.images, mean, std, tta=cfg.tta, device=cfg.device),
                                 test.labels)
        results["test_split"] = cfg.test_split
        results["test_accuracy"] = report["accuracy"]
        results["test_top2_accuracy"] = report["top2_accuracy"]
        results["overfit_ratio"] = report["accuracy"] / results["train_accuracy"]
        accuracy[cfg.test_split] = report["accuracy"]
    sources = [dict(s) for s in (d.sources or [])]
    for s in sources:
        if s["name"] in (d.source_val or {}) and len(d.source_val[s["name"]][1]):
            x, y = d.source_val[s["name"]]
            report = compute_metrics(predict_proba(model, x, mean, std, tta=cfg.tta, device=cfg.device), y)
            s["val_accuracy"] = report["accuracy"]
            s["val_recall"] = {e: v["recall"] for e, v in report["per_class"].items()}
            accuracy[f"{s['name']}_validation"] = report["accuracy"]
    if sources:
        results["sources"] = sources
    meta = model_metadata(cfg, mean, std, {"accuracy": accuracy, "sources": sources, "tta": cfg.tta, "train_minutes": results["train_minutes"],
                                      "wall_minutes": results["wall_minutes"], "epochs_run": results["epochs_run"],
                                      "best_epoch": results["best_epoch"]})
    save_weights(out / "model.safetensors", model_tensors(model), meta)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log("results: " + json.dumps(results))
    return results
