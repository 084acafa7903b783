"""The ``ferkit`` command: parsing and printing only; the work is done by the modules it calls."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="ferkit: facial expression recognition (the 7 FER2013 emotions) - train, evaluate, classify.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect FER2013 data sets (challenge CSV or per-image folder export).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Shipped model name, an .onnx file, a .safetensors file (a run's model.safetensors) or a model folder (ferkit finetune's); default: the shipped default model.")]


MinConfidenceOpt = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Abstain: a face whose top calibrated probability (in video: smoothed) is under this gets "
    "the emotion `uncertain` instead of a guess (0: never; see the README's coverage table).")]


def _scales_option(default: str, what: str):
    text = {"auto": f"auto: the detector also runs at the finer (or coarser) scales the {what} needs, so faces "
                    "from ~20 px wide up to the whole frame are found whatever --max-side (slower on large images); "
                    f"single: one pass at --max-side only (faster; faces under ~16 px at that scale are missed).",
            "single": f"single: one detection pass at --max-side (faces under ~16 px at that scale are missed); "
                      f"auto: also at the finer (or coarser) scales the {what} needs, as `predict` does (faces from "
                      "~20 px up to the whole frame; costs more on every detected frame)."}[default]
    def check(value: str) -> str:
        if value not in ("auto", "single"):
            raise typer.BadParameter(f"{value!r} is not one of 'auto', 'single'")
        return value

    return Annotated[str, typer.Option(metavar="[auto|single]", callback=check, help=text)]


PhotoScalesOpt = _scales_option("auto", "image")
VideoScalesOpt = _scales_option("single", "frame")


# Help texts and docstrings are rich markup: a literal "[word]" (ferkit[ray], [x, y, w, h]) is written "\\[word]".


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def need_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(f"`ferkit {what}` needs PyTorch: pip install 'ferkit[train]'")


@app.command()
def train(
    data: Annotated[list[Path], typer.Option(help="A training source, repeatable: FER2013 (CSV, .npz or per-image "
                                             "export; exactly one) and labelled face-crop folders (labels.csv with "
                                             "path,emotion, or <emotion>/ folders; e.g. RAF-DB), each re-framed as "
                                             "`predict` frames faces, 10% of each held out (--holdout).")],
    out: Annotated[Path, typer.Option(help="Run folder: config, metrics.jsonl, checkpoint.pt, model.safetensors.")],
    source_weight: Annotated[Optional[list[float]], typer.Option("--source-weight", help="Sampling weight of each "
                             "--data, in the same order: faces drawn per epoch = weight x its training faces "
                             "(default 1 each).")] = None,
    holdout: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of each crop folder held out (stratified, "
                                            "fixed) as its validation part.")] = 0.1,
    init: Annotated[Optional[str], typer.Option(help="Start from these weights (a shipped name or .safetensors of "
                                                 "the same --model) instead of random ones.")] = None,
    framing: Annotated[str, typer.Option(help="How every face is framed, in training and then by every command "
                                         "that runs the model: box (from the detector's box) or align (5 "
                                         "landmarks onto a template, FER2013's faces included).")] = "box",
    logit_adjust: Annotated[Optional[float], typer.Option(help="Logit-adjusted loss tau (0: off; 1: the classes "
                                                           "count equally, Menon et al. 2021).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model family (see `ferkit models`).")] = "seed",
    preset: Annotated[str, typer.Option(help="Training recipe: paper (the paper's), paper-aug (+ flips and shifts), "
                                        "fast (BN VGG, one-cycle SGD) or accurate (fast for 60 epochs).")] = "paper",
    labels: Annotated[str, typer.Option(help="Labels to train on: fer2013 (the CSV's), ferplus-majority or ferplus-votes "
                                        "(FER+'s 10 raters; read from fer2013new.csv beside --data), or mixed (half "
                                        "the FER2013 label, half the FER+ votes).")] = "fer2013",
    ferplus: Annotated[Optional[Path], typer.Option(help="The FER+ file (Microsoft's fer2013new.csv layout), if not "
                                                    "beside --data.")] = None,
    preprocessing: Annotated[str, typer.Option(help="The model's input preprocessing, applied to every face in "
                                               "training and at run time: none, equalize_hist, clahe or "
                                               "clahe:CLIP:TILES.")] = "none",
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs (preset's if not given).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Mini-batch size.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    patience: Annotated[Optional[int], typer.Option(min=0, help="Early stopping: epochs without a better val accuracy.")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(min=0.0, max=0.9, help="Share of Training held out for early stopping.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="adam or sgd (Nesterov).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant or onecycle (warm-up, then linear decay).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Label smoothing of the cross-entropy.")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment",
                                                    help="Batched flip/rotate/zoom/shift/erase augmentation.")] = None,
    aug_photo: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="With --augment: probability of each "
                                                       "photo degradation per face (blur, downscale-upscale, lighting, "
                                                       "noise; 0: off).")] = None,
    ema: Annotated[Optional[float], typer.Option(help="EMA decay of the weights (0: off).")] = None,
    mixup: Annotated[Optional[float], typer.Option(help="Mixup Beta(alpha, alpha) parameter (0: off).")] = None,
    class_weight: Annotated[Optional[str], typer.Option(help="none, inverse or sqrt-inverse class weights.")] = None,
    distill: Annotated[Optional[str], typer.Option(
        help="Knowledge distillation from this teacher (shipped model name, .safetensors or an ensemble: "
             "NAME.ensemble.json or a shipped one, e.g. fer-ens3).")] = None,
    distill_alpha: Annotated[Optional[float], typer.Option(help="Weight of the distillation term (0-1).")] = None,
    distill_t: Annotated[Optional[float], typer.Option(help="Distillation softmax temperature.")] = None,
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Flip test-time augmentation when evaluating.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (a run is deterministic for a seed).")] = 0,
    precision: Annotated[str, typer.Option(help="auto (bf16 where the CPU has it natively), bf16 or fp32.")] = "auto",
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format (faster oneDNN convs).")] = True,
    device: Annotated[str, typer.Option(help="cpu, or cuda for experiments on a GPU.")] = "cpu",
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch.")] = True,
    time_budget: Annotated[float, typer.Option(min=0.0, help="Stop after this many minutes of training (0: no limit).")] = 0.0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch (default: all cores).")] = None,
    nproc: Annotated[int, typer.Option(min=1, help="Data-parallel processes on this machine (DistributedDataParallel: "
                                       "gloo on CPUs, NCCL with --device cuda, one GPU each); each takes --batch-size "
                                       "faces per step. The same as torchrun --nproc-per-node N -m ferkit.train.")] = 1,
) -> None:
    """Train a model on the Training rows of a FER2013 data set.

    Checkpoints every epoch; Ctrl-C or SIGTERM saves and stops; --resume continues. Example:

        ferkit train --data fer2013.csv.gz --model seed --preset paper --out runs/seed
    """
    need_torch("train")
    import torch

    from ferkit.data import DataError
    from ferkit.provenance import command_line
    from ferkit.train import make_config, train as run_training

    from ferkit.sources import is_crop_folder

    if threads:
        torch.set_num_threads(threads)
    fer = [p for p in data if not is_crop_folder(p)]
    if len(fer) != 1:
        fail(f"--data: give exactly one FER2013 source (CSV, .npz or per-image export) beside any crop folders; "
             f"got {len(fer)}: {', '.join(map(str, fer)) or 'none'}")
    weights = None
    if source_weight:
        if len(source_weight) != len(data):
            fail(f"--source-weight: {len(source_weight)} given for {len(data)} --data; give one per --data, in order")
        by_path = dict(zip(map(str, data), source_weight))  # FER2013's weight first, then the folders'
        weights = tuple([by_path[str(fer[0])]] + [by_path[str(p)] for p in data if p != fer[0]])
    try:
        cfg = make_config(preset, data=str(fer[0]), out=str(out), sources=tuple(str(p) for p in data if p != fer[0]),
                          source_weights=weights or (), holdout=holdout, init=init or "", logit_adjust=logit_adjust,
                          framing=framing, model=model, epochs=epochs, batch_size=batch_size,
                          labels=labels, ferplus=str(ferplus) if ferplus else "",
                          preprocessing=preprocessing,
                          lr=lr, patience=patience, optimizer=optimizer, weight_decay=weight_decay, schedule=schedule,
                          label_smoothing=label_smoothing, augment=augment, aug_photo=aug_photo, ema=ema, mixup=mixup, class_weight=class_weight,
                          distill=distill, distill_alpha=distill_alpha, distill_t=distill_t, tta=tta,
                          val_fraction=val_fraction, seed=seed, precision=precision,
                          channels_last=channels_last, device=device, time_budget_min=time_budget,
                          command=command_line())
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            from ferkit.train import launch

            results = launch(cfg, nproc, resume=resume, progress=progress)
        else:
            results = run_training(cfg, resume=resume, progress=progress)
    except (KeyError, ValueError, DataError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    if results["status"] == "interrupted":
        raise typer.Exit(130)


@app.command("models")
def models_cmd() -> None:
    """List the registered model families and the shipped trained models."""
    from ferkit.preprocess import describe
    from ferkit.weights import (DEFAULT_MODEL, WeightsError, is_ensemble, read_ensemble, read_manifest,
                                read_metadata, shipped_path)

    try:
        from ferkit.models import list_models

        typer.echo("families (ferkit train --model): " + ", ".join(list_models()))
    except ImportError:
        typer.echo("families: (install ferkit[train] to train)")
    typer.echo("shipped models (ferkit classify --model):")
    for name in sorted(read_manifest()):
        default = " (default)" if name == DEFAULT_MODEL else ""
        try:
            kinds = read_manifest()[name]
            path = shipped_path(name, "safetensors" if "safetensors" in kinds else "onnx")
            if is_ensemble(path):
                spec = read_ensemble(path)
                members = " + ".join(f"{m['model']} x{m['weight']:.2f}" for m in spec["members"])
                acc = ", ".join(f"{k} {v * 100:.2f}%" for k, v in spec.get("metadata", {}).get("accuracy", {}).items())
                typer.echo(f"  {name}{default}: ensemble ({spec['combine']}) of {members}; accuracy measured by "
                           f"`ferkit ensemble`: {acc or 'not recorded'}")
                continue
            meta = read_metadata(path)
        except WeightsError as exc:
            typer.echo(f"  {name}: {exc}")
            continue
        what = {"train": "train (the rows it trained on)", "val": "val (its held-out slice)"}
        acc = ", ".join(f"{what.get(k, k)} {v * 100:.2f}%" for k, v in meta.get("accuracy", {}).items())
        precision = f", {meta['precision']} (quantized from {meta['quantized_from']['name']})" \
            if meta.get("precision", "fp32") != "fp32" else ""
        typer.echo(f"  {name}{default}: {meta['arch']}{precision}, preprocessing "
                   f"{describe(meta.get('preprocessing'))}, labels {meta.get('label_source', 'fer2013')}; "
                   f"accuracy recorded by its run: {acc}")


@app.command()
def summary(model: Annotated[str, typer.Argument(help="Registered model family, e.g. seed.")] = "seed") -> None:
    """Print a model's layer table: output shape (H, W, C) and parameters per layer, and the total."""
    need_torch("summary")
    from ferkit.models import create_model
    from ferkit.models.summary import format_summary, summarize

    try:
        net = create_model(model)
    except KeyError as exc:
        fail(exc.args[0])
    typer.echo(format_summary(summarize(net), f"model: {model}"))


