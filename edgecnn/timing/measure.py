"""Timing one engine on one input: session creation, first run, then warm timed runs."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.timing.stats import summarize

RunFn = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Budget:
    """How long to measure: ``warmup`` untimed runs, then up to ``runs`` timed runs or
    ``duration`` seconds, whichever ends first, but never fewer than ``min_runs``."""

    warmup: int = 20
    runs: int = 300
    duration: float = 3.0
    min_runs: int = 10
    rounds: int = 3

    def per_round(self) -> Budget:
        """The share of this budget one of ``rounds`` rounds gets."""
        n = max(1, self.rounds)
        return Budget(self.warmup, -(-self.runs // n), self.duration / n, -(-self.min_runs // n), 1)


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


def measure(make: Callable[[], RunFn], inputs: list[np.ndarray], budget: Budget) -> dict[str, Any]:
    """Create the engine, time its first run, warm it up, then time ``budget`` runs.

    Successive runs cycle through ``inputs`` (batches of different images): feeding the same
    array every time flatters a runtime, since real inputs change on every call.
    """
    rss_before = rss_mb()
    started = time.perf_counter()
    run = make()
    session_s = time.perf_counter() - started
    started = time.perf_counter()
    run(inputs[0])
    first_ms = (time.perf_counter() - started) * 1e3
    for i in range(budget.warmup):
        run(inputs[i % len(inputs)])
    latencies = []
    deadline = time.perf_counter() + budget.duration
    clock = time.perf_counter
    count = len(inputs)
    while len(latencies) < budget.runs and (len(latencies) < budget.min_runs or clock() < deadline):
        x = inputs[len(latencies) % count]
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
        "latencies": latencies,
    }


def pool(samples: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """One row from several rounds of ``measure``: statistics over all their timed runs,
    medians of the per-round setup costs."""
    latencies = [t for s in samples for t in s["latencies"]]
    return {
        "rounds": len(samples),
        "session_s": float(np.median([s["session_s"] for s in samples])),
        "first_run_ms": float(np.median([s["first_run_ms"] for s in samples])),
        "rss_mb": samples[-1]["rss_mb"],
        "rss_delta_mb": max(s["rss_delta_mb"] for s in samples),
        "peak_rss_mb": samples[-1]["peak_rss_mb"],
        "round_p50_ms": [float(np.median(s["latencies"]) * 1e3) for s in samples],
        **summarize(latencies, batch),
    }


def measure_interleaved(
    makers: dict[str, Callable[[], RunFn]], inputs: dict[str, list[np.ndarray]], budget: Budget
) -> dict[str, dict[str, Any]]:
    """Time several engines in alternation (A, B, A, B, ...) so that they share the machine's
    noise; their ratio is then far steadier than that of two separate series."""
    runs = {name: make() for name, make in makers.items()}
    for i in range(budget.warmup):
        for name, run in runs.items():
            run(inputs[name][i % len(inputs[name])])
    latencies: dict[str, list[float]] = {name: [] for name in runs}
    clock = time.perf_counter
    deadline = clock() + budget.duration
    n = 0
    while n < budget.runs and (n < budget.min_runs or clock() < deadline):
        for name, run in runs.items():
            x = inputs[name][n % len(inputs[name])]
            t0 = clock()
            run(x)
            latencies[name].append(clock() - t0)
        n += 1
    return {name: summarize(values, len(inputs[name][0])) for name, values in latencies.items()}
