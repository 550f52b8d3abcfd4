"""Timing the onnxruntime engines: the part of a benchmark that runs where the model is timed.

``edgecnn bench`` runs it here; ``edgecnn bench --device`` runs the same code on the device (see
:mod:`edgecnn.runners.remote`), which has numpy + onnxruntime only, so nothing here imports more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError, one_line
from edgecnn.results.bench import BenchRow, PredictorOverhead
from edgecnn.runtime import Predictor
from edgecnn.runtime.metadata import ModelInfo
from edgecnn.timing.engines import Engine, onnxruntime_engines
from edgecnn.timing.measure import Budget, measure, measure_interleaved, pool
from edgecnn.timing.targets import Target

# Distinct batches each configuration cycles through.
INPUT_BATCHES = 8
Job = tuple[Engine, dict[str, Any], "int | None"]


def time_onnxruntime(files: Sequence[Path], targets: Sequence[Target], pixels: np.ndarray,
                     batches: Sequence[int], budget: Budget,
                     on_step: Callable[[str], None] = lambda _: None
                     ) -> tuple[list[BenchRow], dict[str, dict[str, Any]]]:
    """Every variant file x batch on every target (bare session and Predictor), in rounds, and
    each target's Predictor-vs-bare-session overhead at batch 1."""
    infos = [Predictor(path, providers="cpu").info for path in files]
    floats = infos[0].preprocessing.apply(pixels)  # Keras's input; the files read info.feed
    overhead = {}
    for target in targets:
        on_step(f"Predictor vs bare session, interleaved, {target.name}")
        overhead[target.name] = predictor_overhead(files[0], target, infos[0], pixels, budget)
    rows = run_rounds(onnxruntime_jobs(files, infos, targets), batches, pixels,
                      floats, budget, on_step)
    return rows, overhead


def onnxruntime_jobs(files: Sequence[Path], infos: Sequence[ModelInfo], targets: Sequence[Target]) -> list[Job]:
    """The onnxruntime engines of every file on every target, as jobs for :func:`run_rounds`."""
    jobs: list[Job] = []
    for target in targets:
        tinfo = target_info(target)
        for path, info in zip(files, infos):
            jobs += [(e, tinfo, path.stat().st_size)
                     for e in onnxruntime_engines(path, info.variant, target, info.reads_pixels)]
    return jobs


def target_info(target: Target) -> dict[str, Any]:
    return {"name": target.name, "provider": target.provider, "threads": target.threads}


def predictor_overhead(path, target, info: ModelInfo, pixels, budget: Budget) -> PredictorOverhead:
    """Batch-1 Predictor against a bare session, timed in alternation on the same frames.

    The fair baseline is what an app writes without edgecnn: uint8 frame -> float32 in numpy ->
    ``InferenceSession.run``. The strict one feeds floats prepared long before the call, which
    also skips the preprocessing; both ratios are reported.
    """
    bare, predictor = onnxruntime_engines(path, "fp32", target, info.reads_pixels)[:2]
    prepared = info.feed(pixels)

    def bare_with_numpy() -> Callable[[np.ndarray], Any]:
        run = bare.make()
        return lambda x: run(info.feed(x))

    count = min(len(pixels), 64)
    frames = [pixels[i:i + 1] for i in range(count)]
    inputs = {"session": frames, "session_prepared": [prepared[i:i + 1] for i in range(count)],
              "predictor": frames}
    makers = {"session": bare_with_numpy, "session_prepared": bare.make, "predictor": predictor.make}
    long = Budget(budget.warmup, budget.runs * 5, budget.duration * 2, budget.min_runs)
    stats = measure_interleaved(makers, inputs, long)
    p50 = {k: v["p50_ms"] for k, v in stats.items()}
    return PredictorOverhead(file=path.name, batch=1, p50_ms=p50, runs=stats["predictor"]["runs"],
                             ratio=p50["predictor"] / p50["session"],
                             ratio_strict=p50["predictor"] / p50["session_prepared"])


def run_rounds(jobs, batches, pixels, floats, budget: Budget, on_step) -> list[BenchRow]:
    """Every (engine, batch) configuration in ``budget.rounds`` round-robin rounds.

    A slow spell of a shared machine then lands in one round of many configurations instead of
    all runs of one, and pooled percentiles stay comparable between configurations.
    """
    samples: dict[int, list[dict[str, Any]]] = {}
    keys = [(j, batch) for j in range(len(jobs)) for batch in batches]
    share = budget.per_round()
    for round_index in range(max(1, budget.rounds)):
        for k, (j, batch) in enumerate(keys):
            engine, target, _ = jobs[j]
            on_step(f"round {round_index + 1}/{budget.rounds}: {engine.engine} {engine.variant} "
                    f"{target['name']} batch {batch}")
            source = pixels if engine.pixels else floats
            inputs = [np.ascontiguousarray(source[i * batch:(i + 1) * batch])
                      for i in range(INPUT_BATCHES)]
            try:
                samples.setdefault(k, []).append(measure(engine.make, inputs, share))
            except EdgeCNNError:
                raise
            except Exception as exc:  # an engine that cannot run this model: one line, not a trace
                raise EdgeCNNError(
                    f"{engine.engine} could not run {engine.variant} at batch {batch} on "
                    f"{target['name']}: {one_line(exc)}"
                ) from exc
    rows = []
    for k, (j, batch) in enumerate(keys):
        engine, target, size = jobs[j]
        rows.append(BenchRow(
            engine=engine.engine, variant=engine.variant, target=target["name"],
            provider=target["provider"], threads=target["threads"], batch=batch,
            size_bytes=size, copies_included=engine.copies_included, **pool(samples[k], batch)))
    return rows