@data_app.command("info")
def data_info(path: Annotated[Path, typer.Argument(help="FER2013 CSV (.csv/.csv.gz) or image folder export.")]) -> None:
    """Print the number of faces per split and emotion."""
    import numpy as np

    from ferkit.data import DataError, load_fer2013
    from ferkit.labels import EMOTIONS

    try:
        data = load_fer2013(path)
    except (DataError, ImportError) as exc:
        fail(str(exc))
    order = ("Training", "PublicTest", "PrivateTest", "Unknown")
    splits = sorted(set(data.usage.tolist()), key=order.index)
    typer.echo(f"{path}: {len(data)} faces, 48x48 grey" + ("" if data.has_splits() else
                                                            " (no split names: every row is 'Unknown')"))
    typer.echo(f"{'emotion':10s}" + "".join(f"{s:>13s}" for s in splits) + f"{'all':>9s}")
    per_split = {s: np.bincount(data.labels[data.usage == s], minlength=len(EMOTIONS)) for s in splits}
    for k, name in enumerate(EMOTIONS):
        typer.echo(f"{name:10s}" + "".join(f"{per_split[s][k]:13d}" for s in splits) + f"{data.class_counts()[k]:9d}")
    typer.echo(f"{'total':10s}" + "".join(f"{per_split[s].sum():13d}" for s in splits) + f"{len(data):9d}")


