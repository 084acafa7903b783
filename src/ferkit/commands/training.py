"""``ferkit train``, ``calibrate``, ``finetune``, ``export`` and ``ensemble``: making and shipping models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferkit.commands.options import PhotoScalesOpt, fail, need_torch
from ferkit.weights import DEFAULT_DETECTOR


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
                                                 "the same --model, or a pretrained backbone: faceres-deep for "
                                                 "--model faceres) instead of random ones.")] = None,
    framing: Annotated[str, typer.Option(metavar="box|align", help="How every face is framed, in training and then by every command "
                                         "that runs the model: box (from the detector's box) or align (5 "
                                         "landmarks onto a template, FER2013's faces included).")] = "box",
    logit_adjust: Annotated[Optional[float], typer.Option(help="Logit-adjusted loss tau (0: off; 1: the classes "
                                                           "count equally, Menon et al. 2021).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model family (see `ferkit models`).")] = "seed",
    preset: Annotated[str, typer.Option(metavar="paper|paper-aug|fast|accurate|finetune", help="Training recipe: paper (the paper's), paper-aug (+ flips and shifts), "
                                        "fast (BN VGG, one-cycle SGD), accurate (fast for 60 epochs) or finetune "
                                        "(a pretrained backbone: AdamW, cosine).")] = "paper",
    labels: Annotated[str, typer.Option(metavar="fer2013|ferplus-majority|ferplus-votes|mixed", help="Labels to train on: fer2013 (the CSV's), ferplus-majority or ferplus-votes "
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
    optimizer: Annotated[Optional[str], typer.Option(metavar="adam|adamw|sgd", help="adam, adamw or sgd (Nesterov).")] = None,
    backbone_lr: Annotated[Optional[float], typer.Option(min=0.0, help="A pretrained backbone's learning rate as a "
                                                         "share of --lr (the new head gets --lr).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay.")] = None,
    schedule: Annotated[Optional[str], typer.Option(metavar="constant|onecycle|cosine", help="constant, onecycle (warm-up, then linear decay) or cosine "
                                                    "(warm-up, then cosine decay).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Label smoothing of the cross-entropy.")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment",
                                                    help="Batched flip/rotate/zoom/shift/erase augmentation.")] = None,
    aug_photo: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="With --augment: probability of each "
                                                       "photo degradation per face (blur, downscale-upscale, lighting, "
                                                       "noise; 0: off).")] = None,
    aug_colour: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="With --augment, colour models: "
                                                        "probability of colour jitter per face (and a quarter of it "
                                                        "of a grey face; 0: off).")] = None,
    ema: Annotated[Optional[float], typer.Option(help="EMA decay of the weights (0: off).")] = None,
    mixup: Annotated[Optional[float], typer.Option(help="Mixup Beta(alpha, alpha) parameter (0: off).")] = None,
    class_weight: Annotated[Optional[str], typer.Option(metavar="none|inverse|sqrt-inverse", help="none, inverse or sqrt-inverse class weights.")] = None,
    distill: Annotated[Optional[str], typer.Option(
        help="Knowledge distillation from this teacher (shipped model name, .safetensors or an ensemble: "
             "NAME.ensemble.json or a shipped one, e.g. fer-ens3).")] = None,
    distill_alpha: Annotated[Optional[float], typer.Option(help="Weight of the distillation term (0-1).")] = None,
    distill_t: Annotated[Optional[float], typer.Option(help="Distillation softmax temperature.")] = None,
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Flip test-time augmentation when evaluating.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (a run is deterministic for a seed).")] = 0,
    precision: Annotated[str, typer.Option(metavar="auto|bf16|fp32", help="auto (bf16 where the CPU has it natively), bf16 or fp32.")] = "auto",
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format (faster oneDNN convs).")] = True,
    device: Annotated[str, typer.Option(metavar="cpu|cuda", help="cpu, or cuda for experiments on a GPU.")] = "cpu",
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch.")] = True,
    time_budget: Annotated[float, typer.Option(min=0.0, help="Stop after this many minutes of training (0: no limit).")] = 0.0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch (default: all cores).")] = None,
    nproc: Annotated[int, typer.Option(min=1, help="Data-parallel processes on this machine (DistributedDataParallel: "
                                       "gloo on CPUs, NCCL with --device cuda, one GPU each); each takes --batch-size "
                                       "faces per step. The same as torchrun --nproc-per-node N -m ferkit.train.")] = 1,
) -> None:
    """Train a model on FER2013's Training rows and any labelled face-crop folders (--data, repeatable).

    Checkpoints every epoch; Ctrl-C or SIGTERM saves and stops; --resume continues. Examples:

    \b
        ferkit train --data fer2013.csv.gz --model seed --preset paper \\
            --out runs/seed
        ferkit train --data fer2013.csv.gz --data rafdb/ --model faceres \\
            --init faceres-deep --preset finetune --out runs/faceres
    """
    need_torch("train")
    from ferkit.data.fer2013 import DataError
    from ferkit.core.provenance import command_line
    from ferkit.train import config_from_sources, run_training

    try:
        cfg = config_from_sources(preset, data, source_weight=source_weight, out=str(out), holdout=holdout,
                                  init=init or "", logit_adjust=logit_adjust, framing=framing, model=model,
                                  epochs=epochs, batch_size=batch_size, labels=labels,
                                  ferplus=str(ferplus) if ferplus else "", preprocessing=preprocessing, lr=lr,
                                  patience=patience, optimizer=optimizer, backbone_lr=backbone_lr, weight_decay=weight_decay,
                                  schedule=schedule, aug_colour=aug_colour,
                                  label_smoothing=label_smoothing, augment=augment, aug_photo=aug_photo, ema=ema,
                                  mixup=mixup, class_weight=class_weight, distill=distill, distill_alpha=distill_alpha,
                                  distill_t=distill_t, tta=tta, val_fraction=val_fraction, seed=seed,
                                  precision=precision, channels_last=channels_last, device=device,
                                  time_budget_min=time_budget, command=command_line())
        results = run_training(cfg, nproc=nproc, resume=resume, progress=progress, threads=threads)
    except (KeyError, ValueError, DataError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    if results["status"] == "interrupted":
        raise typer.Exit(130)


def calibrate(
    weights: Annotated[Path, typer.Argument(help="A run's model.safetensors (rewritten with the temperature).")],
    data: Annotated[Path, typer.Option(help="The FER2013 data the run trained on (CSV, folder export or .npz); the "
                                       "run's crop folders are read from its metadata.")],
    split: Annotated[str, typer.Option(help="Split on which ECE is reported before and after (never fitted on).")] = "PublicTest",
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Set whether inference averages in the "
                                                "mirrored face (default: the run's choice); the fit is for that path.")] = None,
) -> None:
    """Fit a softmax temperature on the run's held-out faces and store it in the weights: its slice of FER2013's
    Training rows and the validation part of each face-crop folder it trained on.

    Predictions do not change (argmax is kept); the probabilities become calibrated. `ferkit export`
    carries the temperature into the shipped files and every inference path applies it.
    """
    need_torch("calibrate")
    from ferkit.analysis.calibrate import calibrate_weights
    from ferkit.data.fer2013 import DataError, canonical_split, load_fer2013
    from ferkit.weights import WeightsError

    try:
        calibrate_weights(weights, load_fer2013(data), split=canonical_split(split), tta=tta, log=typer.echo)
    except (DataError, WeightsError, ValueError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))


def finetune(
    data: Annotated[Path, typer.Argument(help="Your labelled photos: <emotion>/*.jpg folders, or a folder with "
                                         "labels.csv (path,face,x,y,w,h,emotion) as `evaluate --photos` reads.")],
    out: Annotated[Path, typer.Option(help="Model folder to write (model.onnx, model.safetensors, finetune.json, "
                                      "skipped.csv); use it with --model OUT.")],
    base: Annotated[Optional[str], typer.Option(help="Model to start from: a shipped name, a .safetensors file or a "
                                                "model folder (default: the shipped default).")] = None,
    layers: Annotated[str, typer.Option(metavar="head|all", help="head (the last layer only: seconds) or all (every layer, small learning "
                                        "rate: minutes).")] = "head",
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs (head: 200, all: 30).")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate (head: 0.01, all: 1e-4).")] = None,
    patience: Annotated[Optional[int], typer.Option(min=1, help="Early stopping: epochs without a better held-out "
                                                    "accuracy (head: 40, all: 8).")] = None,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of each emotion's photos held out for "
                                                "early stopping and calibration.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the training.")] = 0,
    detector: Annotated[str, typer.Option(help="Face detector: centerface-int8 (int8, the default) or centerface "
                                          "(fp32).")] = DEFAULT_DETECTOR,
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees each photo downscaled to this "
                                          "many pixels per side, as `predict` does (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar while detecting (on stderr).")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the model in an --out folder that holds "
                                            "one (refused otherwise).")] = False,
) -> None:
    """Fine-tune a model on your own labelled photos, on a CPU.

    Faces are found and framed exactly as `predict` does (cached); part of each emotion's photos is held out
    to choose the epoch and fit the temperature. Photos without a face or with an unreadable file are
    listed (and in skipped.csv), never silently dropped. Example:

        ferkit finetune my_photos/ --out my-model/ && ferkit predict --model my-model/ photo.jpg
    """
    need_torch("finetune")
    from ferkit.adapt import LAYERS, check_model_folder
    from ferkit.adapt import finetune as run_finetune
    from ferkit.data.fer2013 import DataError
    from ferkit.pipeline.outputs import OutputError
    from ferkit.core.provenance import command_line
    from ferkit.weights import WeightsError

    if layers not in LAYERS:  # a usage error: exit 2, as every other bad option value
        fail(f"unknown --layers {layers!r}; expected one of {', '.join(LAYERS)}", 2)
    try:
        check_model_folder(out, overwrite)
    except OutputError as exc:
        fail(str(exc), 2)
    try:
        run_finetune(data, out, base=base, layers=layers, epochs=epochs, lr=lr, patience=patience,
                     val_fraction=val_fraction, seed=seed, detector=detector, max_side=max_side, scales=scales,
                     command=command_line(), log=typer.echo, progress=progress, overwrite=overwrite)
    except (DataError, WeightsError, ValueError, KeyError, OSError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))


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
                                       "(benchmarks/compare_models.py, then tools/record_quantized.py).")] = False,
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
    from ferkit.data.fer2013 import DataError
    from ferkit.analysis.export import check_calibration, export_model
    from ferkit.weights import WEIGHTS_DIR, WeightsError

    if (out is None) == (not into_package):
        fail("give --out DIR, or --into-package to ship the model inside ferkit", 2)
    if int8 and not calibration:
        fail("--int8 needs --calibration DATA: training faces (a FER2013 file or a labelled crop folder) to read "
             "activation ranges from", 2)
    if calibration and not int8:
        fail("--calibration is for --int8 (the faces int8 quantization reads its ranges from); add --int8", 2)
    try:
        check_calibration(calibration)
    except WeightsError as exc:
        fail(str(exc), 2)
    try:
        entries = export_model(weights, name, WEIGHTS_DIR if into_package else out, int8=int8,
                               calibration=calibration, calibration_count=calibration_faces)
    except (WeightsError, DataError, OSError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(entries if int8 else entries[name], indent=2))


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
    from ferkit.data.fer2013 import DataError
    from ferkit.analysis.ensemble import build_ensemble
    from ferkit.core.provenance import command_line
    from ferkit.weights import WEIGHTS_DIR, WeightsError

    if (out is None) == (not into_package):
        fail("give --out DIR, or --into-package to ship the ensemble inside ferkit", 2)
    if combine not in ("log-mean", "mean"):
        fail(f"--combine must be log-mean or mean, not {combine!r}", 2)
    try:
        path, entry, measured = build_ensemble(members, name, WEIGHTS_DIR if into_package else out, weights=weights,
                                               combine=combine, data=data, split=split, command=command_line())
    except (WeightsError, DataError, ValueError, OSError) as exc:
        fail(str(exc))
    if measured is not None:
        typer.echo(f"{split}: accuracy {measured['accuracy'] * 100:.2f}%, ECE {measured['ece'] * 100:.2f}% "
                   f"({measured['faces']} faces)")
    typer.echo(f"wrote {path}")
    typer.echo(json.dumps(entry, indent=2))
