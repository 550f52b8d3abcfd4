"""The one interface every place a cell runs implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgecnn.accuracy.same_outputs import SameAs
from edgecnn.errors import EdgeCNNError
from edgecnn.results.report import Place
from edgecnn.runtime.outputs import SUM_TOLERANCE


@dataclass(frozen=True)
class Provenance:
    """How a cell's outputs were obtained.

    ``how`` is native (this machine's own CPU), emulated (qemu-user) or device (a machine reached
    over SSH, natively); ``where`` says which in words; ``isa`` is the CPU class the code that
    ran the models saw there, read by :func:`edgecnn.runtime.isa.host_isa` in that process.
    """

    how: Place
    where: str
    isa: str

    @property
    def emulated(self) -> bool:
        return self.how == Place.EMULATED


@dataclass
class CellRun:
    """Each model's (N, C) probabilities, in the order given, and how they were obtained.

    ``same_as`` (empty, or one entry per model) says which models' outputs are another row's,
    taken because the row computed the same on a probe (:mod:`edgecnn.accuracy.same_outputs`).
    """

    probs: list[np.ndarray]
    provenance: Provenance
    same_as: list[SameAs | None] = field(default_factory=list)

    def same(self, model: int) -> SameAs | None:
        """Whether model ``model``'s outputs are another row's, and on what evidence."""
        return self.same_as[model] if self.same_as else None

    def check(self, row: str, models: int, images: int | Sequence[int], classes: int) -> None:
        """Refuse, in one line naming ``row``, outputs that are not one (images, classes) table
        of probabilities per model (``images``: one count, or each model's). A device or a
        worker that answered for fewer images, with another class count, or with NaN would
        otherwise be judged on what it returned."""
        if len(self.probs) != models:
            raise EdgeCNNError(f"{row} returned outputs for {len(self.probs)} model(s), not the {models} sent.")
        counts = [images] * models if isinstance(images, int) else list(images)
        for i, (probs, count) in enumerate(zip(self.probs, counts), 1):
            probs = np.asarray(probs)
            what = f"{row} returned {probs.dtype} outputs of shape {probs.shape} for model {i} of {models}"
            if probs.shape != (count, classes) or probs.dtype.kind != "f":
                raise EdgeCNNError(f"{what}, not ({count}, {classes}) probabilities: not used.")
            if not (np.isfinite(probs).all() and probs.min(initial=0.0) >= 0
                    and np.abs(probs.sum(axis=1) - 1).max(initial=0.0) <= SUM_TOLERANCE):
                raise EdgeCNNError(f"{what} that are not probabilities (NaN, negative, or rows not "
                                   "summing to 1): not used.")


class Runner(Protocol):
    """A place that runs variant files on images.

    ``row`` names the report row it fills (a CPU class, or a device's name); ``isa`` is the class
    it stands for; ``emulated`` whether it runs under qemu (emulated rows measure fewer images).
    """

    row: str
    isa: str
    emulated: bool

    def run(self, models: Sequence[Path], images: np.ndarray) -> CellRun: ...
