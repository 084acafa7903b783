"""What several commands share: option types, and the checks that end a command in one line on stderr."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

# Help is plain text (cli.py: rich_markup_mode=None, so it wraps to the terminal): brackets need no escaping.

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Shipped model name, an .onnx file, a .safetensors file (a run's model.safetensors) or a model folder (ferkit finetune's); default: the shipped default model.")]


MinConfidenceOpt = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Abstain: a face whose top calibrated probability (in video: smoothed) is under this gets "
    "the emotion `uncertain` instead of a guess (0: never; the coverage/accuracy table to choose it: docs/photos.md).")]


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


def fail(message: str, code: int = 1) -> None:
    """End the command: ``error: message`` on stderr, exit ``code`` (1: the work failed; 2: a usage error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def need_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(f"`ferkit {what}` needs PyTorch: pip install 'ferkit[train]'")


def check_outputs(*outputs) -> None:
    """Fail in one line (exit 2) before any work when an output (value, option[, is a folder]) cannot be written."""
    from ferkit.pipeline.outputs import OutputError, check_writable

    for target, option, *folder in outputs:
        try:
            check_writable(target, folder=bool(folder and folder[0]), what=option)
        except OutputError as exc:
            fail(str(exc), 2)


def need_extras(plot=None, group_people: bool = False) -> None:
    """``--plot`` (matplotlib) and ``--group-people`` (SciPy): fail in one line (exit 1) before any work when the
    library the option needs is missing."""
    try:
        if plot is not None:
            from ferkit.pipeline.charts import need_matplotlib

            need_matplotlib()
        if group_people:
            from ferkit.runtime.identity import need_scipy

            need_scipy()
    except ImportError as exc:
        fail(str(exc))


def check_ray(engine: str, conflicting: bool, conflict: str, out, out_format: str) -> None:
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


def open_records(json_file: str | None, jsonl_file: str | None, csv_file: str | None):
    """The :class:`~ferkit.pipeline.outputs.RecordWriter` of --json/--jsonl/--csv; fails in one line (exit 2) when one of
    them cannot be written."""
    from ferkit.pipeline.outputs import OutputError, RecordWriter

    try:
        return RecordWriter(json=json_file, jsonl=jsonl_file, csv=csv_file)
    except (OutputError, OSError) as exc:
        fail(str(exc), 2)