@data_app.command("pack")
def data_pack(
    path: Annotated[Path, typer.Argument(help="FER2013 CSV (.csv/.csv.gz) or image folder export.")],
    out: Annotated[Path, typer.Argument(help="The .npz file to write.")],
    splits: Annotated[Optional[list[str]], typer.Option("--split", help="Keep only these splits (repeatable).")] = None,
) -> None:
    """Pack a data set into one compressed .npz (uint8 arrays, no pickle) that every command reads directly."""
    import numpy as np

    from ferkit.data import DataError, FerData, canonical_split, load_fer2013, save_npz

    if out.suffix != ".npz":
        fail(f"{out}: the output must end in .npz")
    try:
        data = load_fer2013(path)
        if splits:
            keep = np.isin(data.usage, [canonical_split(s) for s in splits])
            data = FerData(data.images[keep], data.labels[keep], data.usage[keep], data.source)
    except (DataError, ImportError, ValueError) as exc:
        fail(str(exc))
    save_npz(data, out)
    typer.echo(f"{out}: {len(data)} faces, {out.stat().st_size / 2**20:.1f} MiB")


@app.command()
def evaluate(
    data: Annotated[Optional[Path], typer.Option(help="FER2013 CSV, image folder export or .npz.")] = None,
    photos: Annotated[Optional[Path], typer.Option(
        help="A folder of real photos instead of --data: labels.csv (path,face,x,y,w,h,emotion) or <emotion>/*.jpg. "
             "Faces are detected, matched to the labelled boxes (IoU >= 0.3) and cropped as `ferkit predict` does; "
             "a face not found counts as wrong.")] = None,
    split: Annotated[str, typer.Option(help="Training, PublicTest or PrivateTest.")] = "PublicTest",
    labels: Annotated[str, typer.Option(help="Score against fer2013 (the CSV's labels) or ferplus-majority (FER+ "
                                        "raters' majority, from fer2013new.csv beside --data).")] = "fer2013",
    ferplus: Annotated[Optional[Path], typer.Option(help="The FER+ file, if not beside --data.")] = None,
    model: ModelOpt = None,
    weights: Annotated[Optional[Path], typer.Option(help="A weight file (.safetensors or .onnx); same as --model FILE.")] = None,
    train_accuracy: Annotated[bool, typer.Option(help="Also report train accuracy and the overfit ratio (test/train).")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full report as JSON ('-' = stdout).")] = None,
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Override the model's flip test-time "
                                                "augmentation (default: what its metadata says).")] = None,
    detector: Annotated[str, typer.Option(help="--photos: face detector.")] = "centerface",
    max_side: Annotated[int, typer.Option(min=32, help="--photos: the detector's main pass sees the photo downscaled "
                                          "to this many pixels per side (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
) -> None:
    """Accuracy, top-2, per-class precision/recall/F1, confusion matrix, calibration and the 2nd-guess table,
    on a FER2013 split (--data) or on real photos (--photos).

    Shipped models and .onnx files run on onnxruntime; a .safetensors file runs on PyTorch.
    """
    from ferkit.data import DataError, load_fer2013
    from ferkit.evaluate import evaluate_model, format_report
    from ferkit.images import ImageError
    from ferkit.weights import WeightsError

    if (data is None) == (photos is None):
        fail("give --data (a FER2013 file) or --photos (a folder of labelled photos)", 2)
    chosen = str(weights) if weights else model
    try:
        if photos is not None:
            from ferkit.evaluate import model_framing
            from ferkit.photos import evaluate_photos, find_faces

            found = find_faces(photos, detector=detector, max_side=max_side, scales=scales, progress=True,
                               framing=model_framing(chosen))
            report = evaluate_photos(found, chosen, tta=tta)
            for path, error in found.errors.items():
                typer.echo(f"error: {error}", err=True)
        else:
            report = evaluate_model(chosen, load_fer2013(data), split, train_accuracy=train_accuracy, tta=tta,
                                    labels=labels, ferplus=ferplus)
    except (DataError, WeightsError, ImageError, ImportError, ValueError) as exc:
        fail(str(exc))
    except KeyError as exc:
        fail(str(exc.args[0]))
    if json_out is not None and str(json_out) == "-":
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"report written to {json_out}", err=True)


@app.command()
def calibrate(
    weights: Annotated[Path, typer.Argument(help="A run's model.safetensors (rewritten with the temperature).")],
    data: Annotated[Path, typer.Option(help="The FER2013 data the run trained on (CSV, folder export or .npz).")],
    split: Annotated[str, typer.Option(help="Split on which ECE is reported before and after (never fitted on).")] = "PublicTest",
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Set whether inference averages in the "
                                                "mirrored face (default: the run's choice); the fit is for that path.")] = None,
) -> None:
    """Fit a softmax temperature on the run's held-out slice of Training and store it in the weights.

    Predictions do not change (argmax is kept); the probabilities become calibrated. `ferkit export`
    carries the temperature into the shipped files and every inference path applies it.
    """
    need_torch("calibrate")
    from ferkit.calibrate import calibrate_weights
    from ferkit.data import DataError, canonical_split, load_fer2013
    from ferkit.weights import WeightsError

    try:
        calibrate_weights(weights, load_fer2013(data), split=canonical_split(split), tta=tta, log=typer.echo)
    except (DataError, WeightsError, ValueError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))


