"""Why did static int8 lose accuracy? Per-layer drift between the fp32 and QDQ models.

Uses onnxruntime's QDQ debugging utilities: both models are augmented to output every
intermediate activation, run on the same images, and matched tensor by tensor. The
signal-to-quantization-noise ratio (SQNR, dB) of each activation says how far the int8 model
drifted from fp32 there; the lowest values name the layers to keep in float or recalibrate.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.quantize.calibrate import (
    input_name,
    make_reader,
    preprocess_for_quantization,
)
from edgecnn.runtime.metadata import ModelInfo


def layer_drift(
    fp32_path: str | Path,
    int8_path: str | Path,
    images: np.ndarray,
    info: ModelInfo,
    top: int = 10,
    preprocessed: bool = False,
) -> list[dict[str, Any]]:
    """The ``top`` activations with the lowest SQNR between fp32 and int8, worst first.

    Args:
        fp32_path: the fp32 model the int8 model was quantized from.
        int8_path: the static QDQ model.
        images: uint8 images (training split) to run both models on.
        info: the models' metadata (what their input reads).
        top: how many tensors to return.
        preprocessed: ``fp32_path`` is already the quantizer's pre-processed graph.
    """
    debug = require("onnxruntime.quantization.qdq_loss_debug", "Quantization debugging")
    with tempfile.TemporaryDirectory(prefix="edgecnn-qdebug-") as tmp:
        tmp = Path(tmp)
        # Quantization ran on the pre-processed graph, so its tensor names are the ones to match.
        float_model = Path(fp32_path) if preprocessed else tmp / "float.onnx"
        if not preprocessed:
            preprocess_for_quantization(Path(fp32_path), float_model)
        name = input_name(float_model)
        activations = {}
        for label, source in (("float", float_model), ("qdq", Path(int8_path))):
            augmented = tmp / f"{label}.augmented.onnx"
            debug.modify_model_output_intermediate_tensors(str(source), str(augmented))
            activations[label] = debug.collect_activations(
                str(augmented), make_reader(images, info, name)
            )
    matched = debug.create_activation_matching(activations["qdq"], activations["float"])
    errors = debug.compute_activation_error(matched)
    drift = [
        {"tensor": tensor, "sqnr_db": float(err["xmodel_err"])}
        for tensor, err in errors.items()
        if "xmodel_err" in err and np.isfinite(err["xmodel_err"])
    ]
    return sorted(drift, key=lambda d: d["sqnr_db"])[:top]
