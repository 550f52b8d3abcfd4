"""Graph rewrites static int8 relies on, on small hand-built graphs: what they pick and that the
float answers do not change."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgecnn.quantize.rewrites import float_image_convs


def _model(activation: str, second_reader: bool) -> onnx.ModelProto:
    """image (1 channel) -> Conv -> activation -> MaxPool -> Conv (4 channels) -> y, and when
    ``second_reader`` the activation also feeds a second output."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 4, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    act_inputs = ["c1", "lo", "hi"] if activation == "Clip" else ["c1"]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
             helper.make_node(activation, act_inputs, ["a1"], name="act1"),
             helper.make_node("MaxPool", ["a1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["y"], name="conv2")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 3, 3])]
    if second_reader:
        outputs.append(helper.make_tensor_value_info("a1", TensorProto.FLOAT, [None, 4, 10, 10]))
    return _graph(nodes, [None, 1, 12, 12], outputs, inits)


def _graph(nodes, x_shape, outputs, inits) -> onnx.ModelProto:
    """An opset-17 model of ``nodes`` reading one float input ``x`` of ``x_shape``."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_image_conv_keeps_its_activation_and_pool_and_pools_first_with_the_same_floats():
    x = np.random.default_rng(1).normal(size=(3, 1, 12, 12)).astype(np.float32)
    for activation in ("Relu", "Clip"):
        model = _model(activation, second_reader=False)
        before = _run(model, x)
        assert float_image_convs(model) == ["conv1", "act1", "pool1"]  # conv2 reads 4 channels
        onnx.checker.check_model(model)
        ops = [n.op_type for n in model.graph.node]
        assert ops == ["Conv", "MaxPool", activation, "Conv"]
        after = _run(model, x)
        assert np.array_equal(before[0], after[0])


def test_an_activation_read_elsewhere_is_kept_where_it_is():
    model = _model("Relu", second_reader=True)
    assert float_image_convs(model) == ["conv1", "act1"]
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "MaxPool", "Conv"]


def test_only_the_conv_that_reads_the_image_stays_float():
    """A later conv with three or fewer input channels reads features, not the image: int8's."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(3, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "scale")]
    nodes = [helper.make_node("Transpose", ["x"], ["nchw"], name="layout", perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["nchw", "scale"], ["scaled"], name="rescale"),
             helper.make_node("Conv", ["scaled", "w1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["a1"], name="act1"),
             helper.make_node("Conv", ["a1", "w2"], ["y"], name="conv2")]
    model = _graph(nodes, [None, 12, 12, 1], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8, 8])],
                   inits)
    assert float_image_convs(model) == ["conv1", "act1"]


def _conv_affine(scale_shape: tuple[int, ...], with_bias: bool, add_reader: bool = False) -> onnx.ModelProto:
    """x -> Conv(4 channels) -> Mul(scale) -> Add(shift) -> Relu -> y: an inference BatchNorm as
    tf2onnx writes it; ``add_reader`` makes the Mul's output a graph output too."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=scale_shape).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "shift")]
    conv_inputs = ["x", "w"]
    if with_bias:
        inits.append(numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], name="conv"),
             helper.make_node("Mul", ["c", "scale"], ["m"], name="bn_mul"),
             helper.make_node("Add", ["shift", "m"], ["a"], name="bn_add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 6, 6])]
    if add_reader:
        outputs.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, [None, 4, 6, 6]))
    return _graph(nodes, [None, 2, 8, 8], outputs, inits)


def test_a_batchnorm_after_a_conv_is_folded_into_its_weights_with_the_same_floats():
    """Mul + Add per channel after a Conv become the Conv's weights and bias (quantization
    would make each its own int8 op); answers unchanged to float rounding."""
    from edgecnn.export.graph import fold_conv_affine

    x = np.random.default_rng(2).normal(size=(3, 2, 8, 8)).astype(np.float32)
    for scale_shape, with_bias in (((1, 4, 1, 1), True), ((4, 1, 1), False), ((), True)):
        model = _conv_affine(scale_shape, with_bias)
        before = _run(model, x)[0]
        assert fold_conv_affine(model) == 1
        onnx.checker.check_model(model)
        assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
        assert np.abs(_run(model, x)[0] - before).max() < 1e-5


def test_a_mul_that_is_not_per_channel_or_is_read_elsewhere_stays():
    from edgecnn.export.graph import fold_conv_affine

    spatial = _conv_affine((1, 4, 6, 6), True)  # a per-pixel scale is no BatchNorm
    assert fold_conv_affine(spatial) == 0 and len(spatial.graph.node) == 4
    read = _conv_affine((1, 4, 1, 1), True, add_reader=True)  # its output is needed as it is
    x = np.random.default_rng(3).normal(size=(2, 2, 8, 8)).astype(np.float32)
    before = _run(read, x)
    fold_conv_affine(read)
    after = _run(read, x)
    assert all(np.abs(a - b).max() < 1e-5 for a, b in zip(before, after))


def _rescaled_conv(offset: float, pads: list[int]) -> onnx.ModelProto:
    """image (NHWC) -> Mul(1/127.5) -> Add(offset) -> Transpose -> Conv -> y: Keras's Rescaling
    in front of the first conv, as tf2onnx writes it."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(np.array(1 / 127.5, np.float32), "s"),
             numpy_helper.from_array(np.array(offset, np.float32), "t"),
             numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")]
    nodes = [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["a"]),
             helper.make_node("Transpose", ["a"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w", "b"], ["y"], name="conv", pads=pads)]
    return _graph(nodes, [None, 8, 8, 3], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, None, None])],
                  inits)


