"""Reading image files and .npz arrays into uint8 pixels for the Predictor (Pillow, no TF)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError

_NPZ_KEYS = ("x_test", "images", "x")


def read_image(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image file as uint8 (H, W, C), converted to the model's channels and resized to it."""
    image_module = require("PIL.Image", "Reading image files")
    path = Path(path)
    h, w, c = shape
    if not path.is_file():
        raise EdgeCNNError(f"Image file not found: {path}")
    try:
        with image_module.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), image_module.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as exc:
        raise EdgeCNNError(
            f"{path} is not a readable image (expected PNG, JPEG, ...): {exc}"
        ) from exc
    return pixels.reshape(h, w, c)


def read_npz_images(path: str | Path) -> np.ndarray:
    """The image array of a .npz: ``x_test``, ``images``, ``x``, or its only array."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = next((k for k in _NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise EdgeCNNError(
                    f"{path} holds {keys}; expected an array named one of {', '.join(_NPZ_KEYS)}."
                )
            return data[key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EdgeCNNError(f"Could not read {path} as a .npz of images: {exc}") from exc
