"""Terminal rendering of a validation report."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['model']}: {report['test_images']} test images of "
                  f"{report['dataset']} (Keras accuracy {report['keras_accuracy']:.4f})")
    for column in ("variant", "size", "×", "accuracy", "Δ pp", "agreement", "max |Δp|", "gate"):
        table.add_column(column, justify="left" if column in ("variant", "gate") else "right")
    for v in report["variants"]:
        table.add_row(
            v["variant"], f"{v['size_bytes'] / 1024:.0f} KiB", f"{v['compression']:.2f}",
            f"{v['accuracy']:.4f}", f"{v['accuracy_delta'] * 100:+.2f}", f"{v['agreement']:.4f}",
            f"{v['max_abs_diff']:.1e}",
            "[green]pass[/]" if v["passed"] else f"[red]FAIL[/] ({v['gate']})",
        )
    console = Console()
    console.print(table)
    for v in report["variants"]:
        if v["classes_called_out"]:
            console.print(f"{v['file']}: classes losing more than average: "
                          + ", ".join(v["classes_called_out"]))
        if v.get("layer_drift"):
            worst = ", ".join(f"{d['tensor']} ({d['sqnr_db']:.1f} dB)" for d in v["layer_drift"][:5])
            console.print(f"{v['file']}: layers drifting most from fp32 (lowest SQNR): {worst}")
