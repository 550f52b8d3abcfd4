"""Reading image files and .npz arrays into uint8 pixels for the Predictor (Pillow, no TF)."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError

_NPZ_KEYS = ("x_test", "images", "x")


# Models here read 28-180 px images; a larger file is refused before it is decoded
# (Pillow's own bomb limit, ~89 Mpx, lets a 144-Mpx PNG take 790 MB).
MAX_PIXELS = 4096 * 4096


FITS = ("crop", "pad", "stretch")


def read_image(path: str | Path, shape: tuple[int, int, int], fit: str = "crop") -> np.ndarray:
    """One image file as uint8 (H, W, C), converted to the model's channels and sized to it.

    An image of another aspect ratio is centre-cropped to the model's (``fit="crop"``, as the
    image-folder datasets are), padded with black (``"pad"``) or stretched (``"stretch"``).
    16-bit images are scaled by their real range (0-65535); float images must hold 0-1.
    """
    path = Path(path)
    if path.is_dir():
        raise EdgeCNNError(f"{path} is a directory, not an image file.")
    if not path.is_file():
        raise EdgeCNNError(f"Image file not found: {path}")
    return _decode(path, str(path), shape, fit)


def decode_image(data: bytes, shape: tuple[int, int, int], fit: str = "crop",
                 name: str = "image") -> np.ndarray:
    """Like :func:`read_image`, for an encoded file's bytes (an image column of a Parquet file);
    ``name`` is what errors call it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EdgeCNNError(f"{name}: expected an encoded image (bytes), got {type(data).__name__}.")
    return _decode(io.BytesIO(bytes(data)), name, shape, fit)


def _decode(file: Path | io.BytesIO, name: str, shape: tuple[int, int, int], fit: str) -> np.ndarray:
    if fit not in FITS:
        raise EdgeCNNError(f"Unknown fit '{fit}'; use one of {', '.join(FITS)}.")
    image_module = require("PIL.Image", "Reading image files")
    h, w, c = shape
    try:
        with warnings.catch_warnings():
            # Pillow warns of a "decompression bomb" above its own limit while opening; edgecnn
            # refuses such an image below in one line, so its two-line warning says nothing
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            img = image_module.open(file)
        with img:
            if img.width * img.height > MAX_PIXELS:
                raise EdgeCNNError(
                    f"{name} is {img.width}x{img.height} pixels, more than the {MAX_PIXELS:,} "
                    "this tool decodes; resize it first."
                )
            # a phone's JPEG is stored sideways with an EXIF orientation tag: upright, as every
            # viewer shows it and as the model was trained to see it
            img = require("PIL.ImageOps", "Reading image files").exif_transpose(img)
            img = _flattened(_as_8bit(img, image_module, name), image_module)
            img = _fitted(img.convert("L" if c == 1 else "RGB"), (w, h), fit, image_module)
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as exc:
        raise EdgeCNNError(
            f"{name} is not a readable image (expected PNG, JPEG, ...): {exc}"
        ) from exc
    return pixels.reshape(h, w, c)


def _flattened(img: Any, image_module: Any) -> Any:
    """A transparent image composited on black: the background of the MNIST-family images the
    zoo trains on (light strokes on black). Dropping the alpha channel instead would show
    whatever colour the transparent pixels happen to store -- often white, the wrong way round."""
    if img.mode not in ("RGBA", "LA", "PA") and not (img.mode == "P" and "transparency" in img.info):
        return img
    black = image_module.new("RGBA", img.size, (0, 0, 0, 255))
    return image_module.alpha_composite(black, img.convert("RGBA")).convert("RGB")


def _fitted(img: Any, size: tuple[int, int], fit: str, image_module: Any) -> Any:
    w, h = size
    if img.size == size:
        return img
    if fit == "crop":  # the largest centred box of the model's aspect ratio
        scale = min(img.width / w, img.height / h)
        cw, ch = w * scale, h * scale
        left, top = max(0.0, (img.width - cw) / 2), max(0.0, (img.height - ch) / 2)  # no -1e-16
        box = (left, top, min(float(img.width), left + cw), min(float(img.height), top + ch))
        return img.resize(size, image_module.Resampling.BILINEAR, box=box)
    if fit == "pad":
        scale = min(w / img.width, h / img.height)
        inner = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        canvas = image_module.new(img.mode, size)
        canvas.paste(img.resize(inner, image_module.Resampling.BILINEAR),
                     ((w - inner[0]) // 2, (h - inner[1]) // 2))
        return canvas
    return img.resize(size, image_module.Resampling.BILINEAR)


def _as_8bit(img: Any, image_module: Any, path: str) -> Any:
    """8-bit pixels from 16-bit and float images by their real range; ``convert`` would clip."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(img, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise EdgeCNNError(f"{path}: {img.mode} pixels outside 0-65535 are not an image range.")
        return image_module.fromarray(np.round(values / 257.0).astype(np.uint8), mode="L")
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            raise EdgeCNNError(
                f"{path}: float pixels must be 0-1, got {np.nanmin(values):g} to {np.nanmax(values):g}."
            )
        return image_module.fromarray(np.round(values * 255.0).astype(np.uint8), mode="L")
    return img


def image_batch(images: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """``images`` as an (N, H, W, C) batch for a model of ``input_shape``: one image, with or
    without its channel axis, or a batch. The one place that decides how many images an array
    holds, so that the Predictor and a bulk run's row count agree."""
    h, w, c = input_shape
    shape = images.shape
    if images.ndim == 4 and shape[1:] == (h, w, c):
        batch = images
    elif images.ndim == 3 and shape == (h, w, c):
        batch = images[None]
    elif images.ndim == 3 and c == 1 and shape[1:] == (h, w):
        batch = images[..., None]
    elif images.ndim == 2 and c == 1 and shape == (h, w):
        batch = images[None, :, :, None]
    else:
        accepted = f"({h},{w},{c}) or a batch (N,{h},{w},{c})"
        if c == 1:
            accepted = f"({h},{w}), ({h},{w},1), or a batch (N,{h},{w}) / (N,{h},{w},1)"
        raise EdgeCNNError(f"Expected images of shape {accepted}; got shape {shape}.")
    if batch.shape[0] == 0:
        raise EdgeCNNError("Empty batch: got 0 images.")
    return batch


def read_npz_images(path: str | Path) -> np.ndarray:
    """The image array of a .npz: ``x_test``, ``images``, ``x``, or its only array."""
    path = Path(path)
    if path.is_dir():
        raise EdgeCNNError(f"{path} is a directory, not a .npz file.")
    if not path.is_file():
        raise EdgeCNNError(f"File not found: {path}")
    if not zipfile.is_zipfile(path):
        raise EdgeCNNError(f"{path} is not a .npz archive (numpy's zip of arrays).")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = next((k for k in _NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise EdgeCNNError(
                    f"{path} holds {keys}; expected an array named one of {', '.join(_NPZ_KEYS)}."
                )
            images = data[key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EdgeCNNError(f"Could not read {path} as a .npz of images: {exc}") from exc
    if images.ndim < 2:
        raise EdgeCNNError(f"{path}: '{key}' is a {images.ndim}-d array, not images.")
    return images
