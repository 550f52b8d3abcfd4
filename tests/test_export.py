"""Every zoo model exports to a clean inference graph that matches Keras (briefly trained)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.export.convert import export
from edgecnn.export.onnx_metadata import read_metadata
from edgecnn.validate.run import validate
from edgecnn.zoo import list_models
from tests.conftest import TEST_SEED

pytestmark = pytest.mark.slow


def _check_graph(path):
    import onnx

    from tests.conftest import op_counts

    model = onnx.load(str(path))
    ops = op_counts(model)
    assert not [op for op in ops if "Random" in op or op == "Dropout"], ops
    assert "Shape" not in ops, ops  # Flatten's batch-size arithmetic was folded to a constant
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    return ops


@pytest.fixture(scope="module")
def catsdogs_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("catsdogs")
    rng = np.random.default_rng(0)
    for label, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir()
        for i in range(12):
            base = rng.integers(0, 120, (180, 180, 3)) + 100 * label
            Image.fromarray(base.astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("name", [n for n in list_models() if n not in ("fashion-cnn", "catsdogs-aug")])
def test_zoo_model_exports_and_passes_parity(name, tmp_path, fashion_small):
    # MNIST digits are not available offline; Fashion-MNIST has the same shape and 10 classes.
    data = None if name == "shapes-toy" else fashion_small.subset(train=1000, test=500)
    result = export(name, out_dir=tmp_path,
                    train_options={"dataset": data, "epochs": 1, "seed": TEST_SEED, "verbose": 0})
    assert result.trained and result.written
    _check_graph(result.onnx_path)
    info = read_metadata(result.onnx_path)
    assert info.name == name and info.keras_sha256 and info.variant == "fp32"
    report = validate(tmp_path, dataset=None if data is None else "fashion_mnist", limit=500)
    fp32 = report.variants[0]
    assert report.passed, fp32
    assert fp32.agreement >= 0.999 and fp32.max_abs_diff <= 1e-4


def test_augmented_model_exports_without_random_ops(tmp_path, catsdogs_folder):
    result = export("catsdogs-aug", out_dir=tmp_path, train_options={
        "dataset": str(catsdogs_folder), "epochs": 1, "batch_size": 8, "seed": TEST_SEED,
        "verbose": 0})
    ops = _check_graph(result.onnx_path)
    assert ops["Conv"] == 5
    report = validate(tmp_path, dataset=str(catsdogs_folder))
    assert report.passed, report.variants[0]
    assert report.variants[0].max_abs_diff <= 1e-4


def test_reexport_is_idempotent_and_never_silently_replaces(fashion_export, tmp_path):
    import shutil

    from edgecnn.errors import OverwriteRefusedError
    from edgecnn.store.files import write_bytes

    folder = shutil.copytree(fashion_export, tmp_path / "copy")
    onnx_path = folder / "model.onnx"
    before = onnx_path.read_bytes()
    assert export("fashion-cnn", out_dir=folder).written is False
    assert onnx_path.read_bytes() == before
    write_bytes(onnx_path, before)  # rewritten with the same bytes: still the same export
    assert export("fashion-cnn", out_dir=folder).written is False
    tampered = bytearray(before)
    tampered[-10:] = b"0123456789"
    onnx_path.write_bytes(bytes(tampered))
    with pytest.raises(OverwriteRefusedError, match="force"):
        export("fashion-cnn", out_dir=folder)
    assert onnx_path.read_bytes() == bytes(tampered)
    assert export("fashion-cnn", out_dir=folder, force=True).written
    # tf2onnx numbers its node names per process, so compare what the file says, not its bytes
    assert read_metadata(onnx_path) == read_metadata(fashion_export / "model.onnx")


def test_user_keras_file_with_lambda_is_refused_in_safe_mode(tmp_path):
    import keras

    from edgecnn.errors import EdgeCNNError

    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Lambda(lambda x: x * 2.0),
        keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax"),
    ])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(EdgeCNNError, match="Lambda.*--unsafe"):
        export(str(path), out_dir=tmp_path / "out")
    result = export(str(path), out_dir=tmp_path / "out", unsafe=True, class_names=["a", "b", "c"])
    assert read_metadata(result.onnx_path).class_names == ("a", "b", "c")


def test_user_keras_file_exports_with_given_preprocessing(tmp_path):
    import keras

    from edgecnn.runtime import Predictor, Preprocessing

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    path = tmp_path / "mine.keras"
    model.save(path)
    result = export(str(path), out_dir=tmp_path / "out", preprocessing=Preprocessing(scale=1.0))
    predictor = Predictor(result.onnx_path)
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    expected = model(x.astype(np.float32), training=False).numpy()
    np.testing.assert_allclose(predictor.predict(x).probabilities, expected, atol=1e-5)


def test_training_with_the_same_seed_repeats(tmp_path):
    from edgecnn.export.keras_io import load_keras
    from edgecnn.train import train

    runs = [train("shapes-toy", out_dir=tmp_path / str(i), epochs=2, limit=600, seed=7, verbose=0)
            for i in range(2)]
    other = train("shapes-toy", out_dir=tmp_path / "other", epochs=2, limit=600, seed=8, verbose=0)
    weights = [load_keras(r.keras_path).get_weights() for r in (*runs, other)]
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))
    assert runs[0].history == runs[1].history


def test_the_head_of_a_model_wrapped_in_a_fixed_input_is_read_inside_it():
    """A variable-size net wrapped in a fixed Input (what a user does for a fixed size) has the
    inner model as its last layer: its head is read from inside, as its rescaling is."""
    import keras

    from edgecnn.export.keras_inspect import head

    layers = keras.layers
    inner = keras.Sequential([keras.Input((None, None, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax")])
    wrapped = keras.Sequential([keras.Input((28, 28, 1)), inner])
    inputs = keras.Input((28, 28, 1))
    functional = keras.Model(inputs, inner(inputs))
    assert head(inner) == head(wrapped) == head(functional) == "softmax"
