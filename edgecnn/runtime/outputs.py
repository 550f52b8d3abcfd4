"""What a classifier's output means: the output kinds and their conversion to probabilities.

Training, validation and the Predictor all turn raw outputs into (N, C) probabilities here, so
a sigmoid head is read the same way everywhere.
"""

from __future__ import annotations

import numpy as np

OUTPUT_KINDS = ("softmax", "sigmoid")
# Rows of a softmax in float16 or int8 sum to 1 within this: the Predictor refuses outputs that
# do not, and so does validation for the outputs a runner brings back.
SUM_TOLERANCE = 2e-2


def output_kind(units: int) -> str:
    """The kind of a classifier head of ``units`` outputs: one unit is a sigmoid."""
    return "sigmoid" if units == 1 else "softmax"


def class_count(units: int) -> int:
    """Classes a head of ``units`` outputs predicts (a single sigmoid unit predicts two)."""
    return 2 if units == 1 else units


def to_probabilities(raw: np.ndarray, kind: str) -> np.ndarray:
    """(N, C) float32 class probabilities from a model's raw output (sigmoid gets two columns)."""
    raw = np.asarray(raw, dtype=np.float32)
    if kind == "sigmoid":
        p = raw.reshape(-1, 1)
        return np.concatenate([1.0 - p, p], axis=1)
    return raw


def activate(raw: np.ndarray, kind: str) -> np.ndarray:
    """Logits -> what a ``kind`` head would output (numerically stable softmax / sigmoid)."""
    raw = np.asarray(raw, dtype=np.float64)
    if kind == "sigmoid":
        return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
    shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
