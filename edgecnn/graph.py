"""Checks on ONNX graphs: what an inference graph may contain, and op statistics."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edgecnn.errors import EdgeCNNError

_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
_TRAINING_ONLY = ("Dropout", "Multinomial", "Bernoulli")


def op_counts(model: Any) -> Counter:
    """How often each op type occurs in the main graph."""
    return Counter(node.op_type for node in model.graph.node)


def check_inference_graph(model: Any) -> None:
    """Fail when a graph still holds random, training-only or non-standard ops.

    Keras augmentation layers or a training-mode call leave such ops behind; onnxruntime then
    refuses the file or, worse, the model gives different answers on every call.
    """
    bad = sorted(
        {
            f"{node.op_type} ({node.domain})" if node.domain not in _STANDARD_DOMAINS else node.op_type
            for node in model.graph.node
            if "Random" in node.op_type
            or node.op_type in _TRAINING_ONLY
            or node.domain not in _STANDARD_DOMAINS
        }
    )
    if bad:
        raise EdgeCNNError(
            "The exported graph contains ops that do not belong in inference: "
            + ", ".join(bad)
            + ". The model was probably traced in training mode."
        )
