"""The ``edgecnn`` app: one module per command, joined here.

User errors (EdgeCNNError) become one line on stderr and exit code 1; a broken accuracy gate
exits with 3 so scripts can tell the two apart. Other exceptions are bugs and keep their
traceback.
"""

from __future__ import annotations

import logging
import signal
import sys

import typer
from typer.core import TyperGroup

from edgecnn import __version__
from edgecnn.cli import (
    bench_cmd,
    device_cmd,
    doctor_cmd,
    export_cmd,
    isa_cmd,
    predict_cmd,
    quantize_cmd,
    report_cmd,
    train_cmd,
    validate_cmd,
    zoo_cmd,
)
from edgecnn.display import visible
from edgecnn.errors import EdgeCNNError, GateFailedError, OverwriteRefusedError

EXIT_ERROR = 1
EXIT_GATE = 3


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GateFailedError as exc:
            typer.secho(f"FAILED: {visible(exc)}", err=True, fg="red")
            raise typer.Exit(EXIT_GATE) from None
        except OverwriteRefusedError as exc:
            typer.secho(f"error: {visible(exc)} (--force replaces it)", err=True, fg="red")
            raise typer.Exit(EXIT_ERROR) from None
        except EdgeCNNError as exc:
            typer.secho(f"error: {visible(exc)}", err=True, fg="red")
            raise typer.Exit(EXIT_ERROR) from None
        except OSError as exc:  # the machine, not the code: a disk full, a path refused, ...
            where = f" ({exc.filename})" if exc.filename else ""
            typer.secho(f"error: {visible(exc.strerror or exc)}{visible(where)}", err=True, fg="red")
            raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    cls=_Group,
    help="Take small Keras convnets to the edge: train, export to ONNX, quantize, validate, "
    "run and benchmark.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Take small Keras convnets to the edge."""


app.command("zoo")(zoo_cmd.zoo)
app.command("train")(train_cmd.train)
app.command("export")(export_cmd.export)
app.command("quantize")(quantize_cmd.quantize)
app.command("validate")(validate_cmd.validate)
app.command("predict")(predict_cmd.predict)
app.command("bench")(bench_cmd.bench)
app.command("bench-compare")(bench_cmd.bench_compare)
app.command("soak")(bench_cmd.soak)
app.command("isa")(isa_cmd.isa)
app.command("report")(report_cmd.report)
app.command("doctor")(doctor_cmd.doctor)
app.add_typer(device_cmd.app, name="device")


def _terminate(signum: int, _frame) -> None:
    # SIGTERM becomes SystemExit so that pending atomic writes remove their temporary files.
    sys.exit(128 + signum)


class _VisibleFormatter(logging.Formatter):
    """Progress lines quote class and file names: printed with control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    # The library reports progress through the "edgecnn" logger; the CLI shows it on stderr,
    # so that --json output on stdout stays clean.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_VisibleFormatter("%(message)s"))
    logger = logging.getLogger("edgecnn")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # TensorFlow configures the root logger, which would print it twice
    app()
