"""Dataset lookup by name or path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgecnn.data.dataset import Dataset
from edgecnn.data.fashion_mnist import load_fashion_mnist
from edgecnn.data.folder import load_catsdogs, load_image_folder
from edgecnn.data.mnist import load_mnist, load_mnist_5k
from edgecnn.data.npz import load_npz
from edgecnn.data.shapes import make_shapes
from edgecnn.errors import EdgeCNNError

DATASETS: dict[str, Callable[[], Dataset]] = {
    "catsdogs": load_catsdogs,
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "mnist_5k": load_mnist_5k,
    "shapes": make_shapes,
}


def load_dataset(
    name_or_path: str, image_size: tuple[int, int] | None = None
) -> Dataset:
    """Load a named dataset, a ``.npz`` file, or an image folder.

    Args:
        name_or_path: ``fashion_mnist``, ``mnist``, ``mnist-5k``, ``shapes``, a ``.npz`` path
            or a folder.
        image_size: (H, W) images from a folder are resized to.
    """
    key = name_or_path.replace("-", "_").lower()
    if key in DATASETS:
        return DATASETS[key]()
    path = Path(name_or_path).expanduser()
    if path.suffix == ".npz" and path.is_file():
        return load_npz(path)
    if path.is_dir():
        return load_image_folder(path, image_size=image_size or (180, 180))
    raise EdgeCNNError(
        f"Unknown dataset '{name_or_path}'. Use one of {', '.join(sorted(DATASETS))}, "
        "a .npz file with x_train/y_train/x_test/y_test, or an image folder with one "
        "sub-folder per class."
    )
