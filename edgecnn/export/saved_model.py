"""A TensorFlow SavedModel as the reference: exported and validated through its serving signature.

A SavedModel is not a Keras model (Keras 3 cannot load one as such), but its ``serving_default``
signature is the function it was saved to serve. edgecnn traces that function into ONNX, and
validation calls the same function on the test images, so both sides run the same graph. The
folder is copied into the export as ``model.savedmodel`` and identified by a digest of its files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError, one_line

SAVED_MODEL_NAME = "model.savedmodel"
SIGNATURE = "serving_default"


def is_saved_model(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "saved_model.pb").is_file()


def tree_sha256(folder: str | Path) -> str:
    """One sha256 for a folder: of each file's relative path and sha256, in sorted order."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n"
                      .encode())
    return digest.hexdigest()


class SavedModelNet:
    """A SavedModel's serving signature called as edgecnn calls a Keras model:
    ``net(x, training=False)``, ``net.predict(x)`` and ``input_shape``.
    It has no layers to read: its head is asked for and its preprocessing measured."""

    layers: list[Any] = []

    def __init__(self, path: str | Path) -> None:
        tf = require("tensorflow", "Loading a SavedModel")
        self._tf = tf
        try:
            self._loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow raises many kinds for a damaged folder
            raise EdgeCNNError(f"Could not load {path} as a SavedModel: {one_line(exc, first=True)}") from exc
        fn = getattr(self._loaded, "signatures", {}).get(SIGNATURE)
        if fn is None:
            raise EdgeCNNError(f"{path} has no '{SIGNATURE}' signature: save it with "
                               "tf.saved_model.save(model, path) or model.export(path).")
        args, kwargs = fn.structured_input_signature
        inputs = {**{str(i): a for i, a in enumerate(args)}, **kwargs}
        if len(inputs) != 1:
            raise EdgeCNNError(f"{path}: its '{SIGNATURE}' signature has inputs {sorted(inputs)}; "
                               "edgecnn exports models of one image input.")
        (self._input, spec), = inputs.items()
        if spec.shape.rank != 4:
            raise EdgeCNNError(f"{path}: expected one NHWC image input, got shape {spec.shape}.")
        self._fn, self._dtype = fn, spec.dtype
        self._outputs = sorted(fn.structured_outputs)
        self.input_shape = tuple(spec.shape.as_list())
        self.signature_dtype = spec.dtype.name

    def __call__(self, x: Any, training: bool = False) -> Any:
        """The signature's one output, or the dict of them all when it has several (named by
        key, as :func:`edgecnn.export.keras_inspect.outputs` reads them)."""
        x = self._tf.cast(x, self._dtype)
        result = self._fn(x) if self._input.isdigit() else self._fn(**{self._input: x})
        return result[self._outputs[0]] if len(self._outputs) == 1 else result

    def predict(self, x: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        return np.concatenate([np.asarray(self(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
