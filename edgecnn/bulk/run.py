"""Bulk inference: every image of the sources through one model, streamed, in order.

Two engines run the same ``BatchClassifier`` over the same batches: ``local`` in this process,
``ray`` as Ray Data ``map_batches`` with one classifier (one onnxruntime session) per actor. The
results come back to this process in input order and go to one sink, so the engines' outputs are
the same rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bulk.classify import BatchClassifier, restore_missing
from edgecnn.bulk.sinks import check_destination, result_sink
from edgecnn.bulk.sources import arrow_blocks, open_sources
from edgecnn.errors import EdgeCNNError
from edgecnn.runners import ray_cluster
from edgecnn.runtime.metadata import Preprocessing
from edgecnn.store.files import sha256_file

log = logging.getLogger(__name__)
_PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class BulkSummary:
    images: int
    unreadable: int
    seconds: float
    engine: str
    workers: int
    providers: tuple[str, ...]

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def predict_bulk(
    model: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    engine: str | None = None,
    batch_size: int = 256,
    top_k: int = 3,
    fit: str = "crop",
    threads: int | None = None,
    concurrency: int | None = None,
    skip_unreadable: bool = False,
    providers: str = "auto",
    preprocessing: Preprocessing | None = None,
    as_json: bool = False,
    force: bool = False,
) -> BulkSummary:
    """Classify every image of ``inputs`` (files, folders, globs, .npz, .parquet) with ``model``.

    Args:
        out: a ``.parquet`` or ``.jsonl`` file for the results (atomically written, refused when
            it exists unless ``force``); None prints them.
        engine: ``local`` (this process), ``ray``, or None: ``ray`` when ``RAY_ADDRESS`` is set.
        threads: onnxruntime threads per classifier: the local one (default: onnxruntime's, all
            cores) or each Ray actor (default 1).
        concurrency: Ray actors (default: the cluster's CPUs / ``threads``).
        skip_unreadable: record an unreadable image as a row with ``error`` instead of stopping.
    """
    engine = ray_cluster.resolve_engine(engine)
    for name, value in (("batch_size", batch_size), ("top_k", top_k)):
        if value < 1:
            raise EdgeCNNError(f"{name} must be >= 1, got {value}.")
    model = Path(model)
    if out is not None:
        check_destination(Path(out), force)
    threads = threads if threads is not None else (0 if engine == "local" else 1)
    options = dict(top_k=top_k, fit=fit, threads=threads, preprocessing=preprocessing,
                   providers=providers)
    # Loaded here in both engines: a bad model or option fails before any work is scheduled.
    local = BatchClassifier(model, **options)
    sources = open_sources(inputs, local.predictor.info.input_shape)
    total = sum(len(s) for s in sources)
    start = time.perf_counter()
    progress = _Progress(total)
    unreadable = 0
    with result_sink(Path(out) if out else None, model_sha256=sha256_file(model),
                     variant=local.predictor.info.variant, as_json=as_json, force=force) as write:
        if engine == "local":
            workers, results = 1, _run_local(local, sources, batch_size)
            unreadable = _drain(results, write, progress, skip_unreadable)
        else:
            with ray_cluster.connected() as ray:
                workers = concurrency or max(1, ray_cluster.cluster_cpus(ray) // max(threads, 1))
                log.info(f"predict: {total:,} images on Ray, {workers} actor(s) x {threads} thread(s)")
                results = _run_ray(ray, model.read_bytes(), options, sources, batch_size, workers, threads)
                # closed before Ray shuts down: a Ray Data executor left running after an error
                # outlives ray.shutdown(), starts a Ray of its own and the run never exits
                with contextlib.closing(results), ray_cluster.worker_errors():
                    unreadable = _drain(results, write, progress, skip_unreadable)
    return BulkSummary(total, unreadable, time.perf_counter() - start, engine, workers,
                       tuple(local.predictor.providers))


def _run_local(classifier: BatchClassifier, sources: list, batch_size: int) -> Iterator[dict]:
    for source in sources:
        for batch in source.batches(batch_size):
            yield classifier(batch)


def _run_ray(ray: Any, model: bytes, options: dict, sources: list, batch_size: int,
             workers: int, threads: int) -> Iterator[dict]:
    # One batch per block (blocks are what Ray hands to actors, so small ones balance best),
    # each in the object store as soon as it is read: the driver holds one at a time.
    refs = [ray.put(block) for block in arrow_blocks(sources, batch_size)]
    dataset = ray.data.from_arrow_refs(refs)
    actors = min(workers, len(refs))  # more would idle (and Ray warns)
    with warnings.catch_warnings():
        # max_restarts=0 is how Ray's own code says to stop restarting failed actors (ours
        # fail on bad input, which a restart repeats), though it warns about the keyword.
        warnings.simplefilter("ignore")
        classified = dataset.map_batches(
            BatchClassifier, fn_constructor_args=(model,), fn_constructor_kwargs=options,
            batch_size=batch_size, batch_format="numpy", num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=actors), max_restarts=0,
        )
    yield from classified.iter_batches(batch_size=None, batch_format="numpy")


def _drain(results: Iterator[dict], write: Any,
           progress: "_Progress", skip_unreadable: bool) -> int:
    """Number the rows, name them, hand them to the sink; returns how many were unreadable.
    An unreadable image stops the run unless ``skip_unreadable``."""
    unreadable = 0
    for batch in results:
        rows = len(batch["label"])
        index = np.arange(progress.done, progress.done + rows, dtype=np.int64)
        batch = dict(restore_missing(batch), index=index)
        batch["input"] = batch.pop("id")
        failed = [i for i, e in enumerate(batch["error"]) if e]
        if failed and not skip_unreadable:  # the rows before it are still shown
            write({k: v[: failed[0]] for k, v in batch.items()})
            raise EdgeCNNError(f"{batch['error'][failed[0]]} (--skip-unreadable records such "
                               "images and goes on)")
        write(batch)
        unreadable += len(failed)
        progress.advance(rows)
    return unreadable


class _Progress:
    """A log line every few seconds: images done, of how many, at what rate."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.start = self.last = time.perf_counter()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            rate = self.done / (now - self.start)
            log.info(f"predict: {self.done:,} / {self.total:,} images ({rate:,.0f}/s)")
