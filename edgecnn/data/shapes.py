"""Generated 8x8 triangles, squares and circles for the shapes-toy net (seeded, offline)."""

from __future__ import annotations

import numpy as np

from edgecnn.data.dataset import Dataset

SHAPES = ("triangle", "square", "circle")


def _draw(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(2.2, 3.6)
    cy, cx = rng.uniform(r - 0.5, size - r - 0.5, size=2)
    if kind == 0:  # triangle, apex up
        inside = (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2)
    elif kind == 1:  # square
        inside = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
    else:  # circle
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    image = inside * rng.uniform(170, 255) + rng.normal(0, 12, size=(size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_shapes(n_train: int = 3000, n_test: int = 600, seed: int = 0, size: int = 8) -> Dataset:
    """Balanced random shapes; the same seed always gives the same images."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % len(SHAPES)
        rng.shuffle(labels)
        images = np.stack([_draw(int(k), rng, size) for k in labels])[..., None]
        return images, labels.astype(np.int64)

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return Dataset("shapes", x_train, y_train, x_test, y_test, SHAPES)
