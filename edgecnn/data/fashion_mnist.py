"""Fashion-MNIST from IDX files (Debian's dataset-fashion-mnist, Keras's cache, or a folder)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from edgecnn.data.dataset import Dataset, as_nhwc
from edgecnn.errors import EdgeCNNError

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise EdgeCNNError(f"Could not read IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise EdgeCNNError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise EdgeCNNError(f"{path} is truncated: header says {dims}, found {body.size} bytes.")
    return body.reshape(dims)


def candidate_dirs() -> list[Path]:
    """Folders searched for the IDX files, in order."""
    dirs = []
    if env := os.environ.get("EDGECNN_DATA_DIR"):
        dirs += [Path(env) / "fashion-mnist", Path(env)]
    dirs += [
        Path("/usr/share/datasets/fashion-mnist"),
        Path.home() / ".keras" / "datasets" / "fashion-mnist",
    ]
    return dirs


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist() -> Dataset:
    """The real Fashion-MNIST (60k train / 10k test, 28x28 grayscale), read offline."""
    searched = candidate_dirs()
    for folder in searched:
        found = {key: _find(folder, stem) for key, stem in _FILES.items()}
        if all(found.values()):
            arrays = {key: read_idx(path) for key, path in found.items()}
            return Dataset(
                "fashion_mnist",
                as_nhwc(arrays["x_train"]),
                arrays["y_train"].astype(np.int64),
                as_nhwc(arrays["x_test"]),
                arrays["y_test"].astype(np.int64),
                FASHION_CLASSES,
            )
    raise EdgeCNNError(
        "Fashion-MNIST not found. Looked in: "
        + ", ".join(str(d) for d in searched)
        + ". Install it with `apt-get install dataset-fashion-mnist`, or put the four IDX files "
        "(train-images-idx3-ubyte.gz, ...) in a folder and set EDGECNN_DATA_DIR to it."
    )
