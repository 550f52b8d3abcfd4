"""This machine's own CPU (or accelerator), in this process."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecnn.results.report import Place
from edgecnn.runners.base import CellRun, Provenance
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import host_isa


class Native:
    """Runs the models here on ``providers`` with ``threads`` onnxruntime threads (0: every
    core). Its row is this CPU's class, or ``row`` (an accelerator's, e.g. "cuda")."""

    emulated = False

    def __init__(self, threads: int = 0, providers: str = "cpu", row: str | None = None) -> None:
        self.isa = host_isa()
        self.row = row or self.isa
        self.threads, self.providers = threads, providers

    def run(self, models: Sequence[Path], images: np.ndarray) -> CellRun:
        predictors = [Predictor(m, providers=self.providers, intra_op_threads=self.threads) for m in models]
        where = f"this machine ({socket.gethostname()}, {', '.join(predictors[0].providers)})"
        return CellRun([p.predict(images).probabilities for p in predictors],
                       Provenance(Place.NATIVE, where, host_isa()))
