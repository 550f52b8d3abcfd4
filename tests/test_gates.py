"""The gates judge the file, not the model's uncertainty; the verdict says what a failed cell means."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.accuracy.gates import Gates
from edgecnn.accuracy.metrics import agreement_metrics
from edgecnn.errors import EdgeCNNError
from edgecnn.results.report import Report
from edgecnn.results.schema import from_json
from edgecnn.validate.verdict import check_required, verdict

NAMES = tuple("abcd")


def _reference(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Confident reference probabilities (top class 0.85) and labels it mostly gets right."""
    rng = np.random.default_rng(seed)
    top = rng.integers(0, 4, n)
    probs = np.full((n, 4), 0.05, dtype=np.float32)
    probs[np.arange(n), top] = 0.85
    labels = np.where(rng.random(n) < 0.9, top, (top + 1) % 4)
    return probs, labels


def _near_tie(probs: np.ndarray, rows: list[int], gap: float) -> np.ndarray:
    """The reference with ``rows`` made a near-tie between their top class and the next one."""
    probs = probs.copy()
    for r in rows:
        a = int(probs[r].argmax())
        b = (a + 1) % 4
        probs[r] = 0.0
        probs[r, a], probs[r, b] = 0.5 + gap / 2, 0.5 - gap / 2
    return probs


def _noisy(probs: np.ndarray, eps: float, seed: int = 1) -> np.ndarray:
    """``probs`` moved by at most ``eps`` (as fp16 or int8 noise would), rows still summing to 1."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(-eps, eps, probs.shape)
    d -= d.mean(axis=1, keepdims=True)
    return (probs + d).astype(np.float32)


def _swap(probs: np.ndarray, rows: list[int]) -> np.ndarray:
    """``probs`` with the top two classes of ``rows`` exchanged: those answers flip."""
    probs = probs.copy()
    for r in rows:
        a, b = np.argsort(probs[r])[-2:][::-1]
        probs[r, [a, b]] = probs[r, [b, a]]
    return probs


def test_fp16_flips_between_near_tied_classes_are_noise():
    ref, labels = _reference()
    ties = [3, 50, 700]
    ref = _near_tie(ref, ties, gap=0.002)  # the reference barely separates these three
    variant = _noisy(ref, 0.002)
    variant = _swap(variant, ties)
    m = agreement_metrics(ref, variant, labels, NAMES)
    assert m.agreement == pytest.approx(0.997)  # below the 99.9 % fp16 gate as raw agreement
    judged = Gates().judge("fp16", m)
    assert judged.passed, judged.breaches
    assert judged.flips.total == 3 and judged.flips.near_tie == 3
    assert judged.flips.firm_agreement == 1.0


def test_fp16_flip_of_a_separated_answer_counts():
    ref, labels = _reference()
    ref = _near_tie(ref, [3, 50, 700], gap=0.2)  # separated by 0.2: far above fp16 noise
    variant = _swap(_noisy(ref, 0.002), [3, 50, 700])
    judged = Gates().judge("fp16", agreement_metrics(ref, variant, labels, NAMES))
    assert not judged.passed and judged.flips.near_tie == 0
    assert any("beyond near-ties" in b for b in judged.breaches)


def test_a_confident_flip_fails_fp16_whatever_the_agreement_and_int8_past_its_rate():
    """fp16 may flip no confident answer; int8 up to 0.2 % of them (2 in 1,000), which honest
    int8 files of deep nets do while holding every other gate."""
    ref, labels = _reference()

    def judged(kind: str, rows: list[int], n: int = 1000):
        variant = _swap(_noisy(ref, 0.001), rows)  # 0.85 vs 0.05: confident answers changed
        return Gates().judge(kind, agreement_metrics(ref[:n], variant[:n], labels[:n], NAMES))

    one = judged("fp16", [10])
    assert not one.passed and one.flips.confident == 1 and any("confident" in b for b in one.breaches)
    for kind in ("int8", "dynint8"):
        assert judged(kind, [10, 20]).passed, kind
        three = judged(kind, [10, 20, 30])
        assert not three.passed and three.flips.confident == 3
        assert any("confident" in b and "gate 2 in 1,000" in b for b in three.breaches)
    assert not judged("int8", [10], n=400).passed  # none allowed under 500 images


def test_the_tie_margin_follows_the_files_own_error_and_is_capped():
    ref, labels = _reference()
    ref = _near_tie(ref, [1, 2], gap=0.05)
    variant = _swap(_noisy(ref, 0.03), [1, 2])  # a noisy file: 2 x its error exceeds fp16's cap
    m = agreement_metrics(ref, variant, labels, NAMES)
    fp16, int8 = Gates().judge("fp16", m), Gates().judge("int8", m)
    assert fp16.flips.tie_margin == pytest.approx(0.01)  # capped: the flips count
    assert fp16.flips.near_tie == 0 and not fp16.passed
    assert int8.flips.tie_margin == pytest.approx(2 * m.kept_max_abs_diff)
    assert int8.flips.near_tie == 2 and int8.passed, int8.breaches


def test_int8_still_judges_accuracy_and_the_worst_class():
    ref, labels = _reference()
    variant = ref.copy()
    wrong = np.flatnonzero((ref.argmax(1) == labels) & (labels == 2))[:40]
    variant[wrong] = np.roll(variant[wrong], 1, axis=1)  # class 2 loses 40 right answers
    judged = Gates().judge("int8", agreement_metrics(ref, variant, labels, NAMES))
    assert not judged.passed
    assert any("one class" in b for b in judged.breaches)
    assert any("pp (gate" in b for b in judged.breaches)


def _changed(n: int, cls: int, lost: int, gained: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference, variant, labels) on ``n`` images where the variant turns ``lost`` right
    answers of class ``cls`` wrong and ``gained`` wrong ones right, each by a firm but not
    confident margin (0.2)."""
    ref, labels = _reference(n)
    top = ref.argmax(1)
    right = np.flatnonzero((top == labels) & (labels == cls))[:lost]
    wrong = np.flatnonzero((top != labels) & (labels == cls))[:gained]
    assert len(right) == lost and len(wrong) == gained
    ref = _near_tie(ref, list(right), gap=0.2)
    for r in wrong:  # the label second, 0.2 behind the reference's answer
        ref[r] = 0.0
        ref[r, top[r]], ref[r, labels[r]] = 0.6, 0.4
    return ref, _swap(ref, [*right, *wrong]), labels


