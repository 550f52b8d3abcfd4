"""Graph rewrites static int8 relies on, on small hand-built graphs: what they pick and that the
float answers do not change."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgecnn.graph import float_image_convs


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
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 12, 12])],
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
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 12, 12, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert float_image_convs(model) == ["conv1", "act1"]
