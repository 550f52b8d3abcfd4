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

# What a string column holds for "no label" / "no error" on its way through Ray.
NO_VALUE = ""


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
        them NaN): a readable image's ``error`` and an unreadable one's ``label`` are NO_VALUE,
        which :func:`restore_missing` turns back into None once the batch is back.
        """
        ids = batch.get("id")
        pixels, errors = self._images(batch)
        n = len(errors)
        labels = [NO_VALUE] * n
        classes: list[list[str]] = [[] for _ in range(n)]
        probabilities: list[np.ndarray] = [np.zeros(0, np.float32) for _ in range(n)]
        good = [i for i, e in enumerate(errors) if not e]
        if good:
            readable = np.stack([pixels[i] for i in good])
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

    def _images(self, batch: Batch) -> tuple[list[np.ndarray | None], list[str]]:
        """Each row's uint8 image, or why it could not be read."""
        shape = self.predictor.input_shape
        images: list[np.ndarray | None] = []
        errors: list[str] = []
        for ident, kind, data in zip(batch["id"], batch["kind"], batch["data"]):
            try:
                if kind == "pixels":  # a .npz row, already of the model's input shape
                    images.append(np.frombuffer(data, np.uint8).reshape(shape))
                elif kind == "path":
                    images.append(read_image(os.fsdecode(data), shape, fit=self.fit))
                else:
                    images.append(decode_image(data, shape, fit=self.fit, name=str(ident)))
                errors.append(NO_VALUE)
            except EdgeCNNError as exc:  # the caller decides whether it stops the run
                images.append(None)
                errors.append(str(exc))
        return images, errors


def restore_missing(batch: Batch) -> Batch:
    """The batch with each NO_VALUE label and error None again: what a result row holds."""
    return dict(batch, label=_none_for_empty(batch["label"]), error=_none_for_empty(batch["error"]))


def _none_for_empty(values: Any) -> np.ndarray:
    return np.array([v if v != NO_VALUE else None for v in values], dtype=object)


def _object_array(rows: list) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out
