"""The graph rewrites of static int8: which nodes stay float (the conv that reads the image,
the output softmax), average pools as depthwise convs, and no quantize pair after a Gemm that
feeds float."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from edgecnn.export.graph import prune_dead_nodes, readers_of


def average_pools_as_depthwise_convs(model: Any) -> int:
    """Rewrite each AveragePool whose windows tile the image (kernel = stride, no padding) as
    the depthwise Conv it equals (every weight 1/(kh*kw)), for static int8 only.

    onnxruntime's QLinearAveragePool is a plain loop, and in a BN + LeakyReLU + AvgPool net it
    took over half of an int8 call at batch 64 (bench/README.md, "Speed suite"); a depthwise
    QLinearConv runs the same sums with its vectorised kernels. In fp32 the pool is fast and
    stays. Returns the number of pools rewritten.
    """
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*inferred.graph.input, *inferred.graph.value_info)}
    rewritten = 0
    for index, node in enumerate(list(model.graph.node)):
        if node.op_type != "AveragePool":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel, strides = list(attrs.get("kernel_shape", [])), list(attrs.get("strides", [1, 1]))
        shape = shapes.get(node.input[0], [])
        if (len(kernel) != 2 or kernel != strides or any(attrs.get("pads", [])) or attrs.get("ceil_mode")
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID") or len(shape) != 4
                or not shape[1]):
            continue
        channels = shape[1]
        name = f"{node.name or node.output[0]}__depthwise_w"
        model.graph.initializer.append(numpy_helper.from_array(
            np.full((channels, 1, *kernel), 1.0 / (kernel[0] * kernel[1]), np.float32), name))
        conv = helper.make_node("Conv", [node.input[0], name], list(node.output), name=node.name or None,
                                kernel_shape=kernel, strides=strides, group=channels)
        position = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(position, conv)
        rewritten += 1
    return rewritten


# Elementwise activations that never decrease (ReLU, ReLU6): max-pooling before them gives what
# it gives after.
_MONOTONE_ACTIVATIONS = ("Relu", "Clip")
_IMAGE_CHANNELS = 3


# Ops between the graph input and the first conv that only lay out or scale the image.
_IMAGE_PREPARATION = frozenset({"Transpose", "Cast", "Mul", "Add", "Sub", "Div", "Reshape",
                                "Identity", "Squeeze", "Unsqueeze"})


def _image_tensors(model: Any) -> set[str]:
    """The graph's image inputs and what only layout and scaling ops made of them."""
    initializers = {t.name for t in model.graph.initializer}
    found = {i.name for i in model.graph.input if i.name not in initializers}
    for node in model.graph.node:  # topological order
        if node.op_type in _IMAGE_PREPARATION and node.input and node.input[0] in found:
            found.update(node.output)
    return found


def float_image_convs(model: Any) -> list[str]:
    """Names of the nodes static int8 keeps in float: each Conv that reads the image (at most 3
    channels, straight from the input or through layout and scaling ops), with its activation
    and max-pool, the pool moved before the activation.

    Such a conv is an im2col GEMM whose inner dimension is only C*kh*kw (9 for a grayscale 3x3),
    which onnxruntime's int8 kernels handle poorly while its float NCHWc kernel runs it directly;
    it is also the cheapest layer (one input channel) and the one whose u8 x s8 products saturate
    on AVX2. Quantizing after the pool instead of before it moves 4x less data through the
    quantize and the NHWC transpose. The activation goes after the pool so that onnxruntime does
    not push the QuantizeLinear above it onto a uint8 NCHW MaxPool (its slow generic kernel):
    max and a non-decreasing activation commute, so the outputs are the same floats. (A later
    conv with few channels reads features, not the image: it stays int8.) Measured in
    bench/README.md.
    """
    from onnx import helper

    initializers = {t.name: t for t in model.graph.initializer}
    readers = readers_of(model)
    outputs = {o.name for o in model.graph.output}

    def only_reader(node: Any, op_types: tuple[str, ...]) -> Any | None:
        users = readers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type in op_types and node.output[0] not in outputs:
            return users[0]
        return None

    kept: list[str] = []
    image = _image_tensors(model)
    for conv in [n for n in model.graph.node if n.op_type == "Conv" and n.input[0] in image]:
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        weight = initializers.get(conv.input[1])
        if weight is None or len(weight.dims) != 4 or attrs.get("group", 1) != 1:
            continue
        if weight.dims[1] > _IMAGE_CHANNELS:
            continue
        stem = [conv]
        activation = only_reader(conv, _MONOTONE_ACTIVATIONS)
        pool = only_reader(activation, ("MaxPool",)) if activation is not None else None
        if pool is not None and len(pool.output) != 1:  # with indices: they would move too
            pool = None
        stem += [n for n in (activation, pool) if n is not None]
        for node in stem:
            node.name = node.name or f"{node.output[0]}__float"
        kept.extend(node.name for node in stem)
        if pool is not None:
            _pool_before(model, activation, pool)
    return kept


def _pool_before(model: Any, activation: Any, pool: Any) -> None:
    """x -> activation -> MaxPool -> y becomes x -> MaxPool -> activation -> y, in place."""
    nodes = list(model.graph.node)
    i, j = nodes.index(activation), nodes.index(pool)
    moved_pool, moved_activation = type(pool)(), type(activation)()
    moved_pool.CopyFrom(pool)
    moved_activation.CopyFrom(activation)
    between = f"{pool.output[0]}__before_{activation.op_type.lower()}"
    moved_pool.input[0], moved_pool.output[0] = activation.input[0], between
    moved_activation.input[0], moved_activation.output[0] = between, pool.output[0]
    model.graph.node[i].CopyFrom(moved_pool)
    model.graph.node[j].CopyFrom(moved_activation)


def float_softmax_outputs(model: Any) -> list[str]:
    """Names of the Softmax nodes that produce a graph output: static int8 keeps them in float.

    A uint8 softmax rounds every probability to a multiple of 1/256; in float it costs the same
    (the logits are ten numbers) and the probabilities keep their precision.
    """
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if n.op_type == "Softmax" and n.output[0] in outputs]


def gemm_float_outputs(model: Any, float_nodes: Collection[str]) -> int:
    """Drop the QuantizeLinear -> DequantizeLinear pair after a Gemm read only by ``float_nodes``
    (the nodes the quantizer was told to keep in float).

    The quantizer puts the pair after every quantized Gemm; before a float Softmax onnxruntime
    then runs a QGemm with a uint8 output and dequantizes it again, one node more, with the
    logits rounded to 256 levels. Without the pair it fuses a QGemm with a float output.
    Returns the number of pairs removed.
    """
    nodes = model.graph.node
    producers = {out: node for node in nodes for out in node.output}
    readers = readers_of(model)
    outputs = {o.name for o in model.graph.output}
    removed = 0
    for q in [n for n in nodes if n.op_type == "QuantizeLinear"]:
        gemm = producers.get(q.input[0])
        users = readers.get(q.output[0], [])
        if gemm is None or gemm.op_type != "Gemm" or len(readers[q.input[0]]) != 1 or len(users) != 1:
            continue
        dq = users[0]
        after = readers.get(dq.output[0], [])
        if (dq.op_type != "DequantizeLinear" or dq.output[0] in outputs or not after
                or any(n.name not in float_nodes for n in after)):
            continue
        for node in after:
            node.input[:] = [q.input[0] if name == dq.output[0] else name for name in node.input]
        nodes.remove(q)
        nodes.remove(dq)
        removed += 1
    if removed:
        prune_dead_nodes(model)
    return removed
