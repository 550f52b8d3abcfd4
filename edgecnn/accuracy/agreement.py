"""What comparing a variant's answers with a reference's gives: the records the metrics fill
and the gates judge (no numpy here: ``edgecnn --help`` reads the gates' defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Agreement:
    """A variant's answers against a reference's on the same labelled images.

    ``flip_margins`` holds the reference's margin between its own answer and the variant's for
    every changed answer, ``kept_max_abs_diff`` the largest |Δp| on the answers kept: what the
    gates tell near-ties from damage with (:func:`edgecnn.accuracy.gates.count_flips`).
    ``confusion_delta`` is (true class, predicted class) counts, the variant's minus the
    reference's: where answers moved.
    """

    accuracy: float
    reference_accuracy: float
    accuracy_delta: float
    images: int
    agreement: float
    max_abs_diff: float
    kept_max_abs_diff: float
    flip_margins: list[float]
    mean_abs_diff: float
    per_class_accuracy: dict[str, float | None]
    per_class_delta: dict[str, float | None]
    classes_called_out: list[str]
    confusion_delta: list[list[int]]


@dataclass(frozen=True)
class Flips:
    """The answers a variant changed against its reference, split as
    :func:`edgecnn.accuracy.gates.count_flips` does."""

    total: int
    near_tie: int
    confident: int
    tie_margin: float
    firm_agreement: float
