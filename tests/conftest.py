"""Shared fixtures: real Fashion-MNIST subsets, a tiny hand-built ONNX model, trained zoo models."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("EDGECNN_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgecnn.runtime.isa import host_isa  # noqa: E402
from edgecnn.runtime.metadata import ModelInfo, Preprocessing  # noqa: E402

TINY_CLASSES = ("triangle", "square", "circle")
# The seed of every test that trains. Another CPU trains another model from the same seed
# (TensorFlow's oneDNN kernels differ per CPU), so these tests must hold for any seed: run them
# with EDGECNN_TEST_SEED=1..4 too, and assert properties with a margin, never one run's numbers.
TEST_SEED = int(os.environ.get("EDGECNN_TEST_SEED", "0"))


def need_isa(isa: str) -> None:
    """Skip a test that needs ``isa`` when it cannot be run here; fail instead under
    EDGECNN_REQUIRE_ISA (``make test``, CI), where qemu and the Arm64 tree are set up."""
    from edgecnn.runners.qemu import unavailable_reason

    reason = unavailable_reason(isa)
    if reason and os.environ.get("EDGECNN_REQUIRE_ISA"):
        pytest.fail(f"{isa} cannot be run here: {reason}")
    if reason:
        pytest.skip(f"{isa} cannot be run here: {reason}")


# An x86 class other than this machine's, which this machine therefore emulates (an AVX2-only
# host is x86-avx2 itself, so there it is the SSE4 class).
OTHER_X86 = "x86-sse4" if host_isa() == "x86-avx2" else "x86-avx2"


# Another onnxruntime may round a few near-tied answers the other way: how far a committed
# accuracy may then move (the int8 gate's accuracy drop).
OTHER_VERSION_TOLERANCE = 0.005


def committed_tolerance(report: dict) -> float:
    """How exactly a committed report's accuracy must be reproduced here: to the last image when
    this machine's onnxruntime is the one the report was measured with, else within
    OTHER_VERSION_TOLERANCE (the lock file pins the version the committed reports name)."""
    import onnxruntime

    same = report["machine"]["onnxruntime"] == onnxruntime.__version__
    return 1e-9 if same else OTHER_VERSION_TOLERANCE


def impossible_gates(**values: float):
    """Gates outside the range the API accepts (Gates refuses them): a test double for a file
    that fails, to see what a failure does."""
    import dataclasses

    from edgecnn.accuracy.gates import Gates

    gates = object.__new__(Gates)
    for name, value in dataclasses.asdict(Gates()).items():
        object.__setattr__(gates, name, values.get(name, value))
    return gates


def op_counts(model) -> Counter:
    """How often each op type occurs in a model's main graph."""
    return Counter(node.op_type for node in model.graph.node)


def make_tiny_onnx(path: Path, *, with_metadata: bool = True, seed: int = 0) -> Path:
    """An 8x8x1 -> 3-class softmax model built with onnx.helper (no TensorFlow)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.export.onnx_metadata import set_metadata

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (64, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (3,)).astype(np.float32), "b")
    shape = numpy_helper.from_array(np.array([-1, 64], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8, 8, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        initializer=[w, b, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if with_metadata:
        set_metadata(model, ModelInfo(name="tiny", class_names=TINY_CLASSES, input_shape=(8, 8, 1),
                                      preprocessing=Preprocessing(), dataset="shapes"))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return make_tiny_onnx(tmp_path_factory.mktemp("tiny") / "model.onnx")


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST (from the Debian package)."""
    from edgecnn.data import load_dataset

    return load_dataset("fashion_mnist")


@pytest.fixture(scope="session")
def fashion_small(fashion):
    """3000 training and 1000 test images of the real Fashion-MNIST."""
    return fashion.subset(train=3000, test=1000, seed=0)


@pytest.fixture(scope="session")
def fashion_export(tmp_path_factory, fashion_small):
    """fashion-cnn trained 1 epoch on 3000 real images, exported; shared, so read-only: a test
    that writes into an export folder takes ``fashion_copy``."""
    from edgecnn.export.convert import export
    from edgecnn.train import train

    out = tmp_path_factory.mktemp("fashion-cnn")
    train("fashion-cnn", dataset=fashion_small, out_dir=out, epochs=1, seed=TEST_SEED, verbose=0)
    export("fashion-cnn", out_dir=out)
    return out


@pytest.fixture
def fashion_copy(fashion_export, tmp_path) -> Path:
    """A private copy of ``fashion_export`` that a test may change."""
    import shutil

    return shutil.copytree(fashion_export, tmp_path / "fashion-cnn")
