"""What ``quantize``, ``validate`` and ``export`` print besides the report, and their exit."""

from __future__ import annotations

from typing import Any

import typer

from edgecnn.errors import GateFailedError


def print_quantized(results: list[Any]) -> None:
    """One line per variant written by ``edgecnn.quantize.quantize.quantize``."""
    for q in results:
        if q.failure:
            why = "int8 is not required" if q.variant == "int8" else "the other variants are kept"
            typer.secho(f"{q.variant:>8}: no file written ({why}): {q.failure}", fg="yellow")
            continue
        typer.echo(f"{q.variant:>8}: {q.path} ({q.size_bytes / 1024:.0f} KiB"
                   f"{'' if q.written else ', up to date'})")


def raise_if_failed(report: Any) -> None:
    """Exit with the gate-failure code when validation's verdict found a failure, naming it."""
    if not report.passed:
        raise GateFailedError(f"accuracy gate broken: {'; '.join(report.failures)}")
