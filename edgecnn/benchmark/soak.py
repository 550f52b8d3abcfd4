"""Endurance: one Predictor shared by many threads for many calls; results must stay identical
to single-threaded ones and resident memory must stay flat."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.data import load_dataset
from edgecnn.defaults import SOAK_CALLS, SOAK_THREADS
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from edgecnn.store.files import ensure_folder, write_json
from edgecnn.timing.machine import machine_info
from edgecnn.timing.measure import rss_mb


def soak(
    model_path: str | Path,
    images: np.ndarray,
    *,
    calls: int = SOAK_CALLS,
    threads: int = SOAK_THREADS,
    batch_sizes: tuple[int, ...] = (1, 3, 16),
    warmup_calls: int = 500,
    samples: int = 20,
) -> dict[str, Any]:
    """Run ``calls`` predictions spread over ``threads`` threads on one shared Predictor.

    Args:
        model_path: the ``.onnx`` model.
        images: uint8 images the calls cycle through.
        calls: total calls after warm-up (bounded, so the check always ends).
        threads: threads sharing the Predictor.
        batch_sizes: batch sizes the calls rotate through.
        warmup_calls: calls before the RSS baseline is taken (arenas and caches grow first).
        samples: RSS samples taken during the run.

    Returns:
        Counts, mismatches against single-threaded results, and RSS start/end/max growth.
    """
    predictor = Predictor(model_path, providers="cpu")
    batches = [images[i:i + b] for b in batch_sizes for i in range(0, 64 * b, b)
               if i + b <= len(images)]
    expected = [predictor.predict(b).probabilities for b in batches]
    for i in range(warmup_calls):
        predictor.predict(batches[i % len(batches)])
    baseline = rss_mb()
    per_thread = calls // threads
    mismatches = [0] * threads
    done = [0] * threads
    rss_samples: list[float] = []

    def worker(t: int) -> None:
        for i in range(per_thread):
            k = (i * 7 + t) % len(batches)
            if not np.array_equal(predictor.predict(batches[k]).probabilities, expected[k]):
                mismatches[t] += 1
            done[t] += 1

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    while any(thread.is_alive() for thread in pool):
        rss_samples.append(rss_mb())
        time.sleep(max(0.01, (time.perf_counter() - started) / max(1, samples)))
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    end = rss_mb()
    return {
        "model": str(model_path),
        "machine": machine_info(),
        "threads": threads,
        "calls": int(sum(done)),
        "batch_sizes": list(batch_sizes),
        "distinct_batches": len(batches),
        "mismatches": int(sum(mismatches)),
        "seconds": seconds,
        "calls_per_s": sum(done) / seconds,
        "rss_baseline_mb": baseline,
        "rss_end_mb": end,
        "rss_growth_mb": end - baseline,
        "rss_max_growth_mb": max([end, *rss_samples]) - baseline,
        # Thread-local scratch appears early; a leak keeps growing through the second half.
        "rss_growth_second_half_mb": end - (rss_samples[len(rss_samples) // 2] if rss_samples else end),
        "rss_samples_mb": [round(x, 2) for x in rss_samples],
    }


def soak_export(model_path: Path, out_dir: Path, *, calls: int = SOAK_CALLS,
                threads: int = SOAK_THREADS) -> tuple[dict[str, Any], Path]:
    """Soak ``model_path`` on 2,048 real test images of its own dataset; write the result as
    ``out_dir/soak-MODEL-VARIANT.json``. Returns the result and the file written."""
    ensure_folder(out_dir)
    info = Predictor(model_path, providers="cpu").info
    if not info.dataset:
        raise EdgeCNNError(f"{model_path} does not name its dataset, so there are no images to soak it with.")
    images = load_dataset(info.dataset).x_test[:2048]
    result = soak(model_path, images, calls=calls, threads=threads)
    stem = model_path.name.removesuffix(".onnx")
    return result, write_json(out_dir / f"soak-{info.name}-{stem}.json", result)
