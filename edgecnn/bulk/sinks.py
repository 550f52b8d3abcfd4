"""Where bulk results go: a Parquet or JSON-lines file (written atomically), or the terminal.

Every sink receives result batches in input order and writes one row per image: ``index``,
``input``, ``label``, ``top_classes``, ``top_probabilities``, ``error``, ``model_sha256``,
``variant``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.bulk.sources import Batch
from edgecnn.display import visible
from edgecnn.errors import EdgeCNNError
from edgecnn.store.files import atomic_path, check_overwrite, ensure_folder

Write = Callable[[Batch], None]
FILE_SUFFIXES = (".parquet", ".jsonl")
# Rows per Parquet row group: large enough to read fast, small enough to buffer.
ROW_GROUP_ROWS = 65_536


@contextlib.contextmanager
def result_sink(out: Path | None, *, model_sha256: str, variant: str, as_json: bool = False,
                force: bool = False) -> Iterator[Write]:
    """A ``write(batch)`` for ``out`` (by its suffix), or for stdout when ``out`` is None.

    A file appears only when every batch was written: an interrupted run leaves no partial
    results, and an existing file is replaced only with ``force``.
    """
    if out is None:
        yield _print_json if as_json else _print_text
        return
    check_destination(out, force)
    constants = {"model_sha256": model_sha256, "variant": variant}
    with atomic_path(out, replace=force) as tmp:
        if out.suffix.lower() == ".parquet":
            with _parquet_writer(tmp, constants) as write:
                yield write
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                yield lambda batch: handle.writelines(
                    json.dumps(row | constants) + "\n" for row in _rows(batch))


def check_destination(out: Path, force: bool) -> None:
    """Refuse an output file of an unknown kind, or one that exists (unless ``force``), before
    any work is done."""
    if out.suffix.lower() not in FILE_SUFFIXES or out.is_dir():
        raise EdgeCNNError(f"{out}: results are written to a {' or '.join(FILE_SUFFIXES)} file.")
    ensure_folder(out.parent)
    check_overwrite(out, None, force)


def _rows(batch: Batch) -> Iterator[dict[str, Any]]:
    for i in range(len(batch["index"])):
        yield {"index": int(batch["index"][i]), "input": batch["input"][i],
               "label": batch["label"][i], "top_classes": list(batch["top_classes"][i]),
               "top_probabilities": [float(p) for p in batch["top_probabilities"][i]],
               "error": batch["error"][i]}


@contextlib.contextmanager
def _parquet_writer(path: Path, constants: dict[str, str]) -> Iterator[Write]:
    pa = require("pyarrow", "Writing Parquet results")
    pq = require("pyarrow.parquet", "Writing Parquet results")
    schema = pa.schema([
        ("index", pa.int64()), ("input", pa.string()), ("label", pa.string()),
        ("top_classes", pa.list_(pa.string())), ("top_probabilities", pa.list_(pa.float32())),
        ("error", pa.string()), ("model_sha256", pa.string()), ("variant", pa.string()),
    ])
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            writer.write_table(pa.concat_tables(pending))
            pending.clear()

    def write(batch: Batch) -> None:
        n = len(batch["index"])
        columns = {
            "index": batch["index"], "input": batch["input"].tolist(),
            "label": batch["label"].tolist(),
            "top_classes": [list(c) for c in batch["top_classes"]],
            "top_probabilities": [list(p) for p in batch["top_probabilities"]],
            "error": batch["error"].tolist(),
            **{k: [v] * n for k, v in constants.items()},
        }
        pending.append(pa.table(columns, schema=schema))
        if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
            flush()

    writer = pq.ParquetWriter(path, schema)
    try:
        yield write
        flush()
    finally:
        writer.close()


def _print_text(batch: Batch) -> None:
    for row in _rows(batch):
        if row["error"] is not None:
            _echo(f"{visible(row['input'])}: error: {visible(row['error'])}")
        else:
            _echo(f"{visible(row['input'])}: " + ", ".join(
                f"{visible(c)} {p:.3f}" for c, p in zip(row["top_classes"], row["top_probabilities"])))


def _print_json(batch: Batch) -> None:
    for row in _rows(batch):
        _echo(json.dumps({"input": row["input"], "top_k": [
            {"class": c, "probability": round(p, 6)}
            for c, p in zip(row["top_classes"], row["top_probabilities"])],
            **({"error": row["error"]} if row["error"] is not None else {})}))


def _echo(line: str) -> None:
    sys.stdout.write(line + "\n")
