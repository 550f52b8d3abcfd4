"""The validation report on a terminal (rich tables), as ``validate`` and ``export`` end."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecnn.display import visible
from edgecnn.results.bench import BenchResult
from edgecnn.results.matrix import (
    Entry,
    columns,
    entries,
    how_decided,
    one_thread_latency,
    recommendation,
    slower_than_fp32,
)
from edgecnn.results.report import Report, VariantRow


def _safe(text: object) -> str:
    """Untrusted text for rich: control characters escaped, markup brackets taken literally."""
    return escape(visible(text))


def _status(variant: VariantRow, report: Report) -> str:
    if variant.passed:
        return "[green]pass[/]"
    where = _safe(", ".join(variant.failed_on))
    if variant.variant in report.not_for:
        return f"[yellow]not for[/] {where}"
    return f"[red]FAIL[/] {where or _safe(variant.gate)}"


def _cell(entry: Entry) -> str:
    m = entry.cell
    if m is None:
        return "—"
    text = f"{m.accuracy:.4f} ({m.accuracy_delta * 100:+.2f})" + ("" if m.passed else " [red]FAIL[/]")
    if m.carried:
        when = str(m.measured_at)[:10] if m.measured_at else "earlier"
        text += f" [dim]{_safe(when)}{'' if m.counts else ' outdated'}[/]"
    return text


def print_report(report: Report, console: Console | None = None) -> None:
    """The variants table, warnings, the class matrix and the classes that lose most."""
    # Wide enough that "not for arm64-dot, arm64-i8mm" is never cut, on a pipe as on a terminal.
    console = console or Console(width=max(Console().width, 140))
    table = Table(title=_safe(f"{report.model}: {report.test_images} test images of "
                              f"{report.dataset}") + f" (Keras accuracy {report.keras_accuracy:.4f})")
    for column in ("variant", "size", "compression", "accuracy", "Δ pp", "agreement", "max |Δp|", "status"):
        table.add_column(column, justify="left" if column in ("variant", "status") else "right")
    for v in report.variants:
        table.add_row(_safe(v.variant), f"{v.size_bytes / 1024:.0f} KiB", f"{v.compression:.2f}×",
                      f"{v.accuracy:.4f}", f"{v.accuracy_delta * 100:+.2f}", f"{v.agreement:.4f}",
                      f"{v.max_abs_diff:.1e}", _status(v, report))
    console.print(table)
    for warning in report.warnings:
        console.print(f"[bold red]WARNING:[/] {_safe(warning)}")
    for variant, rows in report.not_for.items():
        console.print(f"[yellow]{_safe(variant)} is not for {_safe(', '.join(rows))}[/]: it breaks a "
                      f"gate there (not a required variant: {', '.join(report.required)}; --require adds it)")
    cols = columns(report)
    if len(cols) > 1:
        matrix = Table(title="accuracy (Δ pp vs Keras) per instruction-set class and device; "
                             "* = emulated or earlier")
        matrix.add_column("variant")
        for c in cols:
            matrix.add_column(_safe(c.short), justify="right")
        for v, row in entries(report):
            matrix.add_row(_safe(v.variant), *(_cell(e) for e in row))
        console.print(matrix)
        for row, cells in how_decided(report):
            console.print(f"[dim]{_safe(row)}: " + "; ".join(f"{_safe(v)} {_safe(w)}" for v, w in cells) + "[/]")
    for isa_name, reason in report.isa_not_measured.items():
        console.print(f"{_safe(isa_name)}: not measured ({_safe(reason)})")
    for v in report.variants:
        if v.classes_called_out:
            console.print(f"{_safe(v.file)}: classes losing more than average: "
                          + _safe(", ".join(v.classes_called_out)))
        if v.layer_drift:
            worst = ", ".join(f"{d.tensor} ({d.sqnr_db:.1f} dB)" for d in v.layer_drift[:5])
            console.print(f"{_safe(v.file)}: layers drifting most from fp32 (lowest SQNR): {_safe(worst)}")


def ship_line(report: Report, bench: BenchResult | None, folder: Path) -> str:
    """The file to ship on this machine's CPU, as the report page recommends it: the fastest
    variant that passes every gate here, by batch-1 latency on one thread when it was timed, and
    not slower than fp32 at batch 64."""
    row = report.machine.native_row
    target, p50 = one_thread_latency(report, bench)
    p50_64 = one_thread_latency(report, bench, 64)[1]
    best, ms = recommendation(report, row, p50, p50_64)
    if best is None:
        return f"Ship on this CPU ({row}): none of these files (no variant passes every gate here)."
    line = f"Ship on this CPU ({row}): {folder / best.file}"
    if ms is None:
        return line + " (passes every gate here; its speed was not measured). Other CPUs: report.html."
    others = ", ".join(f"{v} {p:.4f} ms" for v, p in sorted(p50.items(), key=lambda kv: kv[1]) if v != best.variant)
    losing = [v for v in slower_than_fp32(p50_64) if p50.get(v, ms) < ms]
    caveat = (f" {', '.join(losing)} {'is' if len(losing) == 1 else 'are'} faster at batch 1 but slower than "
              "fp32 at batch 64, so not recommended." if losing else "")
    return (line + f": the fastest that passes every gate here, {ms:.4f} ms per image at batch 1 on one "
            f"thread ({target}; {others}).{caveat} Other CPUs: report.html.")
