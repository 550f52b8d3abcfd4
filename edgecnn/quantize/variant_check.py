"""A variant is kept only when onnxruntime loads it and it answers like the file it was made
from: the same input and output types, and a row of probabilities per image.

The converters can write files that pass ``onnx.checker`` and still do not load (the fp16
converter turning a uint8 input's Cast to float16, leaving its output type inconsistent); such a
file must never reach the export folder, where a user would ship it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from edgecnn.runtime.session import load_session


def _io_types(path: Path) -> tuple[list[str], list[str]]:
    session = load_session(path, "cpu")
    return [i.type for i in session.get_inputs()], [o.type for o in session.get_outputs()]


def check_variant(path: Path, fp32: Path, variant: str) -> None:
    """One line naming ``variant`` when ``path`` does not load, declares other input or output
    types than ``fp32``, or does not answer a blank batch with probabilities."""
    try:
        types = _io_types(path)
        predictor = Predictor(path, providers="cpu")
        probs = predictor.predict(np.zeros((2, *predictor.input_shape), np.uint8)).probabilities
    except EdgeCNNError as exc:  # it names a scratch file: the user knows the variant
        text = " ".join(str(exc).replace(f"{path.parent}{os.sep}", "").split())[:400]
        raise EdgeCNNError(f"the {variant} file does not load or run in onnxruntime: {text}") from exc
    expected = _io_types(fp32)
    if types != expected:
        raise EdgeCNNError(f"the {variant} file declares input/output types {types}, the fp32 file {expected}")
    classes = len(predictor.class_names)
    if probs.shape != (2, classes) or not np.isfinite(probs).all():
        raise EdgeCNNError(f"the {variant} file answers a blank batch of 2 with {probs.shape} outputs, "
                           f"not (2, {classes}) probabilities")