@app.command()
def finetune(
    data: Annotated[Path, typer.Argument(help="Your labelled photos: <emotion>/*.jpg folders, or a folder with "
                                         "labels.csv (path,face,x,y,w,h,emotion) as `evaluate --photos` reads.")],
    out: Annotated[Path, typer.Option(help="Model folder to write (model.onnx, model.safetensors, finetune.json, "
                                      "skipped.csv); use it with --model OUT.")],
    base: Annotated[Optional[str], typer.Option(help="Model to start from: a shipped name, a .safetensors file or a "
                                                "model folder (default: the shipped default).")] = None,
    layers: Annotated[str, typer.Option(help="head (the last layer only: seconds) or all (every layer, small learning "
                                        "rate: minutes).")] = "head",
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs (head: 200, all: 30).")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate (head: 0.01, all: 1e-4).")] = None,
    patience: Annotated[Optional[int], typer.Option(min=1, help="Early stopping: epochs without a better held-out "
                                                    "accuracy (head: 40, all: 8).")] = None,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of each emotion's photos held out for "
                                                "early stopping and calibration.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the training.")] = 0,
    detector: Annotated[str, typer.Option(help="Face detector (centerface).")] = "centerface",
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees each photo downscaled to this "
                                          "many pixels per side, as `predict` does (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar while detecting (on stderr).")] = True,
) -> None:
    """Fine-tune a model on your own labelled photos, on a CPU.

    Faces are found and framed exactly as `predict` does (cached); part of each emotion's photos is held out
    to choose the epoch and fit the temperature. Photos without a face or with an unreadable file are
    listed (and in skipped.csv), never silently dropped. Example:

        ferkit finetune my_photos/ --out my-model/ && ferkit predict --model my-model/ photo.jpg
    """
    need_torch("finetune")
    from ferkit.adapt import finetune as run_finetune
    from ferkit.data import DataError
    from ferkit.provenance import command_line
    from ferkit.weights import WeightsError

    try:
        run_finetune(data, out, base=base, layers=layers, epochs=epochs, lr=lr, patience=patience,
                     val_fraction=val_fraction, seed=seed, detector=detector, max_side=max_side, scales=scales,
                     command=command_line(), log=typer.echo, progress=progress)
    except (DataError, WeightsError, ValueError, KeyError, OSError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))


@app.command()
def export(
    weights: Annotated[Path, typer.Argument(help="A run's model.safetensors.")],
    name: Annotated[str, typer.Option(help="Name of the files (NAME.onnx, NAME.safetensors).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write NAME.safetensors (fp16), NAME.onnx "
                                                "and manifest.json into; any --model option takes NAME.onnx.")] = None,
    into_package: Annotated[bool, typer.Option("--into-package", help="Write into the installed package's weights/ "
                                               "instead, shipping it as `--model NAME` (for ferkit's own releases).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write NAME-int8.onnx: static int8 quantization "
                                       "(per-channel weights), ~4x smaller and ~3x faster on a CPU; needs "
                                       "--calibration. Measure it beside NAME before shipping "
                                       "(benchmarks/quantize.py).")] = False,
    calibration: Annotated[Optional[list[Path]], typer.Option("--calibration", help="Training faces to read int8 "
                           "activation ranges from: a FER2013 file (its Training rows) or a labelled crop folder "
                           "(its training part); repeatable, faces drawn evenly.")] = None,
    calibration_faces: Annotated[int, typer.Option(help="How many faces to calibrate int8 on.", min=16)] = 512,
) -> None:
    """Export trained weights: fp16 safetensors + ONNX (for onnxruntime, no PyTorch) + a manifest with sha256,
    and with --int8 a quantized ONNX beside them.

    A .safetensors file also works directly with every --model option (it is exported to ONNX once, into the
    cache); export when the model goes to a machine without PyTorch.
    """
    need_torch("export")
    from ferkit.data import DataError
    from ferkit.export import calibration_faces as draw_faces
    from ferkit.export import export_int8, export_weights
    from ferkit.weights import WEIGHTS_DIR, WeightsError, read_metadata

    if (out is None) == (not into_package):
        fail("give --out DIR, or --into-package to ship the model inside ferkit", 2)
    if int8 and not calibration:
        fail("--int8 needs --calibration DATA: training faces (a FER2013 file or a labelled crop folder) to read "
             "activation ranges from", 2)
    dest = WEIGHTS_DIR if into_package else out
    try:
        entries = {name: export_weights(weights, name, dest)}
        if int8:
            from ferkit.crop import framing_of

            faces = draw_faces(calibration, calibration_faces, framing=framing_of(read_metadata(weights)).method)
            entries[f"{name}-int8"] = export_int8(name, faces, dest, sources=[str(c) for c in calibration])
    except (WeightsError, DataError, OSError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(entries if int8 else entries[name], indent=2))


