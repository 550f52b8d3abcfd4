"""The in-memory dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError


@dataclass(frozen=True)
class Dataset:
    """uint8 images (N,H,W,C) with int64 labels, split into train and test.

    The test split is only for final evaluation and validation; calibration and training use
    the train split.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    # Where the images come from, when the name alone could mislead (e.g. a 5,000-digit MNIST).
    provenance: str | None = None

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dtype != np.uint8 or x.ndim != 4:
                raise EdgeCNNError(
                    f"Dataset '{self.name}' {split} images must be uint8 (N,H,W,C), "
                    f"got {x.dtype} {x.shape}."
                )
            if len(x) != len(y):
                raise EdgeCNNError(
                    f"Dataset '{self.name}' {split}: {len(x)} images but {len(y)} labels."
                )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
        """A reproducible random subset of each split (None keeps the whole split)."""
        rng = np.random.default_rng(seed)

        def pick(x: np.ndarray, y: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
            if n is None or n >= len(x):
                return x, y
            if n < 1:
                raise EdgeCNNError(f"A subset needs at least 1 image, got {n}.")
            idx = np.sort(rng.choice(len(x), size=n, replace=False))
            return x[idx], y[idx]

        x_train, y_train = pick(self.x_train, self.y_train, train)
        x_test, y_test = pick(self.x_test, self.y_test, test)
        return Dataset(self.name, x_train, y_train, x_test, y_test, self.class_names, self.provenance)


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """Add the channel axis to (N,H,W) grayscale images."""
    return images[..., None] if images.ndim == 3 else images
