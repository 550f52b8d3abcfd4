"""``edgecnn zoo``: list the reference convnets."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edgecnn.store.locations import EXPORTS


def zoo(
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'mnist-*'."),
    exported: Path = typer.Option(EXPORTS, help="Where exports are looked for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the zoo models: dataset, size, the tutorial's result and, where an export exists,
    the accuracy measured for it."""
    from edgecnn.zoo import get_spec, list_models

    specs = [get_spec(name) for name in list_models(pattern)]
    measured = {s.name: _measured(exported / s.name) for s in specs}
    if as_json:
        rows = [
            {"name": s.name, "dataset": s.dataset, "params": s.params,
             "input_shape": list(s.input_shape), "tutorial_result": s.tutorial_result,
             "source": s.source, "description": s.description, "export": measured[s.name]}
            for s in specs
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("model", "params", "input", "tutorial result (dataset)",
                  "exported: Keras / int8 accuracy (dataset, test images)", "architecture")
    for s in specs:
        m = measured[s.name]
        export = "—" if m is None else "unreadable report" if m.get("unreadable") else (
            f"stale report: {', '.join(m['stale'])} changed since validation" if m.get("stale") else
            f"{m['keras_accuracy']:.4f} / {m['int8_accuracy']:.4f} ({m['dataset']}, {m['test_images']:,})"
            if m.get("int8_accuracy") is not None else
            f"{m['keras_accuracy']:.4f} ({m['dataset']}, {m['test_images']:,})")
        table.add_row(s.name, f"{s.params:,}", "×".join(map(str, s.input_shape)),
                      f"{s.tutorial_result} ({s.dataset})", export, s.description)
    Console(width=200).print(table)


def _measured(folder: Path) -> dict | None:
    """The headline numbers of an export's report, None when there is none, ``stale`` instead
    of numbers when its files changed since it was written, ``unreadable`` with the reason."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.results.evidence import changed_files
    from edgecnn.results.report import REPORT_JSON, read_report

    if not (folder / REPORT_JSON).is_file():
        return None
    try:
        report = read_report(folder)
    except EdgeCNNError as exc:  # say so, rather than show it as never exported
        return {"folder": str(folder), "unreadable": str(exc)}
    stale = changed_files(folder, report)
    if stale:  # it describes other files: no numbers rather than wrong ones
        return {"folder": str(folder), "stale": stale}
    int8 = report.variant("int8")
    return {"folder": str(folder), "dataset": report.dataset, "test_images": report.test_images,
            "keras_accuracy": report.keras_accuracy,
            "int8_accuracy": int8.accuracy if int8 else None, "passed": report.passed}
