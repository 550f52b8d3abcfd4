"""The one function of bulk inference: a batch of image references in, top-k answers out.

``BatchClassifier`` is a stateful callable (it holds one Predictor), the shape Ray Data's
``map_batches`` wants for an actor; the in-process engine calls the very same object, which is
why both engines write the same rows.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bulk.sources import Batch
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from edgecnn.runtime.images import decode_image, read_image
from edgecnn.runtime.metadata import Preprocessing



class BatchClassifier:
    """Decodes and classifies one batch at a time.

    Args:
        model: the ``.onnx`` file, or its bytes (how a Ray actor on another machine gets it).
        top_k: classes kept per image.
        fit: how images of another aspect ratio are fitted (see ``read_image``).
        threads: onnxruntime intra-op threads of this classifier's session (0 = its default).
        preprocessing: for ONNX files without edgecnn metadata.
        providers: execution providers, as for the Predictor.
    """

    def __init__(self, model: str | os.PathLike | bytes, *, top_k: int = 3, fit: str = "crop",
                 threads: int = 0,
                 preprocessing: Preprocessing | None = None, providers: str = "auto") -> None:
        self.top_k = top_k
        self.fit = fit
        options = dict(providers=providers, preprocessing=preprocessing, intra_op_threads=threads)
        if isinstance(model, bytes):
            with tempfile.TemporaryDirectory(prefix="edgecnn-model-") as tmp:
                path = Path(tmp) / "model.onnx"
                path.write_bytes(model)
                self.predictor = Predictor(path, **options)  # the session keeps the graph
        else:
            self.predictor = Predictor(model, **options)

    def __call__(self, batch: Batch) -> Batch:
        """Columns ``label``, ``top_classes``, ``top_probabilities``, ``error`` (and ``id``
        passed through), one row per input row, in order.

        An image that cannot be read is a row with its ``error``: raising would lose it inside
        Ray's wrapping of exceptions. Strings are never None (Ray's Arrow round trip would make
        them NaN): a readable image's ``error`` is "", an unreadable one's ``label`` is "".
        """
        ids = batch.get("id")
        pixels, errors = self._images(batch)
        n = len(errors)
        labels = [""] * n
        classes: list[list[str]] = [[] for _ in range(n)]
        probabilities: list[np.ndarray] = [np.zeros(0, np.float32) for _ in range(n)]
        good = [i for i, e in enumerate(errors) if not e]
        if good:
            # An array (a .npz batch) is read whole; decoded files are stacked.
            readable = pixels if isinstance(pixels, np.ndarray) else np.stack([pixels[i] for i in good])
            for i, top in zip(good, self.predictor.predict(readable).top_k(self.top_k)):
                classes[i] = [name for name, _ in top]
                probabilities[i] = np.array([p for _, p in top], dtype=np.float32)
                labels[i] = classes[i][0]
        out = {"label": np.array(labels, dtype=object),
               "top_classes": _object_array(classes),
               "top_probabilities": _object_array(probabilities),
               "error": np.array(errors, dtype=object)}
        if ids is not None:
            out["id"] = np.asarray(ids, dtype=object)
        return out

    def _images(self, batch: Batch) -> tuple[np.ndarray | list[np.ndarray | None], list[str]]:
        """Each row's uint8 image, or why it could not be read."""
        if "pixels" in batch:
            images = np.asarray(batch["pixels"])
            return images, [""] * len(images)
        shape = self.predictor.input_shape
        from_files = "path" in batch
        if from_files:
            names, cells = [str(p) for p in batch["path"]], batch["path"]
        else:
            ids = batch.get("id")
            cells = batch["bytes"]
            names = [str(ids[i]) if ids is not None else f"row {i}" for i in range(len(cells))]
        images: list[np.ndarray | None] = []
        errors: list[str] = []
        for name, cell in zip(names, cells):
            try:
                images.append(read_image(name, shape, fit=self.fit) if from_files
                              else decode_image(_encoded(cell), shape, fit=self.fit, name=name))
                errors.append("")
            except EdgeCNNError as exc:  # the caller decides whether it stops the run
                images.append(None)
                errors.append(str(exc))
        return images, errors


def _encoded(value: Any) -> Any:
    """The bytes of a Parquet image cell: raw bytes, or a {"bytes": ..., "path": ...} struct."""
    return value.get("bytes") if isinstance(value, dict) else value


def _object_array(rows: list) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out