def test_int8_fails_a_loss_the_answers_show_not_one_chance_explains():
    """A class of 100 images that loses 6 right answers and gains 2 (4 pp, 1 pp overall) is what
    any int8 file of a deep net may do by chance (sign test p = 0.14); the same rates on ten
    times the images are a loss, and fail both gates."""
    ref, variant, labels = _changed(400, 2, lost=6, gained=2)
    m = agreement_metrics(ref, variant, labels, NAMES)
    assert m.class_changes["c"].lost == 6 and m.class_changes["c"].gained == 2
    assert m.per_class_delta["c"] < -0.03 and m.accuracy_delta < -0.005  # past both gates
    assert Gates().judge("int8", m).passed, Gates().judge("int8", m).breaches
    plain = Gates(int8_loss_significance=1.0).judge("int8", m)  # 1: any drop past the gates fails
    assert not plain.passed and len(plain.breaches) == 2
    ref, variant, labels = _changed(4000, 2, lost=60, gained=20)
    judged = Gates().judge("int8", agreement_metrics(ref, variant, labels, NAMES))
    assert not judged.passed
    assert any("on one class, 'c'" in b and "60 right answers lost and 20 gained" in b for b in judged.breaches)
    assert any(b.startswith("loses 1.00 pp (gate 0.5;") for b in judged.breaches), judged.breaches


@pytest.mark.parametrize("field", ["fp16_min_agreement", "int8_max_accuracy_drop", "confident_margin",
                                   "int8_loss_significance"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.05, 7.0])
