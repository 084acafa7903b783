"""``ferkit models``, ``summary``, ``data info|pack``, ``evaluate`` and ``visualize``: looking at models and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferkit.commands.options import ModelOpt, PhotoScalesOpt, check_outputs, fail, need_torch
from ferkit.weights import DEFAULT_DETECTOR


def models_cmd() -> None:
    """List the registered model families and the shipped trained models."""
    from ferkit.analysis.catalog import describe_models

    for line in describe_models():
        typer.echo(line)


def summary(model: Annotated[str, typer.Argument(help="Registered model family, e.g. seed.")] = "seed") -> None:
    """Print a model's layer table: output shape (H, W, C) and parameters per layer, and the total."""
    need_torch("summary")
    from ferkit.models import create_model, input_spec
    from ferkit.models.summary import format_summary, summarize

    try:
        net = create_model(model)
    except KeyError as exc:
        fail(exc.args[0])
    spec = input_spec(model)  # the input the family is built for: 48x48 grey, or e.g. faceres' 112x112 RGB
    typer.echo(format_summary(summarize(net, (spec["size"], spec["size"]), spec["channels"]), f"model: {model}"))


def data_info(path: Annotated[Path, typer.Argument(help="FER2013 CSV (.csv/.csv.gz) or image folder export.")]) -> None:
    """Print the number of faces per split and emotion."""
    from ferkit.data.fer2013 import DataError, load_fer2013
    from ferkit.data.datainfo import count_table

    try:
        data = load_fer2013(path)
    except (DataError, ImportError) as exc:
        fail(str(exc))
    typer.echo(count_table(data, path))


def data_pack(
    path: Annotated[Path, typer.Argument(help="FER2013 CSV (.csv/.csv.gz) or image folder export.")],
    out: Annotated[Path, typer.Argument(help="The .npz file to write.")],
    splits: Annotated[Optional[list[str]], typer.Option("--split", help="Keep only these splits (repeatable).")] = None,
) -> None:
    """Pack a data set into one compressed .npz (uint8 arrays, no pickle) that every command reads directly."""
    from ferkit.data.fer2013 import DataError
    from ferkit.data.datainfo import pack

    try:
        data = pack(path, out, splits)
    except (DataError, ImportError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{out}: {len(data)} faces, {out.stat().st_size / 2**20:.1f} MiB")


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
    detector: Annotated[str, typer.Option(help="--photos: face detector.")] = DEFAULT_DETECTOR,
    max_side: Annotated[int, typer.Option(min=32, help="--photos: the detector's main pass sees the photo downscaled "
                                          "to this many pixels per side (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
    progress: Annotated[bool, typer.Option(help="--photos: show a progress bar while detecting (on stderr).")] = True,
) -> None:
    """Accuracy, top-2, per-class precision/recall/F1, confusion matrix, calibration and the 2nd-guess table,
    on a FER2013 split (--data) or on real photos (--photos).

    Shipped models and .onnx files run on onnxruntime; a .safetensors file runs on PyTorch.
    """
    from ferkit.data.fer2013 import DataError, load_fer2013
    from ferkit.analysis.evaluate import evaluate_model, format_report, need_metrics
    from ferkit.core.images import ImageError
    from ferkit.weights import WeightsError

    if (data is None) == (photos is None):
        fail("give --data (a FER2013 file) or --photos (a folder of labelled photos)", 2)
    check_outputs((json_out, "--json"))  # before the evaluation, not after it
    try:
        need_metrics()  # a core install: said before any data is read or any face detected
    except ImportError as exc:
        fail(str(exc))
    chosen = str(weights) if weights else model
    try:
        if photos is not None:
            from ferkit.analysis.photos import evaluate_photo_folder

            report = evaluate_photo_folder(photos, chosen, tta=tta, detector=detector, max_side=max_side,
                                           scales=scales, progress=progress)
            for error in report["unreadable"].values():
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
    from ferkit.data.fer2013 import DataError
    from ferkit.core.images import ImageError
    from ferkit.analysis.views import VIEWS, layer_list, render
    from ferkit.weights import WeightsError

    if what not in VIEWS:
        fail(f"unknown view {what!r}; expected one of {', '.join(VIEWS)}", 2)
    if out is None and not list_layers:  # a usage error (exit 2), found before any model or data is read
        fail("--out FILE.png is required (report: an .html file)", 2)
    check_outputs((out, "--out"))
    try:
        if list_layers:
            typer.echo("\n".join(layer_list(model)))
            return
        path = render(what, out, model=model, image=image, data=data, split=split, layer=layer, run=run,
                      report=report, emotion=emotion)
    except (DataError, WeightsError, ImageError, ValueError, FileNotFoundError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    typer.echo(f"wrote {path}")
