"""A user's own .npz with x_train, y_train, x_test, y_test (and optionally class_names)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecnn.data.dataset import Dataset, as_nhwc
from edgecnn.errors import EdgeCNNError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(
    path: str | Path, name: str | None = None, class_names: Sequence[str] | None = None
) -> Dataset:
    """Load a dataset .npz; pixel arrays must be uint8 (N,H,W) or (N,H,W,C)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in KEYS if k not in data]
            if missing:
                raise EdgeCNNError(
                    f"{path} lacks {', '.join(missing)}; a dataset .npz needs {', '.join(KEYS)}."
                )
            arrays = {k: data[k] for k in KEYS}
            stored_names = data["class_names"] if "class_names" in data else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EdgeCNNError(f"Could not read {path} as a .npz dataset: {exc}") from exc
    for key in ("x_train", "x_test"):
        if arrays[key].dtype != np.uint8:
            raise EdgeCNNError(f"{path}: {key} must be uint8 pixels, got {arrays[key].dtype}.")
    labels = np.concatenate([arrays["y_train"].ravel(), arrays["y_test"].ravel()])
    if class_names is None:
        if stored_names is not None:
            class_names = [str(c) for c in stored_names]
        else:
            class_names = [str(i) for i in range(int(labels.max()) + 1)]
    return Dataset(
        name or str(path.resolve()),  # a path, so that a model can name its data to reload it
        as_nhwc(arrays["x_train"]),
        arrays["y_train"].ravel().astype(np.int64),
        as_nhwc(arrays["x_test"]),
        arrays["y_test"].ravel().astype(np.int64),
        tuple(class_names),
    )
