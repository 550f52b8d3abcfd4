"""The one interface every place a cell runs implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

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
    """Each model's (N, C) probabilities, in the order given, and how they were obtained."""

    probs: list[np.ndarray]
    provenance: Provenance

    def check(self, row: str, models: int, images: int, classes: int) -> None:
        """Refuse, in one line naming ``row``, outputs that are not one (images, classes) table
        of probabilities per model. A device or a worker that answered for fewer images, with
        another class count, or with NaN would otherwise be judged on what it returned."""
        if len(self.probs) != models:
            raise EdgeCNNError(f"{row} returned outputs for {len(self.probs)} model(s), not the {models} sent.")
        for i, probs in enumerate(self.probs, 1):
            probs = np.asarray(probs)
            what = f"{row} returned {probs.dtype} outputs of shape {probs.shape} for model {i} of {models}"
            if probs.shape != (images, classes) or probs.dtype.kind != "f":
                raise EdgeCNNError(f"{what}, not ({images}, {classes}) probabilities: not used.")
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
