"""MNIST digits from a local mnist.npz, falling back to Keras's download."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.data.dataset import Dataset
from edgecnn.data.npz import load_npz
from edgecnn.errors import EdgeCNNError

DIGITS = tuple(str(i) for i in range(10))


def candidate_files() -> list[Path]:
    """Where a local mnist.npz is looked for, in order."""
    files = []
    if env := os.environ.get("EDGECNN_MNIST"):
        files.append(Path(env))
    if env := os.environ.get("EDGECNN_DATA_DIR"):
        files.append(Path(env) / "mnist.npz")
    files.append(Path.home() / ".keras" / "datasets" / "mnist.npz")
    return files


def load_mnist() -> Dataset:
    """MNIST (60k/10k, 28x28): a local copy first, then Keras's download unless EDGECNN_OFFLINE=1."""
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
    raise EdgeCNNError(
        "MNIST not found offline. Looked for "
        + ", ".join(str(p) for p in searched)
        + f"; the Keras download {failure}. Copy mnist.npz (keys x_train, y_train, x_test, "
        "y_test) to ~/.keras/datasets/mnist.npz, or set EDGECNN_MNIST=/path/to/mnist.npz."
    )
