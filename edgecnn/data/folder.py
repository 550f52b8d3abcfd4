"""Image folders (one sub-folder per class, e.g. cat/ dog/) through Keras's directory loader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.data.dataset import Dataset
from edgecnn.errors import EdgeCNNError

_TEST_SPLITS = ("test", "validation", "val")


def _read(folder: Path, image_size: tuple[int, int], class_names: list[str] | None):
    keras = require("keras", "Reading an image folder")
    ds = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", class_names=class_names,
        image_size=image_size, batch_size=None, shuffle=False, verbose=False,
        crop_to_aspect_ratio=True,  # centre-crop, as edgecnn predict does: never stretch
    )
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        images.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        labels.append(y)
    if not images:
        raise EdgeCNNError(f"No images found under {folder}.")
    return np.stack(images), np.asarray(labels, dtype=np.int64), list(ds.class_names)


def load_image_folder(
    root: str | Path, image_size: tuple[int, int] = (180, 180), test_fraction: float = 0.2,
    seed: int = 1337, name: str | None = None,
) -> Dataset:
    """Load ``root/train/<class>/...`` + ``root/test/<class>/...``, or split ``root/<class>/...``.

    Without a test folder, ``test_fraction`` of the images (seeded) become the test split.
    Images of another aspect ratio are centre-cropped to it, then resized. The dataset is named
    by its absolute path (unless ``name``), so that a model trained on it can name it.
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgeCNNError(f"Image folder not found: {root}")
    test_dir = next((root / s for s in _TEST_SPLITS if (root / s).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        x_train, y_train, names = _read(root / "train", image_size, None)
        x_test, y_test, _ = _read(test_dir, image_size, names)
    else:
        x, y, names = _read(root, image_size, None)
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = max(1, int(round(len(x) * test_fraction)))
        test, train = order[:n_test], order[n_test:]
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    if len(names) < 2:
        raise EdgeCNNError(f"{root} needs at least two class sub-folders, found {names}.")
    return Dataset(name or str(root.resolve()), x_train, y_train, x_test, y_test, tuple(names))


def load_catsdogs() -> Dataset:
    """The cats-vs-dogs folder of the tutorial, if the user has put it where we look."""
    searched = []
    if env := os.environ.get("EDGECNN_DATA_DIR"):
        searched.append(Path(env) / "cats_vs_dogs_small")
    searched.append(Path.home() / ".keras" / "datasets" / "cats_vs_dogs_small")
    for root in searched:
        if root.is_dir():
            return load_image_folder(root, name="catsdogs")
    raise EdgeCNNError(
        "The cats-vs-dogs images are not available offline. Looked in: "
        + ", ".join(str(p) for p in searched)
        + ". Put a folder with cat/ and dog/ sub-folders (or train/ and test/ each holding "
        "them) there, or name the folder as the dataset."
    )
