"""``edgecnn zoo``: list the reference convnets."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table


def zoo(
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'mnist-*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the zoo models with their dataset, size and the tutorial's reported result."""
    from edgecnn.zoo import get_spec, list_models

    specs = [get_spec(name) for name in list_models(pattern)]
    if as_json:
        rows = [
            {"name": s.name, "dataset": s.dataset, "params": s.params,
             "input_shape": list(s.input_shape), "tutorial_result": s.tutorial_result,
             "source": s.source, "description": s.description}
            for s in specs
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("model", "dataset", "params", "input", "tutorial result", "architecture")
    for s in specs:
        table.add_row(s.name, s.dataset, f"{s.params:,}", "×".join(map(str, s.input_shape)),
                      s.tutorial_result, s.description)
    Console().print(table)
