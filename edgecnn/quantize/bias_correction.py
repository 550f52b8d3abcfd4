"""Bias correction: each int8 layer's mean output shift against fp32, taken out of its bias.

Rounding weights to int8 moves a conv's output by ``ΔW · x``, whose mean over images is not
zero: each output channel is shifted by about ``ΔW · E[x]``, and the shifts add up through a deep
net into a lean towards some classes (Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", 2019; NNCF's bias correction). On a MobileNetV2-0.35 at 96x96
the lean shows as one class losing answers to another. This is the empirical form, layer by layer
in graph order like NNCF's: the mean of each Conv / Gemm output per channel over calibration
images is measured in the int8 graph, with the layers before it already corrected, and in fp32,
and the difference is subtracted from the layer's bias (then quantized again, to int32 at the
bias's own scale). onnxruntime's quantizer has no such step (bench/README.md, "int8 on
MobileNet-class nets", for the measured effect).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.export.onnx_metadata import load_proto

# Calibration images the means are taken over: a per-channel mean settles long before this.
IMAGES = 128
BATCH = 32


@dataclass(frozen=True)
class _Layer:
    """A Conv / Gemm of the int8 graph whose bias is dequantized from an int32 initializer."""

    node: str
    output: str  # the float output before its QuantizeLinear
    bias: str  # the int32 initializer
    scale: np.ndarray  # the bias's dequantization scale, per channel


def correct_biases(model: Any, fp32: Path, feed: np.ndarray) -> int:
    """Correct the biases of ``model`` (a QDQ graph quantized from the float graph file ``fp32``,
    whose node names it keeps) in place, measured on ``feed`` (calibration images as the model
    reads them); returns how many layers were corrected."""
    import onnx
    from onnx import numpy_helper

    layers = _layers(model, {n.name: n for n in load_proto(fp32).graph.node})
    if not layers:
        return 0
    feed = feed[:IMAGES]
    reference = _channel_means(_exposed(load_proto(fp32), [out for _, out in layers]), feed)
    initializers = {t.name: t for t in model.graph.initializer}
    biases = {layer.bias: numpy_helper.to_array(initializers[layer.bias]).astype(np.float64) * layer.scale
              for layer, _ in layers}
    session = _session(_with_float_biases(onnx, model, [layer for layer, _ in layers]))
    # In graph order, each mean measured with the biases before it corrected and rounded to
    # int32 as the file will hold them: a dense layer sums that rounding over thousands of inputs.
    for layer, fp32_output in layers:
        feeds = {f"{b}__float": v.astype(np.float32) for b, v in biases.items()}
        corrected = biases[layer.bias] - (_means(session, feed, [layer.output], feeds)[0] - reference[fp32_output])
        quantized = np.clip(np.round(corrected / layer.scale), -2**31, 2**31 - 1).astype(np.int32)
        biases[layer.bias] = quantized.astype(np.float64) * layer.scale
        initializers[layer.bias].CopyFrom(numpy_helper.from_array(quantized, layer.bias))
    return len(layers)


def _layers(model: Any, fp32_nodes: dict[str, Any]) -> list[tuple[_Layer, str]]:
    """The correctable layers of ``model`` in graph order, each with its fp32 node's output."""
    from onnx import TensorProto, numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.name not in fp32_nodes:
            continue
        dq = producers.get(node.input[2])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in initializers:
            continue
        if initializers[dq.input[0]].data_type != TensorProto.INT32 or dq.input[1] not in initializers:
            continue
        scale = numpy_helper.to_array(initializers[dq.input[1]]).astype(np.float64)
        found.append((_Layer(node.name, node.output[0], dq.input[0], scale), fp32_nodes[node.name].output[0]))
    return found


def _with_float_biases(onnx: Any, model: Any, layers: list[_Layer]) -> Any:
    """A copy of ``model`` whose layers read their biases from float inputs, exposing their
    outputs: one session measures any bias without being built again."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    by_name = {node.name: node for node in probe.graph.node}
    for layer in layers:
        node = by_name[layer.node]
        name = f"{layer.bias}__float"
        node.input[2] = name
        probe.graph.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [len(layer.scale)]))
    return _exposed(probe, [layer.output for layer in layers])


def _exposed(model: Any, outputs: list[str]) -> Any:
    """``model`` with ``outputs`` (tensor names) as its only graph outputs."""
    import onnx

    del model.graph.output[:]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in outputs)
    return model


def _session(model: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _channel_means(model: Any, feed: np.ndarray) -> dict[str, np.ndarray]:
    """The mean of each output of ``model`` per channel (axis 1) over ``feed``."""
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, _means(session, feed, names, {})))


def _means(session: Any, feed: np.ndarray, outputs: list[str], extra: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Per-channel (axis 1) means of ``outputs`` over ``feed``, in batches."""
    name = session.get_inputs()[0].name
    sums, counts = [0.0] * len(outputs), [0] * len(outputs)
    for start in range(0, len(feed), BATCH):
        values = session.run(outputs, {name: feed[start:start + BATCH], **extra})
        for i, v in enumerate(values):
            sums[i] = sums[i] + v.astype(np.float64).sum(axis=tuple(a for a in range(v.ndim) if a != 1))
            counts[i] += v.size // v.shape[1]
    return [s / c for s, c in zip(sums, counts)]
