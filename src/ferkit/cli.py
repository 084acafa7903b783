"""The ``ferkit`` command: parsing and printing only; the work is done by the modules it calls."""

from __future__ import annotations

import json
import sys
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
    "--model", "-m", help="Shipped model name or a .safetensors file; default: the shipped default model.")]


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
    data: Annotated[Path, typer.Option(help="FER2013 CSV (.csv/.csv.gz) or per-image folder export.")],
    out: Annotated[Path, typer.Option(help="Run folder: config, metrics.jsonl, checkpoint.pt, model.safetensors.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model family (see `ferkit models`).")] = "seed",
    preset: Annotated[str, typer.Option(help="Training recipe; `paper` is the paper's.")] = "paper",
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs (preset's if not given).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Mini-batch size.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early stopping: epochs without a better val accuracy.")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of Training held out for early stopping.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (a run is deterministic for a seed).")] = 0,
    precision: Annotated[str, typer.Option(help="auto (bf16 where the CPU has it natively), bf16 or fp32.")] = "auto",
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format (faster oneDNN convs).")] = True,
    time_budget: Annotated[float, typer.Option(help="Stop after this many minutes of training (0: no limit).")] = 0.0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for PyTorch (default: all cores).")] = None,
) -> None:
    """Train a model on the Training rows of a FER2013 data set.

    Checkpoints every epoch; Ctrl-C or SIGTERM saves and stops; --resume continues. Example:

        ferkit train --data fer2013.csv.gz --model seed --preset paper --out runs/seed
    """
    need_torch("train")
    import torch

    from ferkit.data import DataError
    from ferkit.train import command_line, make_config, train as run_training

    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = make_config(preset, data=str(data), out=str(out), model=model, epochs=epochs, batch_size=batch_size,
                          lr=lr, patience=patience, val_fraction=val_fraction, seed=seed, precision=precision,
                          channels_last=channels_last, time_budget_min=time_budget, command=command_line())
        results = run_training(cfg, resume=resume)
    except (KeyError, ValueError, DataError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    if results["status"] == "interrupted":
        raise typer.Exit(130)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
