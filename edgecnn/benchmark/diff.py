"""Ratios between two saved bench result files (two machines, two versions, two settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.results.bench import BenchResult, read_bench


@dataclass(frozen=True)
class Ratio:
    """One configuration present in both results: B's p50 and throughput over A's."""

    target: str
    engine: str
    variant: str
    batch: int
    a_p50_ms: float
    b_p50_ms: float
    p50_ratio: float
    throughput_ratio: float


def where(result: BenchResult) -> str:
    """Where a result's onnxruntime rows were timed, in words: the device or the machine."""
    m = result.machine
    on = f"device {result.device.name} ({result.device.address}): " if result.device else ""
    return f"{on}{m.cpu}, {m.cores} cores, {m.isa or 'class unknown'}, onnxruntime {m.versions.get('onnxruntime', '?')}"


def diff_results(a_path: str | Path, b_path: str | Path) -> list[Ratio]:
    """Rows present in both files with ``b / a`` ratios of p50 latency and throughput."""
    a, b = read_bench(a_path), read_bench(b_path)
    index = {(r.target, r.engine, r.variant, r.batch): r for r in a.results}
    ratios = []
    for r in b.results:
        base = index.get((r.target, r.engine, r.variant, r.batch))
        if base is not None:
            ratios.append(Ratio(r.target, r.engine, r.variant, r.batch, base.p50_ms, r.p50_ms,
                                r.p50_ms / base.p50_ms, r.throughput_ips / base.throughput_ips))
    if not ratios:
        raise EdgeCNNError(f"{a_path} and {b_path} share no (target, engine, variant, batch) rows.")
    return ratios
