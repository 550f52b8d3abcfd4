"""Accuracy tolerances per variant kind: what "this variant is good enough" means.

A gate judges the *file*, not the model's uncertainty. When the reference itself barely
separates two classes, any exact-enough file can swap them: such a flip is numerical noise and
does not count against agreement. A flip counts when the reference's margin between its answer
and the variant's is wider than the tie margin, ``min(2 x the variant's max |Δp| on the answers
it keeps, the kind's cap)`` -- a probability can move by at most that much without damage the
file shows elsewhere. A flip of a *confident* answer (reference margin >= ``confident_margin``)
fails an fp32 or fp16 file, whatever the agreement; an int8 file may flip up to
``int8_max_confident_rate`` of them (2 in 1,000, none under 500 images). Honest int8 files of a
MobileNetV2 flip 0-1 in 1,000 on files that hold every other gate, and of 106 files damaged on
purpose (one layer's weight scale halved or doubled) every one that changed answers failed the
agreement, accuracy or class gate first (bench/README.md, "int8 on MobileNet-class nets").

Kept apart from validation so that the CLI can show the defaults without importing it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgecnn.accuracy.agreement import Agreement, Flips
from edgecnn.errors import EdgeCNNError

KINDS = ("fp32", "fp16", "int8")


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
    # Widest reference margin a flip may have and still be a near-tie, per kind. fp16 moves a
    # probability by about 1e-3 on these nets, int8 by a few hundredths.
    fp16_max_tie_margin: float = 0.01
    int8_max_tie_margin: float = 0.1
    confident_margin: float = 0.5
    # int8 only: the share of images whose confident answer a file may flip (rounded down).
    int8_max_confident_rate: float = 0.002

    def __post_init__(self) -> None:
        # Every gate is a fraction or a probability: outside 0..1 it is a gate no file can pass
        # (or that passes any), which is a mistake in the option, not a verdict on the file.
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise EdgeCNNError(f"Gate {name} must be a finite number, not {value!r}.")
            if not 0 <= value <= 1 or (name == "confident_margin" and value == 0):
                raise EdgeCNNError(f"Gate {name} must be a fraction between 0 and 1, not {value!r} "
                                   "(percentage-point options are divided by 100 first).")

    def judge(self, kind: str, metrics: Agreement) -> Verdict:
        """The verdict of the gates of ``kind`` (fp32, fp16 or int8, dynint8 counting as int8)
        on ``metrics`` from :func:`edgecnn.accuracy.metrics.agreement_metrics`."""
        kind = _kind(kind)
        min_agreement, cap = self._agreement_gate(kind)
        flips = count_flips(metrics, cap, self.confident_margin)
        firm = flips.firm_agreement
        broken = []
        if kind == "fp32" and metrics.max_abs_diff > self.fp32_max_abs_diff:
            broken.append(f"max |Δp| {metrics.max_abs_diff:.1e} (gate {self.fp32_max_abs_diff:g})")
        if firm < min_agreement:
            broken.append(f"agrees {firm:.2%} beyond near-ties (gate {min_agreement:.2%})")
        allowed = self.confident_allowed(kind, metrics.images)
        if flips.confident > allowed:
            broken.append(f"flips {flips.confident} confident answer(s) (reference margin >= "
                          f"{self.confident_margin:g}; gate {allowed} in {metrics.images:,})")
        if kind == "int8":
            broken += self._int8_drop_breaches(metrics)
        return Verdict(not broken, broken, flips)

    def rule(self, kind: str) -> str:
        """The gates of ``kind`` in words, as the report states them."""
        kind = _kind(kind)
        agreement, cap = self._agreement_gate(kind)
        ties = "2 × max |Δp|" if kind == "fp32" else f"min(2 × max |Δp|, {cap:g})"
        confident = (f"at most {self.int8_max_confident_rate:.1%} of answers Keras gives by a margin >= "
                     f"{self.confident_margin:g} flipped (rounded down)" if kind == "int8"
                     else f"no flip of an answer Keras gives by a margin >= {self.confident_margin:g}")
        words = [f"agreement >= {agreement:.2%} (flips whose Keras margin is below {ties} are "
                 f"near-ties, not counted)", confident]
        if kind == "fp32":
            words.insert(0, f"max |Δp| <= {self.fp32_max_abs_diff:g}")
        if kind == "int8":
            words += [f"accuracy drop <= {self.int8_max_accuracy_drop * 100:g} pp",
                      f"no class drops > {self.int8_max_class_drop * 100:g} pp"]
        return "; ".join(words)

    def confident_allowed(self, kind: str, images: int) -> int:
        """How many confident answers a file of ``kind`` may flip on ``images`` images."""
        return math.floor(self.int8_max_confident_rate * images + 1e-9) if _kind(kind) == "int8" else 0

    def _agreement_gate(self, kind: str) -> tuple[float, float]:
        """(minimum agreement beyond near-ties, tie-margin cap) of ``kind``."""
        return {"fp32": (self.fp32_min_agreement, 2 * self.fp32_max_abs_diff),
                "fp16": (self.fp16_min_agreement, self.fp16_max_tie_margin),
                "int8": (self.int8_min_agreement, self.int8_max_tie_margin)}[kind]

    def int8_breaches(self, metrics: Agreement) -> list[str]:
        """The int8 gates that ``metrics`` break, in words; empty when all hold."""
        return self.judge("int8", metrics).breaches

    def _int8_drop_breaches(self, metrics: Agreement) -> list[str]:
        drop, worst = int8_drops(metrics)
        checks = (
            (drop > self.int8_max_accuracy_drop + 1e-12,
             f"loses {drop * 100:.2f} pp (gate {self.int8_max_accuracy_drop * 100:g})"),
            (worst > self.int8_max_class_drop + 1e-12,
             f"loses {worst * 100:.1f} pp on one class (gate {self.int8_max_class_drop * 100:g})"),
        )
        return [text for broken, text in checks if broken]


@dataclass(frozen=True)
class Verdict:
    """One variant on one set of images: passed, the gates broken, the flips."""

    passed: bool
    breaches: list[str]
    flips: Flips


def _kind(variant: str) -> str:
    """The gate kind of a variant: dynint8 is judged as int8."""
    kind = "int8" if "int8" in variant else variant
    if kind not in KINDS:
        raise ValueError(f"no gate for variant kind {variant!r}")
    return kind


def count_flips(metrics: Agreement, cap: float, confident_margin: float) -> Flips:
    """The variant's changed answers split into near-ties, firm flips and confident flips.

    ``metrics.flip_margins`` holds the reference's margin between its answer and the
    variant's for every changed answer; ``metrics.kept_max_abs_diff`` the largest |Δp| on
    the answers the variant kept.
    """
    margins = metrics.flip_margins
    tie = min(2 * metrics.kept_max_abs_diff, cap)
    near_tie = sum(1 for m in margins if m <= tie)
    n = metrics.images
    return Flips(total=len(margins), near_tie=near_tie,
                 confident=sum(1 for m in margins if m >= confident_margin), tie_margin=tie,
                 firm_agreement=1.0 - (len(margins) - near_tie) / n if n else 1.0)


def int8_drops(metrics: Agreement) -> tuple[float, float]:
    """(accuracy drop, worst class's drop) against the reference, from
    :func:`edgecnn.accuracy.metrics.agreement_metrics`: what the int8 gates judge."""
    worst = max((-d for d in metrics.per_class_delta.values() if d is not None), default=0.0)
    return -metrics.accuracy_delta, worst
