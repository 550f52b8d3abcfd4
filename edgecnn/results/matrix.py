"""The variant x CPU-class table of a report, as data: what each renderer draws.

The Markdown report, the terminal and the HTML page show the same matrix; deciding here which
classes are columns, in which order, how each column was measured and what state each cell is
in keeps the three from telling three stories.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecnn.results.bench import BenchResult, EngineName
from edgecnn.results.report import Cell, Place, Report, VariantRow
from edgecnn.runtime.isa import ISA_CLASSES


@dataclass(frozen=True)
class Column:
    """One row of the report as a column: ``row`` is its key (a CPU class, or a device's name),
    ``isa`` the class it stands for, ``how`` native (this machine), emulated (qemu), device (an
    SSH device, natively) or None: carried (an earlier run's, measured at ``measured_at``)."""

    row: str
    how: Place | None  # None: carried
    isa: str
    measured_at: str | None = None

    @property
    def label(self) -> str:
        """The column's heading in words."""
        if self.how is None:
            return f"{self.row} (earlier run{f', {self.measured_at[:10]}' if self.measured_at else ''})"
        if self.how == Place.DEVICE:
            return f"{self.row} ({self.isa}, device)"
        return self.row if self.how == Place.NATIVE else f"{self.row} (emulated)"

    @property
    def short(self) -> str:
        """The heading where room is short: ``*`` marks a column not measured natively now."""
        if self.how == Place.DEVICE:
            return f"{self.row} ({self.isa})"
        return self.row if self.how == Place.NATIVE else f"{self.row}*"


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
    """The measured rows: classes in the order of :data:`ISA_CLASSES`, then devices and others."""
    rows = [r for r in ISA_CLASSES if r in report.isa_rows]
    rows += [r for r in report.isa_rows if r not in ISA_CLASSES]
    out = []
    for row in rows:
        cell = next((v.by_isa[row] for v in report.variants if row in v.by_isa), None)
        device = report.devices.get(row)
        isa = device.isa if device else (cell.isa if cell and cell.isa else row)
        if row == report.machine.native_row:
            out.append(Column(row, Place.NATIVE, isa))
        elif cell is not None and cell.carried:
            out.append(Column(row, None, isa, cell.measured_at))
        elif device is not None or (cell is not None and cell.how == Place.DEVICE):
            out.append(Column(row, Place.DEVICE, isa))
        else:
            out.append(Column(row, Place.EMULATED, isa))
    return out


def entries(report: Report) -> list[tuple[VariantRow, list[Entry]]]:
    """Each variant with its cells, one per column of :func:`columns`."""
    cols = columns(report)
    return [(v, [Entry(v.by_isa.get(c.row)) for c in cols]) for v in report.variants]


def emulated_images(report: Report) -> int | None:
    """The images each emulated cell of this run measured on its own (not taking another row's
    outputs); None when none was."""
    counts = [c.images for v in report.variants for c in v.by_isa.values()
              if c.emulated and not c.carried and c.same_as is None]
    return counts[0] if counts else None


def how_decided(report: Report) -> list[tuple[str, list[tuple[str, str]]]]:
    """For each emulated column of this run, how each variant's cell there was decided (its own
    images, or the outputs of the row it computed the same as), in words."""
    out = []
    for col in columns(report):
        if col.how != Place.EMULATED:
            continue
        words = [(v.variant, c.decided) for v in report.variants
                 if (c := v.by_isa.get(col.row)) is not None and c.decided]
        if words:
            out.append((col.row, words))
    return out


def recommendation(report: Report, row: str, p50_ms: dict[str, float] | None = None,
                   p50_64: dict[str, float] | None = None) -> tuple[VariantRow | None, float | None]:
    """The file to ship to ``row`` (a class or a device): of the variants that pass every gate
    there, the fastest by ``p50_ms`` (variant -> batch-1 latency measured on such a CPU) when
    given, else the int8 file (the smallest), else the first. (None, None) when none passes.

    A variant timed slower than fp32 at batch 64 (``p50_64``) is not recommended however fast it
    is at batch 1: the file to ship must not lose to the exact export at any batch size (an int8
    graph can win the call overhead at batch 1 and lose the arithmetic at 64).
    """
    passing = [v for v in report.variants if (c := v.by_isa.get(row)) is not None and c.counts and c.passed]
    if not passing:
        return None, None
    slower = slower_than_fp32(p50_64)
    timed = [(v, p50_ms[v.variant]) for v in passing if p50_ms and v.variant in p50_ms
             and v.variant not in slower]
    if timed:
        return min(timed, key=lambda vt: vt[1])
    return next((v for v in passing if v.variant == "int8"), passing[0]), None


def slower_than_fp32(p50_64: dict[str, float] | None) -> list[str]:
    """The variants ``p50_64`` times slower than fp32 (none when fp32 was not timed)."""
    if not p50_64 or "fp32" not in p50_64:
        return []
    return [v for v, ms in p50_64.items() if ms > p50_64["fp32"]]


def one_thread_latency(report: Report, bench: BenchResult | None, batch: int = 1
                       ) -> tuple[str | None, dict[str, float] | None]:
    """The one-thread CPU target of ``bench`` (what an edge device runs) and each variant's p50
    at ``batch`` there (bare onnxruntime session): what recommendations are made by."""
    target = next((t.name for t in (bench.targets if bench else []) if t.provider == "cpu" and t.threads == 1),
                  None)
    if bench is None or target is None:
        return None, None
    return target, {v.variant: ms for v in report.variants
                    if (ms := bench.p50(engine=EngineName.ONNXRUNTIME, variant=v.variant, target=target, batch=batch))}
