"""Accuracy tolerances per variant kind: what "this variant is good enough" means.

Kept apart from validation so that the CLI can show the defaults without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    def int8_breaches(self, metrics: dict[str, Any]) -> list[str]:
        """The int8 gates that ``metrics`` (from :func:`edgecnn.metrics.agreement_metrics`)
        break, in words; empty when all hold."""
        drop, worst = int8_drops(metrics)
        checks = (
            (drop > self.int8_max_accuracy_drop + 1e-12,
             f"loses {drop * 100:.2f} pp (gate {self.int8_max_accuracy_drop * 100:g})"),
            (metrics["agreement"] < self.int8_min_agreement,
             f"agrees {metrics['agreement']:.2%} (gate {self.int8_min_agreement:.0%})"),
            (worst > self.int8_max_class_drop + 1e-12,
             f"loses {worst * 100:.1f} pp on one class (gate {self.int8_max_class_drop * 100:g})"),
        )
        return [text for broken, text in checks if broken]


def int8_drops(metrics: dict[str, Any]) -> tuple[float, float]:
    """(accuracy drop, worst class's drop) against the reference, from
    :func:`edgecnn.metrics.agreement_metrics`: what the int8 gates judge."""
    worst = max((-d for d in metrics["per_class_delta"].values() if d is not None), default=0.0)
    return -metrics["accuracy_delta"], worst
