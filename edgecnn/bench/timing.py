"""Timing one engine on one input: session creation, first run, then warm timed runs."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.bench.stats import summarize

RunFn = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Budget:
    """How long to measure: ``warmup`` untimed runs, then up to ``runs`` timed runs or
    ``duration`` seconds, whichever ends first, but never fewer than ``min_runs``."""

    warmup: int = 20
    runs: int = 300
    duration: float = 3.0
    min_runs: int = 10


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(make: Callable[[], RunFn], x: np.ndarray, budget: Budget) -> dict[str, Any]:
    """Create the engine, time its first run, warm it up, then time ``budget`` runs."""
    rss_before = rss_mb()
    started = time.perf_counter()
    run = make()
    session_s = time.perf_counter() - started
    started = time.perf_counter()
    run(x)
    first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(budget.warmup):
        run(x)
    latencies = []
    deadline = time.perf_counter() + budget.duration
    clock = time.perf_counter
    while len(latencies) < budget.runs and (len(latencies) < budget.min_runs or clock() < deadline):
        t0 = clock()
        run(x)
        latencies.append(clock() - t0)
    rss_after = rss_mb()
    return {
        "session_s": session_s,
        "first_run_ms": first_ms,
        "rss_mb": rss_after,
        "rss_delta_mb": rss_after - rss_before,
        "peak_rss_mb": peak_rss_mb(),
        **summarize(latencies, len(x)),
    }
