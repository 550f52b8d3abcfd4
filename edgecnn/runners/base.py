"""The one interface every place a cell runs implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgecnn.results.report import Place


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


class Runner(Protocol):
    """A place that runs variant files on images.

    ``row`` names the report row it fills (a CPU class, or a device's name); ``isa`` is the class
    it stands for; ``emulated`` whether it runs under qemu (emulated rows measure fewer images).
    """

    row: str
    isa: str
    emulated: bool

    def run(self, models: Sequence[Path], images: np.ndarray) -> CellRun: ...
