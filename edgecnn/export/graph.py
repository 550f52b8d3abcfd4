"""Checks and folds of an exported ONNX graph: what an inference graph may contain, and the
rewrites export applies (reshapes, BatchNorm into convs, the model's own input scaling, hard
activations as one op); the graph walks quantization's rewrites share
(:mod:`edgecnn.quantize.rewrites`)."""

from __future__ import annotations

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
        prune_dead_nodes(model)
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
    readers = readers_of(model)
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
        readers = readers_of(model)
        folded += 1
    if folded:
        prune_dead_nodes(model)
    return folded


def fuse_hard_activations(model: Any) -> int:
    """Write tf2onnx's hard-sigmoid, ``Clip(x + 3, 0, 6) * (1/6)``, as one ``HardSigmoid``, and
    ``x`` times it as one ``HardSwish`` (MobileNetV3's activations).

    tf2onnx writes each as three or four elementwise ops, each a pass over the tensor that
    onnxruntime neither fuses nor keeps in its blocked (NCHWc) layout: a MobileNetV3-small ran
    2x slower than LiteRT at batch 1 with a third of its time there (bench/README.md, "Edge
    nets"). ``HardSigmoid`` after a Conv fuses into it. The same function, up to float
    rounding. Returns the number of activations fused.
    """
    from onnx import helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    init = {t.name: t for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    readers = readers_of(model)

    def only_reader(tensor: str, op: str) -> Any:
        found = readers.get(tensor, [])
        return found[0] if len(found) == 1 and found[0].op_type == op and tensor not in outputs else None

    def other_is(node: Any, tensor: str, value: float) -> bool:
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        constant = _scalar(init.get(other))
        return constant is not None and abs(constant - value) <= 1e-6 * max(1.0, abs(value))

    fused = 0
    for add in list(model.graph.node):
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        x = next((t for t in add.input if t not in init and other_is(add, t, 3.0)), None)
        clip = only_reader(add.output[0], "Clip") if x else None
        if clip is None or len(clip.input) != 3 or _scalar(init.get(clip.input[1])) != 0.0 \
                or _scalar(init.get(clip.input[2])) != 6.0:
            continue
        scale = only_reader(clip.output[0], "Mul") or only_reader(clip.output[0], "Div")
        if scale is None or scale.input[0] != clip.output[0] and scale.op_type == "Div" \
                or not other_is(scale, clip.output[0], 1 / 6 if scale.op_type == "Mul" else 6.0):
            continue
        gone, out = [add, clip, scale], scale.output[0]
        times = only_reader(out, "Mul")
        if opset >= 14 and times is not None and x in times.input and out in times.input:
            gone.append(times)
            new = helper.make_node("HardSwish", [x], [times.output[0]], name=f"{add.name}__hardswish")
        else:
            new = helper.make_node("HardSigmoid", [x], [out], name=f"{add.name}__hardsigmoid",
                                   alpha=1 / 6, beta=0.5)
        position = list(model.graph.node).index(add)
        model.graph.node.insert(position, new)
        for node in gone:
            model.graph.node.remove(node)
        readers = readers_of(model)
        fused += 1
    if fused:
        prune_dead_nodes(model)
    return fused


# Ops that only move an image's values around: a scale applied before them applies after them.
_LAYOUT_ONLY = frozenset({"Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze"})


def fold_input_scale(model: Any) -> int:
    """Fold a model's own input rescaling (Keras ``Rescaling``: ``x * scale + offset`` on the
    image, before any conv) into the first conv's weights and bias.

    Left in the graph it is one more pass over every pixel in fp32, and quantization turns it
    into a QLinearMul over the whole image, up to half of an int8 call's time (bench/README.md,
    "Speed suite"). A scale folds exactly; an offset only into a conv without zero padding
    (padding is not shifted), otherwise the Add stays. A uint8 input's Cast to float stays in
    front. Returns 1 when folded, else 0.
    """
    from onnx import numpy_helper

    init = {t.name: t for t in model.graph.initializer}
    readers = readers_of(model)
    image = model.graph.input[0].name
    chain = readers.get(image, [])
    if len(chain) == 1 and chain[0].op_type == "Cast" and _attr(chain[0], "to") == 1:
        image = chain[0].output[0]  # a uint8 input, cast to float first: the scale folds after it
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
    prune_dead_nodes(model)
    return 1


def _attr(node: Any, name: str) -> Any:
    """A node's integer attribute ``name``, or None."""
    return next((a.i for a in node.attribute if a.name == name), None)


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


def prune_dead_nodes(model: Any) -> None:
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


def readers_of(model: Any) -> dict[str, list[Any]]:
    """The nodes that read each tensor."""
    readers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers
