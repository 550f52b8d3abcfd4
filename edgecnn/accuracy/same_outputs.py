"""When one CPU class's outputs may stand for another's, so that it inherits the other's verdict.

Emulating a class under qemu costs 10-50x the native run, and grows with the model. Most classes
compute the same numbers as the host: the same float kernels up to rounding, and the same integer
arithmetic for an int8 scheme that cannot saturate. A class is therefore first run on a small
probe of the test images; a variant whose probabilities there are within its kind's tolerance of
the host's takes the host's outputs, and so its verdict, on the whole test set. A variant that
differs by more (u8s8 saturating on AVX2, fp16 computed in half precision on an Arm core that has
it, another requantization rounding) is measured on its own images, as before.

The tolerances are far below any gate: a change of at most ``t`` in each probability can change
an answer only where the reference's top two are within ``2t``, and the tie margins of the gates
are wider than that (:mod:`edgecnn.accuracy.gates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Test images a class is run on before it is trusted to compute the host's outputs.
PROBE_IMAGES = 256
# Largest |Δp| against the host, per variant kind, at which a class counts as the same computation.
# Measured on fashion-cnn's files, 256 test images against an AVX2 host: fp32, int8 and dynint8
# agree to 1e-7..3e-7 on x86-sse4 and every Arm class; fp16 to 1.5e-5 where it is computed in
# float32 (x86-sse4, arm64-neon: the weights' conversion differs) and 5.6e-3 where the core
# computes in half precision (arm64-dot, arm64-i8mm), which is therefore measured on its own.
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-4, "int8": 1e-5, "dynint8": 1e-5}


@dataclass(frozen=True)
class SameAs:
    """A variant's outputs on a row matched ``row``'s on the first ``images`` test images, to
    ``max_abs_diff`` (at most ``tolerance``): the row takes ``row``'s outputs on all of them."""

    row: str
    images: int
    max_abs_diff: float
    tolerance: float

    @property
    def words(self) -> str:
        return (f"same outputs as {self.row} on {self.images:,} images: max |Δp| "
                f"{self.max_abs_diff:.0e} (tolerance {self.tolerance:g})")


def same_as(kind: str, probs: np.ndarray, reference: np.ndarray, row: str) -> SameAs | None:
    """``probs`` (a probe's outputs) against ``reference`` (the host's on the same images): the
    match, or None when they differ by more than ``kind``'s tolerance or in shape."""
    reference = reference[: len(probs)]
    if probs.shape != reference.shape or not len(probs):
        return None
    diff = float(np.abs(probs.astype(np.float64) - reference).max())
    tolerance = TOLERANCE[kind]
    return SameAs(row, len(probs), diff, tolerance) if diff <= tolerance else None