def test_the_models_own_rescaling_folds_into_its_first_conv_with_the_same_floats():
    """x * s + t before the first conv: the scale always folds into the weights; the offset
    into the bias without padding, else it stays as x + t/s (quantized, the Mul was a
    QLinearMul over the whole image)."""
    from edgecnn.export.graph import fold_input_scale

    x = np.random.default_rng(5).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    for offset, pads, left in ((0.0, [1, 1, 1, 1], ["Transpose", "Conv"]),
                               (-1.0, [0, 0, 0, 0], ["Transpose", "Conv"]),
                               (-1.0, [1, 1, 1, 1], ["Add", "Transpose", "Conv"])):
        model = _rescaled_conv(offset, pads)
        before = _run(model, x)[0]
        assert fold_input_scale(model) == 1
        onnx.checker.check_model(model)
        assert [n.op_type for n in model.graph.node] == left
        assert np.abs(_run(model, x)[0] - before).max() < 1e-4 * np.abs(before).max()


def _hard(three: float, times_x: bool, opset: int = 17) -> onnx.ModelProto:
    """x -> Conv -> h = Clip(c + three, 0, 6) * (1/6) -> y = c * h (a hard-swish, as tf2onnx
    writes MobileNetV3's) or, when not ``times_x``, y = h * x (a squeeze-excite gate)."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.normal(size=(2, 2, 3, 3)).astype(np.float32) * 2, "w"),
             numpy_helper.from_array(np.array(three, np.float32), "three"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array(1 / 6, np.float32), "sixth")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "three"], ["a"]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["r"]),
             helper.make_node("Mul", ["r", "sixth"], ["h"]),
             helper.make_node("Mul", ["c" if times_x else "x", "h"], ["y"])]
    model = _graph(nodes, [None, 2, 6, 6], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2, 6, 6])],
                   inits)
    model.opset_import[0].version = opset
    return model


def test_hard_swish_and_hard_sigmoid_become_one_op_each_with_the_same_floats():
    """MobileNetV3's activations, four elementwise passes each in tf2onnx's graph, become one
    HardSwish (or one HardSigmoid for a gate that multiplies something else, and before opset
    14); a Clip(x + 2) is another function and stays."""
    from edgecnn.export.graph import fuse_hard_activations

    x = np.random.default_rng(5).normal(size=(3, 2, 6, 6)).astype(np.float32) * 3
    for times_x, opset, op in ((True, 17, "HardSwish"), (False, 17, "HardSigmoid"), (True, 13, "HardSigmoid")):
        model = _hard(3.0, times_x, opset)
        before = _run(model, x)[0]
        assert fuse_hard_activations(model) == 1
        onnx.checker.check_model(model)
        assert [n.op_type for n in model.graph.node] == ["Conv", op] + (["Mul"] if op == "HardSigmoid" else [])
        assert np.abs(_run(model, x)[0] - before).max() < 1e-5
    other = _hard(2.0, True)
    assert fuse_hard_activations(other) == 0 and len(other.graph.node) == 5
