"""``edgecnn doctor``: what this machine can run, and why not."""

from __future__ import annotations

from typing import Annotated

import typer


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Python and package versions, the CPU class, emulated CPU classes, headless Chromium, and
    every onnxruntime execution provider with the exact reason it cannot start (a missing shared
    library, no NVIDIA driver, no CUDA device, a driver too old). Always exits 0."""
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from edgecnn.doctor import as_json as checks_json
    from edgecnn.doctor import doctor as run_checks

    checks = run_checks()
    if as_json:
        typer.echo(json.dumps(checks_json(checks), indent=2))
        return
    table = Table(title="edgecnn doctor: what this machine can run")
    for column in ("area", "name", "", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.area, escape(c.name), "[green]yes[/]" if c.ok else "[red]no[/]",
                      escape(c.detail))
    Console().print(table)
