"""The variant x CPU-class table of a report, as data: what each renderer draws.

The Markdown report, the terminal and the HTML page show the same matrix; deciding here which
classes are columns, in which order, how each column was measured and what state each cell is
in keeps the three from telling three stories.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecnn.results.report import Cell, Report, VariantRow
from edgecnn.runtime.isa import ISA_CLASSES


@dataclass(frozen=True)
class Column:
    """One CPU class: ``how`` is native (this machine), emulated (qemu) or carried (an earlier
    run's row, measured at ``measured_at``)."""

    isa: str
    how: str
    measured_at: str | None = None

    @property
    def label(self) -> str:
        """The column's heading in words."""
        if self.how == "carried":
            return f"{self.isa} (earlier run, {str(self.measured_at)[:10]})"
        return self.isa if self.how == "native" else f"{self.isa} (emulated)"


@dataclass(frozen=True)
class Entry:
    """One cell as shown: pass, fail, outdated (carried from other files) or missing."""

    cell: Cell | None

    @property
    def state(self) -> str:
        if self.cell is None:
            return "missing"
        if not self.cell.counts:
            return "outdated"
        return "pass" if self.cell.passed else "fail"


def columns(report: Report) -> list[Column]:
    """The measured classes, in the order of :data:`ISA_CLASSES` (others after them)."""
    rows = [r for r in ISA_CLASSES if r in report.isa_rows]
    rows += [r for r in report.isa_rows if r not in ISA_CLASSES]
    out = []
    for row in rows:
        cell = next((v.by_isa[row] for v in report.variants if row in v.by_isa), None)
        if row == report.machine.native_row:
            out.append(Column(row, "native"))
        elif cell is not None and cell.carried:
            out.append(Column(row, "carried", cell.measured_at))
        else:
            out.append(Column(row, "emulated"))
    return out


def entries(report: Report) -> list[tuple[VariantRow, list[Entry]]]:
    """Each variant with its cells, one per column of :func:`columns`."""
    cols = columns(report)
    return [(v, [Entry(v.by_isa.get(c.isa)) for c in cols]) for v in report.variants]


def emulated_images(report: Report) -> int | None:
    """The images each emulated row of this run measured; None when none was emulated."""
    counts = [c.images for v in report.variants for c in v.by_isa.values() if c.emulated and not c.carried]
    return counts[0] if counts else None


def recommendation(report: Report, isa: str, p50_ms: dict[str, float] | None = None
                   ) -> tuple[VariantRow | None, float | None]:
    """The file to ship to class ``isa``: of the variants that pass every gate there, the
    fastest by ``p50_ms`` (variant -> batch-1 latency measured on such a CPU) when given, else
    the int8 file (the smallest), else the first. (None, None) when none passes."""
    passing = [v for v in report.variants if (c := v.by_isa.get(isa)) is not None and c.counts and c.passed]
    if not passing:
        return None, None
    timed = [(v, p50_ms[v.variant]) for v in passing if p50_ms and v.variant in p50_ms]
    if timed:
        return min(timed, key=lambda vt: vt[1])
    return next((v for v in passing if v.variant == "int8"), passing[0]), None