@app.command()
def ensemble(
    members: Annotated[list[str], typer.Argument(help="Member models: shipped names, .onnx/.safetensors files or model "
                                                 "folders (at least 2).")],
    name: Annotated[str, typer.Option(help="Name of the ensemble (file NAME.ensemble.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write NAME.ensemble.json and manifest.json "
                                                "into; any --model option takes the file.")] = None,
    into_package: Annotated[bool, typer.Option("--into-package", help="Write into the installed package's weights/ "
                                               "instead, shipping it as `--model NAME` (for ferkit's own releases).")] = False,
    weights: Annotated[Optional[list[float]], typer.Option("--weight", help="A member's weight, once per member in "
                                                           "order (default: equal).")] = None,
    combine: Annotated[str, typer.Option(help="log-mean (weighted geometric mean of the members' probabilities) or "
                                         "mean.")] = "log-mean",
    data: Annotated[Optional[Path], typer.Option(help="FER2013 CSV: measure the ensemble on --split and record its "
                                                 "accuracy and ECE in the file.")] = None,
    split: Annotated[str, typer.Option(help="Split of --data to measure on.")] = "PublicTest",
) -> None:
    """Combine models into one: every --model option then runs them all and combines their calibrated probabilities.

    Each member keeps its own preprocessing, temperature and TTA. Runs on onnxruntime: no PyTorch needed (except
    for members given as .safetensors files).
    """
    from ferkit.data import DataError, canonical_split, load_fer2013
    from ferkit.export import write_ensemble
    from ferkit.provenance import command_line
    from ferkit.weights import WEIGHTS_DIR, WeightsError

    if (out is None) == (not into_package):
        fail("give --out DIR, or --into-package to ship the ensemble inside ferkit", 2)
    if combine not in ("log-mean", "mean"):
        fail(f"--combine must be log-mean or mean, not {combine!r}", 2)
    dest = WEIGHTS_DIR if into_package else out
    metadata = {"command": command_line()}
    try:
        path, entry = write_ensemble(members, name, dest, weights=weights, combine=combine, metadata=metadata)
        if data is not None:
            from ferkit.calibrate import expected_calibration_error
            from ferkit.runtime import Classifier

            subset = load_fer2013(data).split(canonical_split(split))
            probs = Classifier(path, threads=0).predict_proba(subset.images)
            metadata["accuracy"] = {split: float((probs.argmax(1) == subset.labels).mean())}
            metadata["calibration"] = {split: {"ece": expected_calibration_error(probs, subset.labels)},
                                       "note": "each member's own temperature; nothing fitted on this split"}
            path, entry = write_ensemble(members, name, dest, weights=weights, combine=combine, metadata=metadata)
            typer.echo(f"{split}: accuracy {metadata['accuracy'][split] * 100:.2f}%, ECE "
                       f"{metadata['calibration'][split]['ece'] * 100:.2f}% ({len(subset)} faces)")
    except (WeightsError, DataError, ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {path}")
    typer.echo(json.dumps(entry, indent=2))


@app.command()
def classify(
    images: Annotated[Optional[list[str]], typer.Argument(
        help="Face crops: files, folders (searched recursively) or globs; each whole image is one face (48x48 grey "
             "as in FER2013; another size is resized). Default: the bundled sample face.")] = None,
    model: ModelOpt = None,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write all records as one JSON array ('-': stdout).")] = None,
    jsonl_file: Annotated[Optional[str], typer.Option("--jsonl", help="Write one JSON record per line ('-': stdout).")] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write one CSV row per face ('-': stdout).")] = None,
) -> None:
    """Classify face crops (each whole image is one face) and print the 7 probabilities.

    The same as `ferkit predict --no-detect`, with the same records and outputs (schema in the README), and a
    table of all 7 probabilities per face. Runs on onnxruntime: no PyTorch needed.
    """
    from ferkit.classify import SAMPLE_FACE
    from ferkit.images import find_images
    from ferkit.outputs import OutputError, RecordWriter
    from ferkit.recognize import Recognizer
    from ferkit.weights import WeightsError

    try:
        writer = RecordWriter(json=json_file, jsonl=jsonl_file, csv=csv_file)
    except (OutputError, OSError) as exc:
        fail(str(exc), 2)
    files = find_images(images) if images else [SAMPLE_FACE]
    if not files:
        writer.close()
        fail("no image files found in: " + ", ".join(images or []))
    try:
        rec = Recognizer(model, detect=False)
    except WeightsError as exc:
        writer.close()
        fail(str(exc))
    failed = 0
    with writer:
        for result in rec.predict_paths(files):
            writer.write(result.to_dict())
            if result.error:
                typer.echo(f"error: {result.error}", err=True)
                failed += 1
                continue
            if (result.width, result.height) != (48, 48):
                typer.echo(f"warning: {result.path}: {result.width}x{result.height} image resized to 48x48 and taken "
                           "as one face", err=True)
            if writer.uses_stdout:
                continue
            face = result.faces[0]
            typer.echo(f"{result.path}: {face.emotion}")
            for label, p in sorted(face.probabilities.items(), key=lambda t: -t[1]):
                typer.echo(f"  {label:9s} {p * 100:6.2f}%  {'#' * int(round(p * 40))}")
    if failed:
        raise typer.Exit(1)


def _check_outputs(*outputs) -> None:
    """Fail in one line (exit 2) before any work when an output (value, option[, is a folder]) cannot be written."""
    from ferkit.outputs import OutputError, check_writable

    for target, option, *folder in outputs:
        try:
            check_writable(target, folder=bool(folder and folder[0]), what=option)
        except OutputError as exc:
            fail(str(exc), 2)


def _check_ray(engine: str, conflicting: bool, conflict: str, out, out_format: str) -> None:
    """`--engine ray`: fail in one line (exit 2) before Ray starts on an unknown engine, options that belong to the
    local engine (``conflicting``, explained by ``conflict``) or an output folder that would mix with old parts."""
    if engine != "ray":
        fail(f"unknown --engine {engine!r}; expected ray", 2)
    if conflicting:
        fail(conflict, 2)
    from ferkit.batch import check_out

    try:
        check_out(out, out_format)
    except ValueError as exc:
        fail(str(exc), 2)


@app.command()
def predict(
    paths: Annotated[Optional[list[str]], typer.Argument(
        help="Image files, folders (searched recursively) or glob patterns. Default: the bundled sample photo.")] = None,
    model: ModelOpt = None,
    detector: Annotated[str, typer.Option(help="Face detector (centerface).")] = "centerface",
    detect: Annotated[bool, typer.Option("--detect/--no-detect",
                                         help="--no-detect: each whole image is one FER2013-style face crop.")] = True,
    min_face: Annotated[int, typer.Option(min=0, help="Faces narrower than this many pixels are flagged `small`.")] = 24,
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees the image downscaled to this "
                                          "many pixels per side (with --scales auto, finer passes find the small "
                                          "faces of large group photos: no need to raise it).")] = 320,
    scales: PhotoScalesOpt = "auto",
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="Threads (0: every core this process may use): photos are "
                                         "decoded and searched for faces on this many at once, one onnxruntime "
                                         "thread each, their faces classified together; records keep the "
                                         "input order.")] = 0,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write all records as one JSON array ('-': stdout).")] = None,
    jsonl_file: Annotated[Optional[str], typer.Option("--jsonl", help="Write one JSON record per line ('-': stdout).")] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write one CSV row per face ('-': stdout).")] = None,
    annotate: Annotated[Optional[Path], typer.Option(
        help="Write each image with boxes, labels and probability bars into this folder (PNG).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr).")] = True,
    engine: Annotated[Optional[str], typer.Option(help="ray: run on Ray Data (pip install 'ferkit\\[ray]'), one actor "
                                                  "per worker; inputs may also be a .txt or .parquet list of paths. "
                                                  "Needs --out.")] = None,
    address: Annotated[Optional[str], typer.Option(help="--engine ray: the cluster to join (auto, ray://host:port); "
                                                   "default: start Ray on this machine.")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=1, help="--engine ray: actors (default: one per CPU "
                                                       "Ray offers).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="--engine ray: where the records go (a folder of "
                                                "part files that pandas/pyarrow read as one table).")] = None,
    out_format: Annotated[str, typer.Option("--format", help="--engine ray: parquet or jsonl.")] = "parquet",
    per_face: Annotated[bool, typer.Option("--per-face", help="--engine ray: one row per face (--csv's columns) "
                                           "instead of one per image.")] = False,
) -> None:
    """Find every face in photos, crop each like FER2013 and classify its expression.

    One record per input file, failures included: `path`, `width`, `height`, `faces` (each with `box`
    \\[x, y, w, h], detector `score`, `emotion`, all 7 `probabilities`, `low_confidence`, `small`, `uncertain`) and
    `error` (null or a one-line reason). Exit code 1 if any file could not be read; the rest still run.
    """
    import sys
    import time

    from ferkit.images import find_images
    from ferkit.outputs import OutputError, RecordWriter
    from ferkit.recognize import Recognizer
    from ferkit.weights import WeightsError

    if engine is not None:
        _check_ray(engine, out is None or bool(json_file or jsonl_file or csv_file or annotate),
                   "--engine ray writes to --out (Parquet or --format jsonl); --json/--jsonl/--csv/--annotate are for "
                   "the local engine", out, out_format)
        from ferkit.batch import run_photos

        try:
            stats = run_photos(paths or [], out, address=address, num_workers=num_workers, fmt=out_format,
                               per_face=per_face, model=model, detector=detector, max_side=max_side,
                               scales=scales, min_face=min_face, min_confidence=min_confidence)
        except (ImportError, ValueError, WeightsError, OSError) as exc:
            fail(str(exc))
        typer.echo(f"{stats['images']} image(s) -> {stats['rows']} row(s) in {out}, {stats['errors']} error(s) in "
                   f"{stats['seconds']:.1f} s (Ray started in {stats['startup_seconds']:.1f} s)", err=True)
        if stats["errors"]:
            raise typer.Exit(1)
        return
    if out is not None:
        fail("--out is for --engine ray; use --json/--jsonl/--csv", 2)
    _check_outputs((annotate, "--annotate", True))
    try:
        writer = RecordWriter(json=json_file, jsonl=jsonl_file, csv=csv_file)
    except (OutputError, OSError) as exc:
        fail(str(exc), 2)
    if paths:
        files = find_images(paths)
    else:
        from ferkit.classify import SAMPLE_PHOTO

        files = [SAMPLE_PHOTO]
    if not files:
        writer.close()
        fail("no image files found in: " + ", ".join(paths or []))
    try:
        rec = Recognizer(model, detector=detector, threads=1, min_face=min_face, detect=detect, max_side=max_side,
                         min_confidence=min_confidence, scales=scales)
    except (WeightsError, KeyError) as exc:
        writer.close()
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    errors, n_faces = 0, 0
    start = time.perf_counter()
    with writer:
        from ferkit.onnx_io import cpu_count

        results = rec.predict_paths(files, keep_images=annotate is not None, workers=threads or cpu_count())
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(files), unit="image", file=sys.stderr, disable=None, leave=False)
        if annotate is not None:
            import cv2

            from ferkit.annotate import annotate as draw, annotated_paths

            targets = annotated_paths(annotate, files)
        for index, item in enumerate(results):
            result, rgb = item if annotate is not None else (item, None)
            if rgb is not None:
                targets[index].parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(targets[index]), draw(rgb, result.faces, rec.labels))
            n_faces += len(result.faces)
            if result.error:
                errors += 1
                typer.echo(f"error: {result.error}", err=True)
            writer.write(result.to_dict())
            if not writer.uses_stdout and not result.error:
                if not result.faces:
                    typer.echo(f"{result.path}: no face found")
                for i, face in enumerate(result.faces):
                    best = max(face.probabilities, key=face.probabilities.get)
                    what = (f"uncertain (best guess {best} {face.probabilities[best] * 100:.1f}%)" if face.uncertain
                            else f"{face.emotion} {face.probabilities[best] * 100:.1f}%")
                    flags = "".join([" (low confidence)" if face.low_confidence else "", " (small)" if face.small else ""])
                    typer.echo(f"{result.path}: face {i} at {face.box}: {what}{flags}")
    seconds = time.perf_counter() - start
    typer.echo(f"{len(files)} image(s), {n_faces} face(s), {errors} error(s) in {seconds:.1f} s "
               f"({len(files) / max(seconds, 1e-9):.1f} images/s)", err=True)
    if errors:
        raise typer.Exit(1)