def test_a_gate_that_is_not_a_finite_fraction_is_refused(field, value):
    with pytest.raises(EdgeCNNError, match=field):
        Gates(**{field: value})


def _report(cells: dict[str, dict[str, bool]], required=("fp32", "int8"), stale=()) -> Report:
    """A report whose variant x class cells pass or fail as ``cells`` says, nothing else measured."""
    rows = list(next(iter(cells.values())))
    cell = {"accuracy": 0.9, "accuracy_delta": 0.0, "agreement": 1.0, "max_abs_diff": 0.0,
            "images": 100, "emulated": False}
    variants = [{"variant": v, "file": f"model.{v}.onnx", "gate": "rule", "stale": v in stale,
                 "size_bytes": 1, "compression": 1.0, "passed": all(by.values()), **cell,
                 "mean_abs_diff": 0.0, "per_class_accuracy": {}, "per_class_delta": {},
                 "classes_called_out": [], "failed_on": [r for r, ok in by.items() if not ok],
                 "by_isa": {r: {**cell, "passed": ok} for r, ok in by.items()}}
                for v, by in cells.items()]
    return from_json(Report, {
        "model": "m", "dataset": "d", "test_images": 100, "keras_file": "model.keras",
        "keras_accuracy": 0.9, "gates": {}, "passed": True, "isa_rows": rows, "required": list(required),
        "machine": {"host_isa": rows[0], "onnxruntime": "1", "native_row": rows[0]}, "variants": variants})


def test_a_failed_cell_of_an_optional_variant_marks_it_not_for_that_class():
    report = _report({"fp32": {"x86-vnni": True, "arm64-dot": True},
                      "int8": {"x86-vnni": True, "arm64-dot": True},
                      "fp16": {"x86-vnni": True, "arm64-dot": False}})
    failures, not_for = verdict(report)
    assert failures == [] and not_for == {"fp16": ["arm64-dot"]}


def test_the_run_fails_for_what_a_user_must_act_on():
    cells = {"fp32": {"x86-vnni": True, "arm64-dot": True},
             "int8": {"x86-vnni": True, "arm64-dot": False},
             "fp16": {"x86-vnni": True, "arm64-dot": False}}
    failures, not_for = verdict(_report(cells))
    assert failures == ["model.int8.onnx (required) fails on arm64-dot"] and not_for == {"fp16": ["arm64-dot"]}
    failures, _ = verdict(_report(cells, required=("fp32", "fp16")))
    assert failures == ["model.fp16.onnx (required) fails on arm64-dot"]
    nothing = {v: {"x86-vnni": True, "arm64-dot": False} for v in ("fp32", "int8")}
    failures, _ = verdict(_report(nothing, required=()))
    assert failures == ["no variant passes on arm64-dot"]
    failures, _ = verdict(_report({"fp32": {"x86-vnni": True}, "fp16": {"x86-vnni": True}},
                                  stale=("fp16",)))
    assert failures == ["model.fp16.onnx is stale (rule)"]


def test_required_variants_are_checked_names():
    assert check_required("fp32, fp16") == ("fp32", "fp16")
    with pytest.raises(EdgeCNNError, match="int4"):
        check_required("fp32,int4")


@pytest.mark.parametrize("option", ["--int8-max-drop", "--int8-min-agreement", "--int8-max-class-drop",
                                    "--int8-significance",
                                    "--min-agreement", "--max-abs-diff", "--fp16-min-agreement"])
@pytest.mark.parametrize("value, says", [("nan", "finite"), ("-5", "between 0 and 1"), ("700", "between 0 and 1")])
def test_a_gate_out_of_range_on_the_command_line_is_a_usage_error(option, value, says, tiny_onnx):
    """A NaN gate compares false with everything, so it would pass any file; -5 pp or 700 %
    judge nothing either: refused up front, before any work."""
    import re

    from typer.testing import CliRunner

    from edgecnn.cli.main import app

    result = CliRunner().invoke(app, ["validate", str(tiny_onnx.parent), option, value])
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)  # rich's usage box wraps the message
    assert result.exit_code == 2 and says in text, result.output
