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
    reference's: where answers moved. ``class_changes`` counts, per class, the right answers
    the variant lost and gained: what the int8 gates weigh a loss against chance with.
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
    class_changes: dict[str, ClassChange]


@dataclass(frozen=True)
class ClassChange:
    """One class's answers against the reference's: of its ``images`` labelled images, ``lost``
    the reference got right and the variant wrong, ``gained`` the reverse."""

    images: int
    lost: int
    gained: int


@dataclass(frozen=True)
class Flips:
    """The answers a variant changed against its reference, split as
    :func:`edgecnn.accuracy.gates.count_flips` does."""

    total: int
    near_tie: int
    confident: int
    tie_margin: float
    firm_agreement: float
