"""Predictor behaviour on a tiny hand-built ONNX model (no TensorFlow needed)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor, Preprocessing
from tests.conftest import TINY_CLASSES, make_tiny_onnx


@pytest.fixture(scope="module")
def predictor(tiny_onnx):
    return Predictor(tiny_onnx, providers="cpu")


def _reference(tiny_onnx, batch_float):
    import onnxruntime as ort

    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": batch_float})[0]


def test_reads_metadata(predictor):
    assert predictor.class_names == TINY_CLASSES
    assert predictor.input_shape == (8, 8, 1)
    assert predictor.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (5, 8, 8), (5, 8, 8, 1)])
def test_accepts_single_images_and_batches(predictor, tiny_onnx, shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    result = predictor.predict(pixels)
    n = shape[0] if len(shape) in (3,) and shape != (8, 8, 1) or len(shape) == 4 else 1
    assert result.probabilities.shape == (n, 3)
    expected = _reference(tiny_onnx, pixels.reshape(n, 8, 8, 1).astype(np.float32) / 255)
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, atol=1e-5)


def test_uint8_and_preprocessed_float_agree(predictor):
    pixels = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    as_uint8 = predictor.predict(pixels).probabilities
    as_float = predictor.predict(pixels.astype(np.float64) / 255).probabilities
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-6)


def test_labels_names_and_top_k(predictor):
    pixels = np.random.default_rng(3).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    result = predictor.predict(pixels)
    assert list(result.labels) == list(result.probabilities.argmax(1))
    assert result.names == [TINY_CLASSES[i] for i in result.labels]
    top = result.top_k(2)
    assert len(top) == 6 and all(len(t) == 2 for t in top)
    assert all(t[0][0] == name and t[0][1] >= t[1][1] for t, name in zip(top, result.names))


def test_large_batches_are_chunked_with_the_same_result(tiny_onnx):
    pixels = np.random.default_rng(4).integers(0, 256, (50, 8, 8, 1), dtype=np.uint8)
    whole = Predictor(tiny_onnx, providers="cpu").predict(pixels).probabilities
    chunked = Predictor(tiny_onnx, providers="cpu", max_batch=7).predict(pixels).probabilities
    np.testing.assert_allclose(whole, chunked, atol=1e-7)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((8, 9), np.uint8), "shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros((0, 8, 8, 1), np.uint8), "Empty batch"),
        (np.zeros((8, 8), np.int64), "dtype int64"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), np.inf, np.float32), "NaN or infinite"),
        (np.full((8, 8), 200.0, np.float32), "already be preprocessed"),
        (np.array([["a"] * 8] * 8), "dtype <U1"),
    ],
)
def test_bad_input_raises_clear_error(predictor, images, message):
    with pytest.raises(EdgeCNNError, match=message):
        predictor.predict(images)


def test_non_contiguous_and_read_only_input(predictor):
    base = np.random.default_rng(5).integers(0, 256, (8, 16), dtype=np.uint8)
    view = base[:, ::2]
    assert not view.flags.c_contiguous
    frozen = np.ascontiguousarray(view)
    frozen.setflags(write=False)
    a = predictor.predict(view).probabilities
    b = predictor.predict(frozen).probabilities
    np.testing.assert_array_equal(a, b)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(EdgeCNNError, match="not found"):
        Predictor(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(EdgeCNNError, match="Could not load"):
        Predictor(garbage)
    good = make_tiny_onnx(tmp_path / "good.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(EdgeCNNError, match="Could not load"):
        Predictor(truncated)


def test_model_without_metadata_needs_explicit_preprocessing(tmp_path):
    bare = make_tiny_onnx(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(EdgeCNNError, match="no edgecnn metadata"):
        Predictor(bare)
    with pytest.raises(EdgeCNNError, match="sequence of strings"):  # not split into letters
        Predictor(bare, preprocessing=Preprocessing(scale=1 / 255), class_names="abc")
    predictor = Predictor(bare, preprocessing=Preprocessing(scale=1 / 255), class_names=list("abc"))
    assert predictor.class_names == ("a", "b", "c")
    assert predictor.predict(np.zeros((8, 8), np.uint8)).probabilities.shape == (1, 3)


def test_unavailable_provider_is_an_error_not_a_cpu_fallback(tiny_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EdgeCNNError, match="CUDAExecutionProvider.*not available"):
        Predictor(tiny_onnx, providers="cuda")
    with pytest.raises(EdgeCNNError, match="Unknown execution provider"):
        Predictor(tiny_onnx, providers="quantum")


def test_shared_predictor_is_thread_safe(predictor):
    rng = np.random.default_rng(6)
    inputs = [rng.integers(0, 256, (3, 8, 8), dtype=np.uint8) for _ in range(40)]
    expected = [predictor.predict(x).probabilities for x in inputs]
    failures = []

    def worker(offset: int) -> None:
        for i in range(200):
            k = (i + offset) % len(inputs)
            if not np.array_equal(predictor.predict(inputs[k]).probabilities, expected[k]):
                failures.append(k)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_provider_resolution_without_a_gpu_present():
    from edgecnn.runtime.providers import check_active, resolve

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve("auto", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert resolve("tensorrt", gpu) == gpu
    assert resolve(["cuda"], gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # onnxruntime-gpu installed but CUDA failed to start: the session runs on the CPU only
    with pytest.raises(EdgeCNNError, match="Refusing to fall back silently"):
        check_active(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])


@pytest.mark.parametrize("orientation, turn", [(1, 0), (6, -1), (8, 1), (3, 2)])
def test_jpeg_orientation_tags_are_applied_as_viewers_do(tmp_path, orientation, turn):
    """A phone stores a portrait photo sideways with an EXIF Orientation tag; it is read upright
    (tag 6: turn 90 degrees clockwise to display, 8: counter-clockwise, 3: half a turn)."""
    from PIL import Image

    from edgecnn.runtime.images import read_image

    stored = np.zeros((64, 64), np.uint8)
    stored[:, :20] = 255  # a bright band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "photo.jpg", quality=95, exif=exif)
    upright = read_image(tmp_path / "photo.jpg", (64, 64, 1))[..., 0].astype(float)
    expected = np.rot90(stored, k=turn).astype(float)
    assert np.abs(upright - expected).mean() < 8, orientation  # JPEG noise only
