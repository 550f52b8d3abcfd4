"""What the measurement scripts under bench/ share: their arguments and their timing rounds."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.data import load_dataset
from edgecnn.defaults import DEFAULT_MODEL
from edgecnn.export.onnx_metadata import read_metadata
from edgecnn.store.locations import default_folder
from edgecnn.timing.measure import Budget, RunFn, measure, measure_interleaved


def export_folder_arguments(doc: str) -> tuple[argparse.Namespace, Any, Any]:
    """(arguments, the folder's ModelInfo, its dataset) for ``script [FOLDER] [--out] [--rounds]``."""
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


def block_rounds(makers: dict[str, Callable[[], RunFn]], inputs: list[np.ndarray],
                 batch: int, rounds: int, budget: Budget | None = None) -> dict[str, list[float]]:
    """Each engine's p50 (ms) in each of ``rounds`` rounds, timed one engine at a time (the order
    turning each round), each block on a fresh engine.

    Call-by-call alternation (:func:`interleaved_rounds`) is wrong for more than one thread: an
    idle onnxruntime session's pool threads spin after each call and take the cores from the
    engine timed next (fashion-cnn at two threads, batch 64: 6.9 ms a call interleaved with two
    other files, 2.2 ms alone), and the other models evict each other's caches between calls.
    ``budget`` is one block's (default: short blocks, see below).
    """
    import gc

    names = list(makers)
    pooled: dict[str, list[float]] = {name: [] for name in names}
    # short blocks, many rounds: this VM's slow spells last seconds, and each engine should see
    # several of them rather than one engine all of one
    budget = budget or Budget(warmup=20, runs=1000 if batch == 1 else 30, duration=0.3 if batch == 1 else 0.6,
                              min_runs=100 if batch == 1 else 8)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            pooled[name].append(float(np.median(measure(makers[name], inputs, budget)["latencies"]) * 1e3))
            gc.collect()  # the engine and its threads go before the next one starts
    return pooled
