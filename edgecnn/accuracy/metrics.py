"""How a variant's answers compare with a reference's on labelled images.

Validation compares every variant with Keras; the int8 scheme search compares each candidate
with fp32. Both measure with this module, and judge with :class:`edgecnn.accuracy.gates.Gates`.
"""

from __future__ import annotations

import numpy as np

from edgecnn.accuracy.agreement import Agreement, ClassChange

# A class is called out when it loses this much more accuracy than the average class.
CLASS_CALLOUT_PP = 1.0


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(n_classes):
        mask = labels == c
        out.append(float((pred[mask] == c).mean()) if mask.any() else None)
    return out


def agreement_metrics(
    reference_probs: np.ndarray, probs: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> Agreement:
    """Agreement and error of ``probs`` against a reference (Keras, or fp32) on labelled images."""
    ref_pred, pred = reference_probs.argmax(1), probs.argmax(1)
    diff = np.abs(probs.astype(np.float64) - reference_probs.astype(np.float64))
    n = len(class_names)
    ref_pc = per_class_accuracy(ref_pred, labels, n)
    pc = per_class_accuracy(pred, labels, n)
    deltas = [None if a is None or b is None else b - a for a, b in zip(ref_pc, pc)]
    known = [d for d in deltas if d is not None]
    mean_delta = float(np.mean(known)) if known else 0.0
    callouts = [
        class_names[i]
        for i, d in enumerate(deltas)
        if d is not None and (d - mean_delta) * 100 <= -CLASS_CALLOUT_PP
    ]
    flipped = pred != ref_pred
    rows = np.flatnonzero(flipped)
    # the reference's margin between its own answer and the variant's, for each changed answer
    flip_margins = (reference_probs[rows, ref_pred[rows]].astype(np.float64)
                    - reference_probs[rows, pred[rows]].astype(np.float64))
    accuracy = float((pred == labels).mean())
    ref_accuracy = float((ref_pred == labels).mean())
    # (true class, predicted class) counts of the variant minus Keras's: where answers moved
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    np.add.at(confusion, (labels, ref_pred), -1)
    ref_right, right = ref_pred == labels, pred == labels
    changes = {name: ClassChange(int((labels == c).sum()), int((ref_right & ~right & (labels == c)).sum()),
                                 int((~ref_right & right & (labels == c)).sum()))
               for c, name in enumerate(class_names)}
    return Agreement(
        accuracy=accuracy,
        reference_accuracy=ref_accuracy,
        accuracy_delta=accuracy - ref_accuracy,
        images=int(len(labels)),
        agreement=float((pred == ref_pred).mean()),
        max_abs_diff=float(diff.max()),
        kept_max_abs_diff=float(diff[~flipped].max()) if (~flipped).any() else 0.0,
        flip_margins=sorted(flip_margins.tolist()),
        mean_abs_diff=float(diff.mean()),
        per_class_accuracy=dict(zip(class_names, pc)),
        per_class_delta=dict(zip(class_names, deltas)),
        classes_called_out=callouts,
        confusion_delta=confusion.tolist(),
        class_changes=changes,
    )
