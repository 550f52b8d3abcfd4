"""Which runner fills which row, and running them all: here, side by side, or on Ray.

validate, the int8 scheme search and ``bench --device`` ask here for a place; nothing else
decides where a cell runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgecnn.accuracy.same_outputs import PROBE_IMAGES, same_as
from edgecnn.errors import EdgeCNNError
from edgecnn.runners.base import CellRun, Runner
from edgecnn.runners.native import Native
from edgecnn.runners.qemu import Emulated, unavailable_reason
from edgecnn.runtime.isa import host_isa, parse_isa_list

log = logging.getLogger(__name__)
# An emulated run keeps about two cores busy (onnxruntime's two threads under qemu-user;
# bench/README.md, "Emulation"): how many cores each side-by-side run is given.
_CORES_PER_RUN = 2


def class_runner(isa: str, threads: int = 0) -> Runner:
    """Class ``isa`` here: natively when it is this CPU's class, else under qemu-user."""
    return Native(threads) if isa == host_isa() else Emulated(isa, threads)


def class_runners(rows: Sequence[str]) -> list[Runner]:
    """Runners for classes ``rows`` that share this machine: emulated ones side by side where
    there are the cores for it (each with its share), on 2 cores one after another on both."""
    side_by_side = _side_by_side(sum(r != host_isa() for r in rows))
    threads = (os.cpu_count() or 1) // side_by_side if side_by_side > 1 else 0
    return [class_runner(r, threads) for r in rows]


def _side_by_side(emulated: int) -> int:
    """How many of ``emulated`` runs this machine's cores take at once."""
    return max(1, min(emulated, (os.cpu_count() or 1) // _CORES_PER_RUN))


def plan_classes(isa: str | Sequence[str] | None, native: str,
                 labelled: set[str] = frozenset()) -> tuple[list[str], dict[str, str]]:
    """The classes to run beside the native row, and those that cannot be run here (or on a
    Ray node ``labelled`` with the class) with the reason. A class named explicitly that cannot
    be run is an error; with "all" it is only reported."""
    if isa is None:
        return [], {}
    requested = parse_isa_list(isa)
    items = [isa.strip()] if isinstance(isa, str) else list(isa)
    explicit = items != ["all"]
    rows, not_measured = [], {}
    for name in requested:
        if name == native:
            continue
        reason = None if name in labelled else unavailable_reason(name)
        if reason and explicit:
            raise EdgeCNNError(f"Cannot validate on {name}: {reason}.")
        if reason:
            log.info(f"  {name}: not measured ({reason})")
            not_measured[name] = reason
        else:
            rows.append(name)
    return rows, not_measured


def run_all(runners: Sequence[Runner], models: Sequence[Path], images: np.ndarray,
            emulated_images: int, kinds: Sequence[str] = (), reference: str | None = None
            ) -> dict[str, CellRun]:
    """``{runner.row: runner.run(models, images)}``: emulated runners on the first
    ``emulated_images`` images (emulation is 10-50x slower), the others on all of them.

    With ``reference`` (the row of a runner among them that computes natively on this CPU) and
    ``kinds`` (each model's variant kind), every emulated runner is first :func:`probed`
    against it: a model that computes the same there takes its outputs on all images.

    Emulated runners share this machine's cores, so they run as many at a time as
    :func:`class_runners` planned for; devices and the native row run beside them.
    """
    others = [r for r in runners if not r.emulated]
    side_by_side = _side_by_side(len(runners) - len(others))
    with ThreadPoolExecutor(side_by_side) as emulation, ThreadPoolExecutor(max(1, len(others))) as rest:
        pending = {r.row: rest.submit(r.run, models, images) for r in others}
        host = next((r for r in others if r.row == reference), None) if kinds else None
        for r in runners:
            if r.emulated:
                own = images[:emulated_images]
                pending[r.row] = (emulation.submit(probed, r, models, own, kinds, host, pending[host.row].result)
                                  if host else emulation.submit(r.run, models, own))
        return {r.row: pending[r.row].result() for r in runners}


def probed(runner: Runner, models: Sequence[Path], images: np.ndarray, kinds: Sequence[str],
           host: Runner, host_outputs: Callable[[], CellRun]) -> CellRun:
    """``runner``'s outputs on ``images``, run first on a probe of :data:`PROBE_IMAGES` of them.

    The probe is run by ``host`` too, as the same batch: a dynamic int8 file's activation scales
    depend on the batch. Each model whose probe outputs match the host's within its kind's
    tolerance takes the host's outputs on all of ``images`` (``host_outputs()``, a run on the
    same images first); the others are run on the rest of ``images``. The result says which is
    which (``same_as``).
    """
    probe = images[:PROBE_IMAGES]
    first, mine = runner.run(models, probe), host.run(models, probe)
    classes = mine.probs[0].shape[1] if mine.probs else 0
    first.check(runner.row, len(models), len(probe), classes)
    matches = [same_as(kind, p, r, host.row) for kind, p, r in zip(kinds, first.probs, mine.probs)]
    rest = [i for i, match in enumerate(matches) if match is None]
    same = [Path(m).name for m, match in zip(models, matches) if match]
    log.info(f"  {runner.row}: {', '.join(same) or 'no model'} computed the same as {host.row} on "
             f"{len(probe)} images" + (f"; measuring {len(rest)} model(s) on {len(images):,}"
                                       if rest and len(images) > len(probe) else ""))
    more = None
    if rest and len(images) > len(probe):
        more = runner.run([models[i] for i in rest], images[len(probe):])
        more.check(runner.row, len(rest), len(images) - len(probe), classes)
    outputs = host_outputs() if len(rest) < len(models) else None
    probs = []
    for i, match in enumerate(matches):
        if outputs is not None and match is not None:
            probs.append(outputs.probs[i])
        else:
            probs.append(first.probs[i] if more is None else
                         np.concatenate([first.probs[i], more.probs[rest.index(i)]]))
    return CellRun(probs, first.provenance, matches)
