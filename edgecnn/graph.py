"""Checks and rewrites of ONNX graphs: what an inference graph may contain, and the folds and
float-keeping rewrites export and quantization apply."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError

_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
_TRAINING_ONLY = ("Dropout", "Multinomial", "Bernoulli")


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


def fold_batch_reshapes(model: Any) -> int:
    """Give Reshapes that only keep the batch dimension a constant target shape.

    tf2onnx turns Keras's Flatten into Shape -> Gather -> Slice -> Concat -> Reshape, computed on
    every call to carry the batch size through. When shape inference proves the output is
    (same batch, static dims...), ``[-1, dims...]`` says the same; at batch 1 those seven tiny
    ops are a noticeable share of a 0.1 ms call. Returns the number of Reshapes folded.
    """
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    dims = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims[value.name] = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    initializers = {t.name for t in model.graph.initializer}
    folded = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] in initializers:
            continue
        src, dst = dims.get(node.input[0]), dims.get(node.output[0])
        if not src or not dst or not isinstance(src[0], str) or src[0] != dst[0]:
            continue
        rest_in, rest_out = src[1:], dst[1:]
        if not all(isinstance(d, int) and d > 0 for d in (*rest_in, *rest_out)):
            continue
        if int(np.prod(rest_in)) != int(np.prod(rest_out)):
            continue
        name = f"{node.output[0]}__static_shape"
        model.graph.initializer.append(
            numpy_helper.from_array(np.array([-1, *rest_out], dtype=np.int64), name)
        )
        node.input[1] = name
        folded += 1
    if folded:
        _prune_dead_nodes(model)
    return folded


def fold_conv_affine(model: Any) -> int:
    """Fold a per-channel Mul and Add after a Conv into the Conv's weights and bias.

    tf2onnx writes an inference BatchNormalization as Mul + Add after the conv. onnxruntime
    fuses them into the conv for fp32 at load time, but quantization sees them first: each
    becomes its own int8 op (QLinearMul, QLinearAdd) between requantizations, and a BN net's
    int8 file ran slower than its fp32 one (bench/README.md, "Speed suite"). Folded here, every
    variant starts from the graph onnxruntime would run. Returns the number of convs folded.
    """
    from onnx import numpy_helper

    init = {t.name: t for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    readers = _readers(model)
    folded = 0
    for conv in list(model.graph.node):
        if conv.op_type != "Conv" or conv.input[1] not in init or (len(conv.input) > 2 and conv.input[2] not in init):
            continue
        weights = numpy_helper.to_array(init[conv.input[1]]).astype(np.float64)
        channels = weights.shape[0]
        bias = (numpy_helper.to_array(init[conv.input[2]]).astype(np.float64) if len(conv.input) > 2
                else np.zeros(channels))
        absorbed, tensor = [], conv.output[0]
        for op in ("Mul", "Add"):
            next_nodes = readers.get(tensor, [])
            if tensor in outputs or len(next_nodes) != 1 or next_nodes[0].op_type != op:
                break
            node = next_nodes[0]
            other = node.input[1] if node.input[0] == tensor else node.input[0]
            per_channel = _per_channel(init.get(other), channels)
            if per_channel is None:
                break
            if op == "Mul":
                weights = weights * per_channel.reshape(-1, *([1] * (weights.ndim - 1)))
                bias = bias * per_channel
            else:
                bias = bias + per_channel
            absorbed.append(node)
            tensor = node.output[0]
        if not absorbed:
            continue
        names = (f"{conv.name or conv.output[0]}__folded_w", f"{conv.name or conv.output[0]}__folded_b")
        model.graph.initializer.extend([numpy_helper.from_array(weights.astype(np.float32), names[0]),
                                        numpy_helper.from_array(bias.astype(np.float32), names[1])])
        del conv.input[1:]
        conv.input.extend(names)
        conv.output[0] = tensor
        for node in absorbed:
            model.graph.node.remove(node)
        readers = _readers(model)
        folded += 1
    if folded:
        _prune_dead_nodes(model)
    return folded


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


# Ops that only move an image's values around: a scale applied before them applies after them.
_LAYOUT_ONLY = frozenset({"Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze"})


def fold_input_scale(model: Any) -> int:
    """Fold a model's own input rescaling (Keras ``Rescaling``: ``x * scale + offset`` on the
    image, before any conv) into the first conv's weights and bias.

    Left in the graph it is one more pass over every pixel in fp32, and quantization turns it
    into a QLinearMul over the whole image, up to half of an int8 call's time (bench/README.md,
    "Speed suite"). A scale folds exactly; an offset only into a conv without zero padding
    (padding is not shifted), otherwise the Add stays. Returns 1 when folded, else 0.
    """
    from onnx import numpy_helper

    init = {t.name: t for t in model.graph.initializer}
    readers = _readers(model)
    image = model.graph.input[0].name
    chain = readers.get(image, [])
    if len(chain) != 1 or chain[0].op_type != "Mul":
        return 0
    mul = chain[0]
    scale = _scalar(init.get(mul.input[1] if mul.input[0] == image else mul.input[0]))
    if scale is None:
        return 0
    tensor, add, offset = mul.output[0], None, 0.0
    nxt = readers.get(tensor, [])
    if len(nxt) == 1 and nxt[0].op_type == "Add":
        other = nxt[0].input[1] if nxt[0].input[0] == tensor else nxt[0].input[0]
        if (value := _scalar(init.get(other))) is not None:
            add, offset, tensor = nxt[0], value, nxt[0].output[0]
    node = None
    while True:  # through layout ops to the conv
        nxt = readers.get(tensor, [])
        if len(nxt) != 1:
            return 0
        node = nxt[0]
        if node.op_type == "Conv":
            break
        if node.op_type not in _LAYOUT_ONLY:
            return 0
        tensor = node.output[0]
    if node.input[1] not in init or (len(node.input) > 2 and node.input[2] not in init):
        return 0
    padded = any(a.name == "pads" and any(a.ints) for a in node.attribute) or any(
        a.name == "auto_pad" and a.s in (b"SAME_UPPER", b"SAME_LOWER") for a in node.attribute)
    keep_add = add is not None and offset != 0.0 and padded
    weights = numpy_helper.to_array(init[node.input[1]]).astype(np.float64)
    bias = (numpy_helper.to_array(init[node.input[2]]).astype(np.float64) if len(node.input) > 2
            else np.zeros(weights.shape[0]))
    if add is not None and not keep_add:
        bias = bias + offset * weights.sum(axis=tuple(range(1, weights.ndim)))
    weights = weights * scale
    if keep_add:  # x*s + t = s * (x + t/s): the scale folds, the offset stays, divided by it
        offset_name = f"{add.name or add.output[0]}__unscaled"
        model.graph.initializer.append(numpy_helper.from_array(np.array(offset / scale, np.float32), offset_name))
        add.input[:] = [image, offset_name]
    else:
        after = (add if add is not None else mul).output[0]
        for reader in readers.get(after, []):
            reader.input[:] = [image if i == after else i for i in reader.input]
        if add is not None:
            model.graph.node.remove(add)
    model.graph.node.remove(mul)
    names = (f"{node.name or node.output[0]}__scaled_w", f"{node.name or node.output[0]}__scaled_b")
    model.graph.initializer.extend([numpy_helper.from_array(weights.astype(np.float32), names[0]),
                                    numpy_helper.from_array(bias.astype(np.float32), names[1])])
    del node.input[1:]
    node.input.extend(names)
    _prune_dead_nodes(model)
    return 1


def _scalar(tensor: Any) -> float | None:
    if tensor is None:
        return None
    from onnx import numpy_helper

    value = numpy_helper.to_array(tensor)
    return float(value.reshape(())) if value.size == 1 else None


def _per_channel(tensor: Any, channels: int) -> np.ndarray | None:
    """A constant's values per output channel when it broadcasts along the channel axis of an
    NCHW tensor only (shapes (C,1,1), (1,C,1,1), or a scalar); None otherwise."""
    if tensor is None:
        return None
    from onnx import numpy_helper

    value = numpy_helper.to_array(tensor).astype(np.float64)
    if value.size == 1:
        return np.full(channels, value.reshape(()))
    shape = [d for d in value.shape]
    while shape and shape[0] == 1 and len(shape) > 3:
        shape = shape[1:]
    if len(shape) == 3 and shape[0] == channels and shape[1:] == [1, 1]:
        return value.reshape(channels)
    return None


def _prune_dead_nodes(model: Any) -> None:
    """Drop nodes (and initializers) nothing reads any more."""
    while True:
        needed = {o.name for o in model.graph.output}
        for node in model.graph.node:
            needed.update(node.input)
        dead = [n for n in model.graph.node if not any(o in needed for o in n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {i for n in model.graph.node for i in n.input}
    for tensor in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(tensor)


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
    readers = _readers(model)
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
    readers = _readers(model)
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
        _prune_dead_nodes(model)
    return removed


def _readers(model: Any) -> dict[str, list[Any]]:
    """The nodes that read each tensor."""
    readers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers
