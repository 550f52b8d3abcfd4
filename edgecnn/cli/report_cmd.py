"""``edgecnn report``: rebuild an export's report page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.defaults import DEFAULT_MODEL


def report(
    model: Annotated[str, typer.Argument(
        help="Zoo name (exported/NAME) or export folder.")] = DEFAULT_MODEL,
    bench_json: Annotated[Optional[Path], typer.Option(
        "--bench", exists=True, dir_okay=False,
        help="Benchmark result to show (default: the export's bench.json, which edgecnn bench writes).")] = None,
) -> None:
    """Rebuild an export's report.html: which file for which CPU, accuracy x latency."""
    from edgecnn.results.page import write_report_page
    from edgecnn.store.locations import export_folder

    folder = export_folder(model)
    typer.echo(f"Wrote {write_report_page(folder, bench_json)}")
