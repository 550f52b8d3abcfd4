"""How long a device should take: the multiply-accumulates of a model, and a device's rate.

A remote call's deadline is its work at a conservative rate: the model's MACs per image (Conv,
Gemm and MatMul, read from the ONNX graph), times images and files, at a twentieth of the rate
the device itself measured (a one-thread float matmul, read with its info). A MobileNet at
224 px is 70x the MACs of a 28x28 tutorial net, so a fixed time per image would either cut a
slow board's honest run or wait minutes on a device that hung.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import MissingDependencyError

# The measured matmul rate overstates what convolutions reach (depthwise layers are memory
# bound, fp16 without fp16 cores is cast to fp32): the deadline assumes a twentieth of it.
RATE_MARGIN = 20.0
# When the device's rate or the model's MACs are not known: a single core of a Pi Zero 2
# (about 1 GMAC/s one thread, float matmul), at the same margin.
UNKNOWN_RATE_MACS_S = 1e9
UNKNOWN_MACS_PER_IMAGE = 50e6  # a MobileNetV2-1.0 at 128 px; the tutorial nets are 1-4 M
SESSION_S = 10.0  # loading one file and its first run, on a slow board


def graph_macs(path: Path) -> float | None:
    """Multiply-accumulates per image of the Conv, Gemm and MatMul nodes of a float ONNX file;
    None when onnx is not installed or the graph has none of them with known shapes."""
    try:
        onnx = require("onnx", "Counting a model's work")
    except MissingDependencyError:  # a runtime-only install: the caller uses the unknown-model estimate
        return None
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception:  # noqa: BLE001 -- any graph onnx cannot read: the unknown-model estimate
        return None
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output]}
    total = 0.0
    for node in model.graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        weight = weights.get(node.input[1]) if len(node.input) > 1 else None
        if not out or not weight:
            continue
        per_output = 0
        if node.op_type == "Conv" and len(weight) >= 3:
            per_output = _product(weight[1:])  # Cin / group x kernel
        elif node.op_type == "MatMul" and len(weight) == 2:
            per_output = weight[0]
        elif node.op_type == "Gemm" and len(weight) == 2:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            per_output = weight[1] if trans_b else weight[0]
        total += _product(out[1:]) * per_output
    return total or None


def device_rate(seconds: float = 0.2) -> float:
    """This process's one-thread float32 matmul rate, in MACs per second, over about
    ``seconds`` (the caller sets the BLAS thread count to one before numpy loads)."""
    a = np.ones((256, 256), np.float32)
    a @ a  # warm-up: the first call allocates
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ a
        calls += 1
    return calls * 256**3 / elapsed


def work_s(macs_per_image: float | None, images: int, files: int, rate_macs_s: float | None) -> float:
    """Seconds ``files`` models of ``macs_per_image`` take on ``images`` at a device's rate,
    conservatively: a twentieth of the rate, and a slow board's session time per file."""
    macs = macs_per_image or UNKNOWN_MACS_PER_IMAGE
    rate = (rate_macs_s if rate_macs_s and rate_macs_s > 0 else UNKNOWN_RATE_MACS_S) / RATE_MARGIN
    return files * (SESSION_S + images * macs / rate)


def _product(values: list[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result
