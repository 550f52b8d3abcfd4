"""``edgecnn zoo``: list the reference convnets."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def zoo(
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'mnist-*'."),
    exported: Path = typer.Option(Path("exported"), help="Where exports are looked for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the zoo models: dataset, size, the tutorial's result and, where an export exists,
    the accuracy measured for it."""
    from edgecnn.zoo import get_spec, list_models

    specs = [get_spec(name) for name in list_models(pattern)]
    measured = {s.name: _measured(exported / s.name / "report.json") for s in specs}
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
        export = "—" if m is None else (
            f"stale report: {', '.join(m['stale'])} changed since validation" if m.get("stale") else
            f"{m['keras_accuracy']:.4f} / {m['int8_accuracy']:.4f} ({m['dataset']}, {m['test_images']:,})"
            if m.get("int8_accuracy") is not None else
            f"{m['keras_accuracy']:.4f} ({m['dataset']}, {m['test_images']:,})")
        table.add_row(s.name, f"{s.params:,}", "×".join(map(str, s.input_shape)),
                      f"{s.tutorial_result} ({s.dataset})", export, s.description)
    Console(width=200).print(table)


def _measured(report_path: Path) -> dict | None:
    """The headline numbers of an export's report, or None when there is no readable one
    (``stale`` instead of numbers when its files changed since it was written)."""
    from edgecnn.evidence import changed_files

    try:
        report = json.loads(report_path.read_text())
        int8 = next((v for v in report["variants"] if v["variant"] == "int8"), None)
        stale = changed_files(report_path.parent, report)
        if stale:  # it describes other files: no numbers rather than wrong ones
            return {"folder": str(report_path.parent), "stale": stale}
        return {"folder": str(report_path.parent), "dataset": report["dataset"],
                "test_images": report["test_images"], "keras_accuracy": report["keras_accuracy"],
                "int8_accuracy": int8["accuracy"] if int8 else None, "passed": report["passed"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
