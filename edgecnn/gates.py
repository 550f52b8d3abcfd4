"""Accuracy tolerances per variant kind: what "this variant is good enough" means.

Kept apart from validation so that the CLI can show the defaults without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gates:
    """Tolerances per variant kind (fractions, not percent)."""

    fp32_min_agreement: float = 0.999
    fp32_max_abs_diff: float = 1e-4
    fp16_min_agreement: float = 0.999
    int8_max_accuracy_drop: float = 0.005
    # An accuracy drop alone lets 78 % agreement pass when one class's loss is another's gain.
    int8_min_agreement: float = 0.97
    int8_max_class_drop: float = 0.03