@app.command()
def video(
    sources: Annotated[Optional[list[Path]], typer.Argument(
        help="A video file (anything OpenCV/FFmpeg reads); several with --engine ray.")] = None,
    camera: Annotated[Optional[int], typer.Option(min=0, help="Read camera N instead of a file (live: frames are "
                                                  "skipped, never queued, when processing is slower).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write an annotated video (MP4): boxes, track ids, "
                                                "smoothed emotion and probability bars.")] = None,
    jsonl: Annotated[Optional[str], typer.Option("--jsonl", help="One JSON line per face per frame, flushed as it "
                                                 "goes ('-': stdout).")] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Print per-track duration, dominant emotion, mean "
                                          "probabilities and the emotion timeline.")] = False,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write the per-track summary as JSON.")] = None,
    window: Annotated[int, typer.Option(min=1, help="Frames averaged per track (sliding window; 1: no smoothing).")] = 15,
    detect_every: Annotated[int, typer.Option(min=1, help="Run the face detector every k-th frame; the tracker carries "
                                              "the boxes in between.")] = 1,
    classify_every: Annotated[int, typer.Option(min=1, help="Classify a tracked face at least every k-th frame; in "
                                                "between, while its crop looks as it did, its last probabilities are "
                                                "reused (1: every face on every frame).")] = 1,
    profile: Annotated[bool, typer.Option("--profile", help="Print the time per frame of each stage (decode, detect, "
                                          "classify, draw, encode, write) at the end, on stderr.")] = False,
    model: ModelOpt = None,
    max_side: Annotated[int, typer.Option(min=32, help="Detect on the frame downscaled to this many pixels per side.")] = 320,
    scales: VideoScalesOpt = "single",
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="onnxruntime threads (0: all cores).")] = 1,
    show: Annotated[bool, typer.Option("--show", help="Show the annotated frames in a window (needs a display "
                                       "and an OpenCV build with GUI support).")] = False,
    engine: Annotated[Optional[str], typer.Option(help="ray: many videos on Ray Data (pip install "
                                                  "'ferkit\\[ray]'), one video per task; rows go to --rows, "
                                                  "summaries to --summary-json.")] = None,
    address: Annotated[Optional[str], typer.Option(help="--engine ray: the cluster to join (auto, ray://host:port).")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=1, help="--engine ray: actors (default: one per CPU).")] = None,
    rows: Annotated[Optional[Path], typer.Option(help="--engine ray: the per-face-per-frame rows (--jsonl's, plus "
                                                 "`video`), a new folder of part files.")] = None,
    out_format: Annotated[str, typer.Option("--format", help="--engine ray: parquet or jsonl.")] = "parquet",
) -> None:
    """Track every face through a video or a live camera and average its probabilities over frames.

    Faces keep an id while they stay in view (a different person at the same place, or a scene cut, starts
    a new track; a face that leaves and comes back gets a new id). Every frame of a file gets a result.
    The detector runs at one scale by default (--scales single, to keep up with 30 frames/s); --scales auto
    also finds faces down to ~20 px in large frames, as `predict` does, at a cost on every detected frame
    (pair it with --detect-every).
    """
    import sys

    import cv2

    from ferkit.recognize import Recognizer
    from contextlib import nullcontext

    from ferkit.video import AnnotatedVideo, StageTimes, Summary, VideoError, draw_frame, stream
    from ferkit.weights import WeightsError

    if engine is not None:
        _check_ray(engine, not sources or camera is not None or rows is None or bool(out or jsonl or show or summary),
                   "--engine ray takes video files and writes --rows (and --summary-json); --camera, --out, --jsonl, "
                   "--show and --summary are for one video on the local engine", rows, out_format)
        from ferkit.batch import run_videos

        _check_outputs((summary_json, "--summary-json"))
        try:
            stats = run_videos([str(v) for v in sources], rows, summary_json=summary_json, address=address,
                               num_workers=num_workers, fmt=out_format, model=model, max_side=max_side, scales=scales,
                               window=window, detect_every=detect_every, classify_every=classify_every,
                               min_confidence=min_confidence)
        except (ImportError, ValueError, OSError) as exc:
            fail(str(exc))
        for reason in stats["failed"].values():
            typer.echo(f"error: {reason}", err=True)
        typer.echo(f"{stats['videos']} video(s) -> {stats['rows']} row(s) in {rows}, {len(stats['failed'])} failed, "
                   f"in {stats['seconds']:.1f} s (Ray started in {stats['startup_seconds']:.1f} s)", err=True)
        if stats["failed"]:
            raise typer.Exit(1)
        return
    if sources and len(sources) > 1:
        fail("one video at a time (several with --engine ray)", 2)
    source = sources[0] if sources else None
    if (source is None) == (camera is None):
        fail("give a video file or --camera N (one of them)")
    _check_outputs((out, "--out"), (jsonl, "--jsonl"), (summary_json, "--summary-json"))
    try:
        rec = Recognizer(model, threads=threads, max_side=max_side, min_confidence=min_confidence, scales=scales)
    except WeightsError as exc:
        fail(str(exc))
    from ferkit.outputs import open_output

    sink, close = open_output(jsonl) if jsonl is not None else (None, False)
    info = sys.stderr if jsonl == "-" else sys.stdout
    writer = None
    stats = Summary(rec.labels)
    frames, skipped, error = 0, 0, None
    start = time.perf_counter()
    source_info: dict = {}
    times = StageTimes() if profile else None
    timed = times if times is not None else (lambda stage: nullcontext())
    try:
        for fr in stream(camera if camera is not None else source, recognizer=rec, window=window,
                         detect_every=detect_every, classify_every=classify_every,
                         keep_images=out is not None or show, info=source_info, times=times):
            frames += 1
            skipped += fr.skipped
            with timed("write"):
                stats.add(fr)
                if sink is not None:
                    for row in fr.rows():
                        sink.write(json.dumps(row) + "\n")
                    sink.flush()
            if fr.image is not None:
                with timed("draw"):
                    bgr = draw_frame(fr, rec.labels)
                if out is not None:
                    if writer is None:
                        writer = AnnotatedVideo(out, source_info.get("fps", 30.0))
                    with timed("encode"):
                        writer.write(bgr, fr.time_s)
                if show:
                    cv2.imshow("ferkit", bgr)
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
    except VideoError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        if writer is not None:
            writer.close()
        if sink is not None and close:
            sink.close()
    seconds = time.perf_counter() - start
    read_nothing = bool(error) and not frames  # a source that gave nothing gets its error line alone
    if summary and not read_nothing:
        print(stats.format(), file=info)
    if summary_json is not None and not read_nothing:
        summary_json.write_text(json.dumps(stats.to_dict(), indent=2) + "\n")
    note = f", {skipped} skipped to keep up" if camera is not None else ""
    if not read_nothing:
        typer.echo(f"{frames} frame(s), {len(stats.tracks)} track(s) in {seconds:.1f} s "
                   f"({frames / max(seconds, 1e-9):.1f} frames/s){note}", err=True)
        if times is not None:
            typer.echo(times.report(frames, seconds), err=True)
    if error:
        fail(error)


