"""Latency statistics: what a benchmark reports for one series of timed runs."""

from __future__ import annotations

import numpy as np


def summarize(latencies_s: list[float] | np.ndarray, batch: int) -> dict[str, float]:
    """Mean, min, p50, p90, p99, max and std in milliseconds, and throughput in images/s."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timed runs")
    return {
        "runs": int(ms.size),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "std_ms": float(ms.std()),
        "throughput_ips": float(batch * ms.size / (ms.sum() / 1e3)),
    }
