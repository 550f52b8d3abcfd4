"""Where images come from in bulk: files (folders, globs), a .npz array, or a Parquet table.

A source yields batches read lazily, so that memory stays bounded by the batch (a .npz is the
exception: numpy reads its array whole). Every batch has the same three columns, whatever the
source: ``id`` (what a result row calls the image), ``kind`` and ``data`` -- ``path`` (the file's
name, as bytes), ``bytes`` (an encoded image) or ``pixels`` (one uint8 image of the model's input
shape, raw). The same batches feed the in-process engine and, as Arrow blocks of one schema,
the Ray engine: all sources make one Ray dataset, so both engines see the same images in the
same order and Ray loads the model once per actor, not once per source.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.images import image_batch, read_npz_images

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# Parquet columns holding encoded images, in the order they are looked for; a struct column
# with a "bytes" field (how Hugging Face datasets store images) counts too.
PARQUET_IMAGE_COLUMNS = ("image", "bytes", "png", "jpeg", "img")
PARQUET_ID_COLUMNS = ("path", "id", "name", "filename")

# One batch of a bulk run: id/kind/data as made here, then labels and errors added by the
# classifier; sources, classifier and sinks all pass this one shape along.
Batch = dict[str, Any]


def _batch(ids: Sequence[str], kind: str, data: Sequence[bytes]) -> Batch:
    return {"id": np.array(ids, dtype=object), "kind": np.array([kind] * len(ids), dtype=object),
            "data": np.array(list(data), dtype=object)}


def arrow_blocks(sources: Sequence[Any], rows: int) -> Iterator[Any]:
    """The batches of every source in order, each as an Arrow table of one schema: the blocks
    Ray spreads over its actors. A generator, so the caller can put each block in Ray's object
    store as it is read and hold one at a time (the object store spills to disk beyond its size).

    Read here, also for Parquet, not with ray.data.read_parquet: with every CPU held by an
    actor, Ray Data 2.60 never schedules the read tasks (a hang on 2 CPUs and 2 actors).
    """
    pa = require("pyarrow", "Reading images with Ray")
    for source in sources:
        for batch in source.batches(rows):
            yield pa.table({"id": pa.array(batch["id"].tolist(), pa.string()),
                            "kind": pa.array(batch["kind"].tolist(), pa.string()),
                            "data": pa.array(batch["data"].tolist(), pa.binary())})


class FileSource:
    """Image files, read one by one where they are classified."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def batches(self, size: int) -> Iterator[Batch]:
        for i in range(0, len(self.paths), size):
            chunk = self.paths[i : i + size]
            yield _batch(chunk, "path", [os.fsencode(p) for p in chunk])


class ArraySource:
    """The uint8 images of a .npz (``x_test``, ``images``, ``x`` or its only array), counted as
    the Predictor counts them for a model of ``input_shape`` (one 28x28 array is one image)."""

    def __init__(self, path: Path, input_shape: tuple[int, int, int]) -> None:
        self.name = str(path)
        try:
            self.images = image_batch(read_npz_images(path), input_shape)
        except EdgeCNNError as exc:
            raise EdgeCNNError(f"{path}: {exc}") from exc

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, size: int) -> Iterator[Batch]:
        for i in range(0, len(self.images), size):
            chunk = self.images[i : i + size]
            yield _batch([f"{self.name}[{j}]" for j in range(i, i + len(chunk))], "pixels",
                         [np.ascontiguousarray(image, np.uint8).tobytes() for image in chunk])


class ParquetSource:
    """Encoded images in a Parquet column, read a batch at a time."""

    def __init__(self, path: Path) -> None:
        pq = require("pyarrow.parquet", "Reading Parquet files")
        self.name = str(path)
        try:
            # pyarrow's default pre-buffering reads the whole file ahead (memory in proportion
            # to the file, bench/README.md, "Bulk"): read a column chunk's pages as they are needed
            self._file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        except Exception as exc:  # pyarrow's ArrowInvalid / OSError on a non-Parquet file
            raise EdgeCNNError(f"{path} is not a readable Parquet file: {exc}") from exc
        schema = self._file.schema_arrow
        names = schema.names
        self.image_column = next((c for c in PARQUET_IMAGE_COLUMNS if c in names), None)
        if self.image_column is None:
            raise EdgeCNNError(
                f"{path} has columns {names}; expected encoded images (PNG, JPEG, ...) in a "
                f"column named one of {', '.join(PARQUET_IMAGE_COLUMNS)}."
            )
        self.id_column = next((c for c in PARQUET_ID_COLUMNS
                               if c in names and str(schema.field(c).type) in ("string", "large_string")),
                              None)

    def __len__(self) -> int:
        return self._file.metadata.num_rows

    def batches(self, size: int) -> Iterator[Batch]:
        columns = [self.image_column] + ([self.id_column] if self.id_column else [])
        start = 0
        for record in self._file.iter_batches(batch_size=size, columns=columns):
            rows = record.to_pydict()
            images = rows[self.image_column]
            names = rows[self.id_column] if self.id_column else [None] * len(images)
            # a row without a name (a null cell) is called by its place, like an unnamed table's
            ids = [n if n else f"{self.name}[{j}]" for j, n in zip(range(start, start + len(images)), names)]
            yield _batch(ids, "bytes", [_encoded(cell) for cell in images])
            start += len(images)


def _encoded(cell: Any) -> bytes:
    """The bytes of a Parquet image cell: raw bytes, or a {"bytes": ..., "path": ...} struct
    (empty when null: then it is not a readable image, like any other empty file)."""
    value = cell.get("bytes") if isinstance(cell, dict) else cell
    return bytes(value) if value is not None else b""


def open_sources(inputs: Sequence[str | Path], input_shape: tuple[int, int, int],
                 ) -> list[FileSource | ArraySource | ParquetSource]:
    """The sources named on the command line, in order; consecutive image files, folders and
    globs make one file source. Folders are searched recursively, files sorted by path; arrays
    are read as images of the model's ``input_shape``."""
    sources: list[Any] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            sources.append(FileSource(list(pending)))
            pending.clear()

    for item in inputs:
        path = Path(item)
        text = str(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise EdgeCNNError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
            pending.extend(found)
        elif path.suffix.lower() == ".npz":
            flush()
            sources.append(ArraySource(path, input_shape))
        elif path.suffix.lower() == ".parquet" and path.is_file():
            flush()
            sources.append(ParquetSource(path))
        elif not path.exists() and glob.has_magic(text):
            found = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                raise EdgeCNNError(f"No files match {text}.")
            pending.extend(found)
        else:
            pending.append(text)  # read_image says what is wrong with it, if anything
    flush()
    if not sources:
        raise EdgeCNNError("No input images given.")
    for source in sources:  # one rule for every kind of input, as for an empty folder or glob
        if len(source) == 0:
            raise EdgeCNNError(f"{getattr(source, 'name', 'the input')} holds no images.")
    return sources