VIEWS = ("samples", "kernels", "feature-maps", "saliency", "confusion", "curves", "report")


def _face_for(image: Optional[Path]):
    """A 48x48 face: the bundled sample face, or the largest face of a photo cropped as `ferkit predict` does."""
    from ferkit.classify import SAMPLE_FACE
    from ferkit.crop import largest_face_crop

    return largest_face_crop(image or SAMPLE_FACE)


@app.command()
def visualize(
    what: Annotated[str, typer.Argument(help="samples, kernels, feature-maps, saliency, confusion, curves, or "
                                        "report (one self-contained HTML page).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="PNG file to write (report: an .html file).")] = None,
    model: ModelOpt = None,
    image: Annotated[Optional[Path], typer.Option(help="A 48x48 face or any photo (its largest face is cropped "
                                                  "as `ferkit predict` does). Default: the bundled sample face.")] = None,
    data: Annotated[Optional[Path], typer.Option(help="FER2013 CSV, folder export or .npz (samples, confusion).")] = None,
    split: Annotated[Optional[str], typer.Option(help="Use only this split of --data.")] = None,
    layer: Annotated[Optional[str], typer.Option(help="Layer for feature-maps (default: the first convolution).")] = None,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="Print the model's layer names and exit.")] = False,
    run: Annotated[Optional[Path], typer.Option(help="A run folder (curves).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="A `ferkit evaluate --json` report (confusion).")] = None,
    emotion: Annotated[Optional[str], typer.Option(help="saliency: explain this class instead of the predicted one.")] = None,
) -> None:
    """The paper's figures for any model: sample faces, first-layer kernels, feature maps, Grad-CAM saliency
    (one face, or the first 12 faces of --data), confusion, training curves."""
    need_torch("visualize")
    from ferkit import visualize as viz
    from ferkit.data import DataError, canonical_split, load_fer2013
    from ferkit.labels import EMOTIONS
    from ferkit.images import ImageError
    from ferkit.weights import WeightsError

    if what not in VIEWS:
        fail(f"unknown view {what!r}; expected one of {', '.join(VIEWS)}")
    try:
        net = None
        if what in ("kernels", "feature-maps", "saliency", "report") or list_layers:
            from ferkit.models import load_model

            net = load_model(model)
            if list_layers:
                typer.echo("\n".join(viz.layer_names(net)))
                return
        if out is None:
            fail("--out FILE.png is required")
        loaded = load_fer2013(data) if data is not None else None
        if loaded is not None and split:
            loaded = loaded.split(canonical_split(split))
        label = f"{getattr(net, 'ferkit_meta', {}).get('name', model or '')}: " if net is not None else ""
        if what == "samples":
            if loaded is None:
                fail("samples needs --data")
            fig = viz.samples(loaded)
        elif what == "kernels":
            fig = viz.kernels(net, label)
        elif what == "feature-maps":
            fig = viz.feature_maps(net, _face_for(image), layer, label)
        elif what == "report":
            if loaded is None:
                fail("report needs --data (and --split, e.g. PublicTest)")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(viz.report(net, loaded, model_name=model, run=run))  # numbers of `net`, the drawn one
            typer.echo(f"wrote {out}")
            return
        elif what == "saliency":
            faces = [_face_for(image)] if loaded is None else list(loaded.images[:12])
            fig = viz.saliency(net, faces, EMOTIONS.index(emotion) if emotion else None, label)
        elif what == "confusion":
            if report is not None:
                rep = json.loads(report.read_text())
            elif loaded is not None:
                from ferkit.evaluate import compute_metrics, load_predictor

                predict, meta = load_predictor(model)
                rep = {**compute_metrics(predict(loaded.images), loaded.labels), "model": meta.get("name", model),
                       "split": split or "all rows"}
            else:
                fail("confusion needs --report or --data")
            fig = viz.confusion(rep)
        else:
            if run is None:
                fail("curves needs --run RUN_FOLDER")
            fig = viz.curves(run)
    except (DataError, WeightsError, ImageError, ValueError, FileNotFoundError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    path = viz.save(fig, out)
    typer.echo(f"wrote {path}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface -- anyone who can "
                                      "reach this machine can then use it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model once).")] = 1,
    model: ModelOpt = None,
    detector: Annotated[str, typer.Option(help="Face detector (centerface).")] = "centerface",
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees the image downscaled to this "
                                          "many pixels per side (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
    min_face: Annotated[int, typer.Option(min=0, help="Faces narrower than this many pixels are flagged `small`.")] = 24,
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="onnxruntime threads per inference.")] = 1,
    concurrency: Annotated[int, typer.Option(min=0, help="Inferences at once per worker (0: one per CPU core).")] = 0,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body; larger gets 413.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image in pixels; larger gets 422.")] = 50_000_000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most images in one /v1/predict/batch request.")] = 32,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds allowed to receive an upload (408), and again to "
                                           "classify it (504).")] = 30.0,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        help="Allow browser pages from this origin (repeatable; '*' for any). Default: none (same origin only).")] = None,
    window: Annotated[int, typer.Option(min=1, help="Webcam mode: frames averaged per face (5: 1 s at the page's "
                                        "default 5 frames/s).")] = 5,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
) -> None:
    """Serve the HTTP API and the web page (photo upload and live webcam) on the photo pipeline.

    Open http://HOST:PORT/ in a browser; the API is documented at /docs. POST /v1/predict takes one image
    (multipart field `file`, or the raw body) and answers the record `ferkit predict --json` writes per image
    (`?annotate=1`: the annotated PNG); POST /v1/predict/batch takes several; GET /healthz, GET /v1/models.
    Errors answer JSON {"error": ...}: 400 broken image, 413 too large, 415 not an image, 422 too many pixels.
    """
    import os

    import uvicorn

    from ferkit.serve import CONFIG_ENV, ServeConfig, create_app
    from ferkit.weights import WeightsError

    config = ServeConfig(model=model, detector=detector, max_side=max_side, scales=scales, min_face=min_face,
                         min_confidence=min_confidence, threads=threads,
                         concurrency=concurrency, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
                         max_batch=max_batch, timeout_s=timeout, cors_origins=list(cors_origin or []), window=window)
    try:
        app_or_factory = create_app(config)  # loads the model: a bad --model fails here, not in each worker
    except (WeightsError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    typer.echo(f"ferkit serve: http://{host}:{port}/ (API docs at /docs), {workers} worker(s)", err=True)
    options = dict(host=host, port=port, log_level=log_level, server_header=False, timeout_keep_alive=10)
    if workers == 1:
        uvicorn.run(app_or_factory, **options)
    else:
        del app_or_factory  # each worker loads its own copy; this one only checked that it loads
        os.environ[CONFIG_ENV] = config.to_env()
        uvicorn.run("ferkit.serve:app_from_env", factory=True, workers=workers, **options)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ferkit {version('ferkit')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print ferkit's version and exit.")] = False) -> None:
    """ferkit: facial expression recognition (the 7 FER2013 emotions) - train, evaluate, classify."""


def main(argv: list[str] | None = None) -> None:
    """The console script: usage errors are one line on stderr (exit code 2), never a box or a traceback."""
    import sys

    try:  # Typer >= 0.2x carries its own copy of Click
        from typer._click import exceptions as click_errors
    except ImportError:
        from click import exceptions as click_errors

    try:
        code = app(args=argv, prog_name="ferkit", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        code = 0 if exc.ctx is None or exc.ctx.parent is None else 2
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "ferkit"
        typer.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        code = 2
    except click_errors.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
