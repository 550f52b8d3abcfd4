"""What the measurement scripts under bench/ share: their arguments and their timing rounds."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bench.timing import Budget, RunFn, measure_interleaved
from edgecnn.defaults import DEFAULT_MODEL
from edgecnn.locations import default_folder


def export_folder_arguments(doc: str) -> tuple[argparse.Namespace, Any, Any]:
    """(arguments, the folder's ModelInfo, its dataset) for ``script [FOLDER] [--out] [--rounds]``."""
    from edgecnn.data import load_dataset
    from edgecnn.onnx_metadata import read_metadata

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=default_folder(DEFAULT_MODEL))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    info = read_metadata(args.folder / "model.onnx")
    return args, info, load_dataset(info.dataset)


def interleaved_rounds(makers: dict[str, Callable[[], RunFn]], inputs: list[np.ndarray],
                       batch: int, rounds: int) -> dict[str, list[float]]:
    """Each engine's p50 (ms) in each of ``rounds`` interleaved measurements: rounds spread the
    machine's slow phases over all engines, and the median of them is the figure to quote."""
    pooled: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(rounds):
        stats = measure_interleaved(makers, {name: inputs for name in makers},
                                    Budget(warmup=20, runs=300 if batch == 1 else 40, duration=2.0))
        for name in makers:
            pooled[name].append(stats[name]["p50_ms"])
    return pooled
