"""The speed search's reading of a graph: which nodes run in int8, and what follows the image conv.

What it does with a timing is tested with real quantization in test_quantize.py.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgecnn.quantize.int8_speed import _after, quantized_groups


def _model(nodes, initializers=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers])
    return helper.make_model(graph)


def test_the_layers_after_the_image_conv_run_up_to_the_next_dense_conv():
    model = _model([
        helper.make_node("Conv", ["x", "w0"], ["a"], name="image"),
        helper.make_node("LeakyRelu", ["a"], ["b"], name="leaky"),
        helper.make_node("Conv", ["b", "w1"], ["c"], name="pool", group=8),
        helper.make_node("Conv", ["c", "w2"], ["d"], name="dense"),
        helper.make_node("Relu", ["d"], ["y"], name="relu"),
    ])
    assert _after(model, ["image"]) == ["leaky", "pool"]
    assert _after(model, []) == []
    # a branch (two readers) ends the block: the float region must not fork
    forked = _model([
        helper.make_node("Conv", ["x", "w0"], ["a"], name="image"),
        helper.make_node("Relu", ["a"], ["b"], name="one"),
        helper.make_node("Relu", ["a"], ["c"], name="two"),
        helper.make_node("Add", ["b", "c"], ["y"], name="add"),
    ])
    assert _after(forked, ["image"]) == []


def test_a_node_runs_in_int8_when_it_is_quantized_not_merely_after_a_dequantize():
    q = [("s", 0.1), ("z", 0.0)]
    quantized = _model([
        helper.make_node("QuantizeLinear", ["x", "s"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "s"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "s"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "s"], ["cd"]),
        helper.make_node("MaxPool", ["cd"], ["p"], name="pool", kernel_shape=[2, 2]),  # float
        helper.make_node("Reshape", ["p", "shape"], ["r"], name="flat"),
        helper.make_node("QuantizeLinear", ["r", "s"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s"], ["rd"]),
        helper.make_node("DequantizeLinear", ["mq", "s"], ["md"]),
        helper.make_node("Gemm", ["rd", "md"], ["logits"], name="dense"),  # float out, int8 weights
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax"),
    ], [*q, ("wq", np.ones((2, 1, 3, 3))), ("mq", np.ones((8, 2))), ("shape", [1, -1])])
    graph = _model([helper.make_node(op, [], [], name=name) for op, name in
                    (("Conv", "conv"), ("MaxPool", "pool"), ("Reshape", "flat"), ("Gemm", "dense"),
                     ("Softmax", "softmax"))])
    assert quantized_groups(graph, quantized, skip=[]) == {"Conv": ["conv"], "Gemm": ["dense"]}
    assert quantized_groups(graph, quantized, skip=["conv"]) == {"Gemm": ["dense"]}
