"""The ``ferkit`` command: parsing and printing only; the work is done by the modules it calls.

Each command lives in :mod:`ferkit.commands` (training, analysis, predict, video, serve) and calls one public function of the
module that does the work; this module puts them on one Typer app, in the order ``ferkit --help`` lists them, and
is the console script (:func:`main`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ferkit.commands import analysis, predict, serve, training, video

app = typer.Typer(
    help="ferkit: facial expression recognition (the 7 FER2013 emotions) - find and classify faces in photos "
         "(predict), videos and cameras (video), over HTTP (serve); train, evaluate, fine-tune.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: wraps to the terminal's width (rich's tables left a ~20-column description)
    context_settings={"max_content_width": 120},  # up to 120 columns where the terminal has them (click stops at 80)
)
data_app = typer.Typer(help="Inspect FER2013 data sets (challenge CSV or per-image folder export).",
                       no_args_is_help=True, rich_markup_mode=None, context_settings={"max_content_width": 120})
app.add_typer(data_app, name="data")

app.command()(training.train)
app.command("models")(analysis.models_cmd)
app.command()(analysis.summary)
data_app.command("info")(analysis.data_info)
data_app.command("pack")(analysis.data_pack)
app.command()(analysis.evaluate)
app.command()(training.calibrate)
app.command()(training.finetune)
app.command()(training.export)
app.command()(training.ensemble)
app.command()(predict.classify)
app.command()(predict.predict)
app.command()(video.video)
app.command()(analysis.visualize)
app.command()(serve.serve)


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
