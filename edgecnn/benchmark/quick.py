"""The short timing an export ends with: enough to name the file to ship on this CPU.

int8 is not faster than fp32 on every graph (onnxruntime has no int8 kernel or fusion for some
ops), so the file to ship is the fastest that passes every gate, measured, never assumed. The
export times each variant at batch 1 and 64 on one thread, in this process (batch 64 so that a
file that wins the call overhead but loses the arithmetic is not recommended), and keeps the
result as the export's ``bench.json``, from which the report page draws the same recommendation.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.benchmark.run import run_benchmark
from edgecnn.errors import EdgeCNNError
from edgecnn.results.bench import BenchResult, read_bench, write_bench
from edgecnn.store.locations import bench_result_path
from edgecnn.timing.measure import Budget
from edgecnn.timing.targets import resolve_targets

QUICK_BUDGET = Budget(warmup=10, runs=300, duration=0.3, min_runs=20, rounds=1)
QUICK_NOTE = "quick timing by edgecnn export (batch 1 and 64, one thread); edgecnn bench measures more"


def time_for_shipping(folder: Path, final: Path | None = None) -> BenchResult:
    """The export's ``bench.json`` when it timed these very files; else every variant in
    ``folder`` timed at batch 1 and 64 on one thread (onnxruntime, bare session and Predictor), written
    as its ``bench.json`` naming the files where they end up (``final``, for a staged export)."""
    path = bench_result_path(folder)
    if path.is_file():
        try:
            existing = read_bench(path)
        except EdgeCNNError:  # unreadable: replaced below, it describes nothing usable
            existing = None
        if existing is not None and existing.measured(folder):
            return existing
    result = run_benchmark(folder, targets=resolve_targets(["cpu-1t"]), batches=(1, 64), budget=QUICK_BUDGET,
                           keras_baseline=False, other_engines=False, cold=False)
    result.files = [str(Path(final or folder) / Path(f).name) for f in result.files]
    result.notes.append(QUICK_NOTE)
    write_bench(path, result)
    return result
