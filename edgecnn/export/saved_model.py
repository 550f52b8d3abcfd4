"""A TensorFlow SavedModel as the reference: exported and validated through its serving signature.

A SavedModel is not a Keras model (Keras 3 cannot load one as such), but its ``serving_default``
signature is the function it was saved to serve. edgecnn traces that function into ONNX, and
validation calls the same function on the test images, so both sides run the same graph. The
folder is copied into the export as ``model.savedmodel`` and identified by a digest of its files.

A SavedModel is code: its graph can read and write files (``tf.io.write_file``) and print them,
and Keras's safe mode does not apply to it. So it loads only when the user says so (``--unsafe``,
recorded in the report), and only from a folder that holds nothing but its own files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError, one_line

SAVED_MODEL_NAME = "model.savedmodel"
SIGNATURE = "serving_default"
log = logging.getLogger(__name__)


def is_saved_model(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "saved_model.pb").is_file()


def check_contained(folder: str | Path) -> None:
    """Refuse a SavedModel folder from which TensorFlow would read more than the folder: a
    symlink that leads out of it (its content would be copied into the export and escape the
    digest), a symlinked folder, or a FIFO, socket or device (a read that may never end)."""
    root = Path(folder).resolve()
    for where, folders, files in os.walk(folder):
        for name in folders + files:
            entry = Path(where) / name
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_relative_to(root):
                    raise EdgeCNNError(f"{entry} is a symlink out of the SavedModel folder (to {target}); "
                                       "copy what it points to into the folder.")
                if target.is_dir():
                    raise EdgeCNNError(f"{entry} is a symlinked folder; a SavedModel folder holds its own "
                                       "files and folders (copy it in).")
            elif not (entry.is_dir() or entry.is_file()):
                raise EdgeCNNError(f"{entry} is not a file (a FIFO, socket or device); a SavedModel folder "
                                   "holds only files and folders.")


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

    def __init__(self, path: str | Path, trusted: bool = False) -> None:
        if not trusted:
            raise EdgeCNNError(
                f"{path} is a TensorFlow SavedModel: loading one runs its graph, code that can read "
                "and write files like any program (Keras's safe mode does not apply). Add --unsafe "
                "if you trust it, or export a .keras file of the model.")
        check_contained(path)
        log.warning(f"Loading the SavedModel {path} (--unsafe): its graph runs in this process; only "
                    "for models you trust.")
        tf = require("tensorflow", "Loading a SavedModel")
        self._tf, self._path = tf, path
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
        try:
            result = self._fn(x) if self._input.isdigit() else self._fn(**{self._input: x})
        except Exception as exc:  # TensorFlow raises its own kinds for a graph that cannot run
            if "pyfunc" in str(exc).lower():
                cause = ("it calls a tf.py_function, Python code that a SavedModel does not keep; "
                         "save the model without it")
            else:  # TensorFlow heads its message with "Graph execution error:"
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                cause = next((line for line in lines if not line.endswith(":")), one_line(exc))[:300]
            raise EdgeCNNError(f"{self._path}: its '{SIGNATURE}' signature failed when run: {cause}.") from exc
        return result[self._outputs[0]] if len(self._outputs) == 1 else result

    def predict(self, x: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        return np.concatenate([np.asarray(self(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
