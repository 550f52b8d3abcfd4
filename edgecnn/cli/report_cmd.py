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
        help="Benchmark result to show (default bench/results/NAME.json when it exists).")] = None,
) -> None:
    """Rebuild an export's report.html: which file for which CPU, accuracy x latency."""
    from edgecnn.report_page import write_report_page

    folder = Path(model) if Path(model).is_dir() else Path("exported") / model
    typer.echo(f"Wrote {write_report_page(folder, bench_json)}")
