"""Terminal rendering of quantization results and validation reports."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from edgecnn.errors import GateFailedError


def print_quantized(results: list[Any]) -> None:
    """One line per variant written by ``edgecnn.quantize.quantize``."""
    for q in results:
        if q.failure:
            typer.secho(f"{q.mode:>8}: no file written (int8 is not required): {q.failure}", fg="yellow")
            continue
        typer.echo(f"{q.mode:>8}: {q.path} ({q.size_bytes / 1024:.0f} KiB"
                   f"{'' if q.written else ', up to date'})")


def raise_if_failed(report: dict[str, Any]) -> None:
    """Exit with the gate-failure code when validation's verdict found a failure, naming it."""
    if not report["passed"]:
        raise GateFailedError(f"accuracy gate broken: {'; '.join(report['failures'])}")


def _status(variant: dict[str, Any], report: dict[str, Any]) -> str:
    if variant["passed"]:
        return "[green]pass[/]"
    where = ", ".join(variant["failed_on"])
    if variant["variant"] in report.get("not_for", {}):
        return f"[yellow]not for[/] {where}"
    return f"[red]FAIL[/] {where or variant['gate']}"


def _safe(text: object) -> str:
    """Untrusted text for rich: control characters escaped, markup brackets taken literally."""
    from rich.markup import escape

    from edgecnn.display import visible

    return escape(visible(text))


def _cell(m: dict[str, Any] | None) -> str:
    from edgecnn.evidence import counts

    if m is None:
        return "—"
    text = f"{m['accuracy']:.4f} ({m['accuracy_delta'] * 100:+.2f})" + ("" if m["passed"] else " [red]FAIL[/]")
    if m.get("carried"):
        text += f" [dim]{str(m.get('measured_at'))[:10]}{'' if counts(m) else ' outdated'}[/]"
    return text


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=_safe(f"{report['model']}: {report['test_images']} test images of "
                              f"{report['dataset']}") + f" (Keras accuracy {report['keras_accuracy']:.4f})")
    for column in ("variant", "size", "×", "accuracy", "Δ pp", "agreement", "max |Δp|", "gate"):
        table.add_column(column, justify="left" if column in ("variant", "gate") else "right")
    for v in report["variants"]:
        table.add_row(
            v["variant"], f"{v['size_bytes'] / 1024:.0f} KiB", f"{v['compression']:.2f}",
            f"{v['accuracy']:.4f}", f"{v['accuracy_delta'] * 100:+.2f}", f"{v['agreement']:.4f}",
            f"{v['max_abs_diff']:.1e}",
            _status(v, report),
        )
    console = Console()
    console.print(table)
    for warning in report.get("warnings", []):
        console.print(f"[bold red]WARNING:[/] {_safe(warning)}")
    for variant, rows in report.get("not_for", {}).items():
        console.print(f"[yellow]{variant} is not for {', '.join(rows)}[/]: it breaks a gate there "
                      f"(not a required variant: {', '.join(report['required'])}; --require adds it)")
    rows = report.get("isa_rows", [])
    if len(rows) > 1:
        native = report["machine"]["native_row"]
        matrix = Table(title="accuracy (Δ pp vs Keras) per instruction-set class; * = emulated")
        matrix.add_column("variant")
        for r in rows:
            matrix.add_column(r if r == native else f"{r}*", justify="right")
        for v in report["variants"]:
            matrix.add_row(v["variant"], *(_cell(v["by_isa"].get(r)) for r in rows))
        console.print(matrix)
    for isa_name, reason in report.get("isa_not_measured", {}).items():
        console.print(f"{isa_name}: not measured ({reason})")
    for v in report["variants"]:
        if v["classes_called_out"]:
            console.print(f"{v['file']}: classes losing more than average: "
                          + _safe(", ".join(v["classes_called_out"])))
        if v.get("layer_drift"):
            worst = ", ".join(f"{d['tensor']} ({d['sqnr_db']:.1f} dB)" for d in v["layer_drift"][:5])
            console.print(f"{v['file']}: layers drifting most from fp32 (lowest SQNR): {_safe(worst)}")
