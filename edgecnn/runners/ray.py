"""Ray as a place: every (class x variant) cell of the matrix one Ray task.

A task runs on a node labelled with its class (``ray start --resources '{"isa:CLASS": 1}'``)
when there is one, else wherever Ray puts it; either way the task itself decides, as a local
run does, whether its node runs the class natively or under qemu, and its cell says which.
Models and images travel through Ray's object store.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runners import ray_cluster
from edgecnn.runners.base import CellRun
from edgecnn.runners.plan import class_runner

log = logging.getLogger(__name__)


def run_on_ray(rows: Sequence[str], models: Sequence[Path], images: np.ndarray,
               emulated_images: int, labelled: set[str]) -> dict[str, CellRun]:
    """Like :func:`edgecnn.runners.plan.run_all` for classes ``rows``, on Ray's nodes."""
    with ray_cluster.connected() as ray:
        images_ref = ray.put(np.ascontiguousarray(images))
        task = ray.remote(num_cpus=1, max_retries=0)(_cell)
        pending = {}
        for row in rows:
            options = {"resources": {ray_cluster.ISA_RESOURCE_PREFIX + row: 0.001}} if row in labelled else {}
            for i, model in enumerate(models):
                pending[(row, i)] = task.options(**options).remote(
                    row, Path(model).name, Path(model).read_bytes(), images_ref, emulated_images)
        log.info(f"  {len(pending)} (class x variant) cells as Ray tasks on "
                 f"{ray_cluster.cluster_cpus(ray)} CPUs...")
        with ray_cluster.worker_errors():
            done = dict(zip(pending, ray.get(list(pending.values()))))
    out = {}
    for row in rows:
        cells = [done[(row, i)] for i in range(len(models))]
        wheres = "; ".join(sorted({c.provenance.where for c in cells}))
        if len({(c.provenance.how, c.provenance.isa, len(c.probs[0])) for c in cells}) > 1:
            # e.g. one node of the label emulates: no single label fits the row
            raise EdgeCNNError(f"The Ray tasks of {row} ran in different ways ({wheres}); label "
                               "only nodes that are that class.")
        out[row] = CellRun([c.probs[0] for c in cells], replace(cells[0].provenance, where=wheres))
    return out


def _cell(row: str, name: str, model: bytes, images: np.ndarray, emulated_images: int) -> CellRun:
    runner = class_runner(row)
    with tempfile.TemporaryDirectory(prefix="edgecnn-isa-task-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(model)
        cell = runner.run([path], images[:emulated_images] if runner.emulated else images)
    where = f"Ray node {socket.gethostname()}, {cell.provenance.where}"
    return CellRun(cell.probs, replace(cell.provenance, where=where))
