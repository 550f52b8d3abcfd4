"""Ratios between two saved bench result files (two machines, two versions, two settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecnn.bench.run import SCHEMA
from edgecnn.errors import EdgeCNNError

_KEY = ("target", "engine", "variant", "batch")


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgeCNNError(f"Could not read bench results {path}: {exc}") from exc
    if data.get("schema") != SCHEMA:
        raise EdgeCNNError(f"{path} is not an edgecnn bench result ({SCHEMA}); got {data.get('schema')}.")
    return data


def diff_results(a_path: str | Path, b_path: str | Path) -> list[dict[str, Any]]:
    """Rows present in both files with ``b / a`` ratios of p50 latency and throughput."""
    a, b = load(a_path), load(b_path)
    index = {tuple(r[k] for k in _KEY): r for r in a["results"]}
    rows = []
    for r in b["results"]:
        key = tuple(r[k] for k in _KEY)
        if key in index:
            base = index[key]
            rows.append({**dict(zip(_KEY, key)), "a_p50_ms": base["p50_ms"], "b_p50_ms": r["p50_ms"],
                         "p50_ratio": r["p50_ms"] / base["p50_ms"],
                         "throughput_ratio": r["throughput_ips"] / base["throughput_ips"]})
    if not rows:
        raise EdgeCNNError(f"{a_path} and {b_path} share no (target, engine, variant, batch) rows.")
    return rows
