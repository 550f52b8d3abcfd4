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
agreement, accuracy or class gate first (bench/README.md, "int8 on MobileNet-class nets"; with
the sign test below, 8 of 1,060 such files over five seeds and two trainings pass, each moving
3-8 answers into or out of a class of about 100 images, as honest files do).

The accuracy and class gates fail a loss the answers show, not one chance explains. An int8 file
of a deep net changes 30-50 answers in 1,000, and which of those land right or wrong moves
accuracy by a point and a class of 100 images by several: the same file of a seconds-trained
MobileNetV2 lost 1.7 pp on one set of 1,000 images and 0.4 on another. So a drop past its gate
fails only when a one-sided sign test on the answers lost and gained says it is no coin toss
(p < ``int8_loss_significance``, divided by the number of classes for the class gate). With
10,000 test images any drop past the gate is significant, and the rule is the plain one.

Kept apart from validation so that the CLI can show the defaults without importing it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgecnn.accuracy.agreement import Agreement, ClassChange, Flips
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
    # int8 only: a drop past the accuracy or class gate fails when a sign test on the answers
    # lost and gained gives p below this (Bonferroni over the classes for the class gate).
    int8_loss_significance: float = 0.05

    def __post_init__(self) -> None:
        # Every gate is a fraction or a probability: outside 0..1 it is a gate no file can pass
        # (or that passes any), which is a mistake in the option, not a verdict on the file.
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise EdgeCNNError(f"Gate {name} must be a finite number, not {value!r}.")
            if not 0 <= value <= 1 or (name in ("confident_margin", "int8_loss_significance") and value == 0):
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
            words += [f"accuracy drop <= {self.int8_max_accuracy_drop * 100:g} pp and no class drops > "
                      f"{self.int8_max_class_drop * 100:g} pp, a drop past either failing when the answers "
                      f"lost against those gained are no coin toss (one-sided sign test, p < "
                      f"{self.int8_loss_significance:g}; divided by the classes for a class)"]
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
        drop, _ = int8_drops(metrics)
        changes = list(metrics.class_changes.values())
        total = ClassChange(metrics.images, sum(c.lost for c in changes), sum(c.gained for c in changes))
        broken = []
        if drop > self.int8_max_accuracy_drop + 1e-12:
            p = loss_p_value(total)
            if p < self.int8_loss_significance:
                broken.append(f"loses {drop * 100:.2f} pp (gate {self.int8_max_accuracy_drop * 100:g}; "
                              f"{_answers(total)}, p = {p:.2g})")
        classes = [(name, c) for name, c in metrics.class_changes.items() if c.images]
        for name, c in sorted(classes, key=lambda item: item[1].gained - item[1].lost):
            class_drop = (c.lost - c.gained) / c.images
            p = loss_p_value(c)
            if class_drop > self.int8_max_class_drop + 1e-12 and p < self.int8_loss_significance / len(classes):
                broken.append(f"loses {class_drop * 100:.1f} pp on one class, {name!r} (gate "
                              f"{self.int8_max_class_drop * 100:g}; {_answers(c)}, p = {p:.2g} "
                              f"against {self.int8_loss_significance:g}/{len(classes)})")
                break
        return broken


def loss_p_value(change: ClassChange) -> float:
    """The chance that a file that loses no accuracy loses at least ``change.lost`` of the
    ``lost + gained`` answers whose rightness it changed (one-sided sign test, exact)."""
    n = change.lost + change.gained
    return sum(math.comb(n, k) for k in range(change.lost, n + 1)) / 2 ** n


def _answers(change: ClassChange) -> str:
    return f"{change.lost} right answers lost and {change.gained} gained of {change.images:,}"


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
