"""``edgecnn predict``: classify images with the Predictor (no TensorFlow), a few or millions."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.cli.options import (
    Engine,
    Force,
    Offset,
    Provider,
    Scale,
    preprocessing_from,
)
from edgecnn.defaults import MAX_THREADS


class Fit(str, Enum):
    crop = "crop"
    pad = "pad"
    stretch = "stretch"


def predict(
    model: Annotated[Path, typer.Argument(help="An exported .onnx model.")],
    inputs: Annotated[list[str], typer.Argument(
        help="Image files (PNG, JPEG, ...), folders (searched recursively), quoted globs, .npz "
        "files, or .parquet files with encoded images in an 'image' column.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes to show per image.")] = 3,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Write one row per image to this .parquet or .jsonl file (written when "
        "complete) instead of printing.")] = None,
    engine: Engine = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per model call.")] = 256,
    threads: Annotated[Optional[int], typer.Option(
        min=0, max=MAX_THREADS, help="onnxruntime threads per worker (default: all cores locally, 1 per Ray actor).")
    ] = None,
    concurrency: Annotated[Optional[int], typer.Option(
        min=1, help="Ray actors, each with its own model session (default: CPUs / threads).")] = None,
    skip_unreadable: Annotated[bool, typer.Option(
        "--skip-unreadable", help="Record unreadable images as rows with an error instead of "
        "stopping.")] = False,
    provider: Provider = "auto",
    scale: Scale = None,
    offset: Offset = None,
    fit: Annotated[Fit, typer.Option(
        help="Images of another aspect ratio than the model's: centre-crop, pad with black, or "
        "stretch.")] = Fit.crop,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    force: Force = False,
) -> None:
    """Classify images with an exported model: print the top-k classes, or write every row to
    --out. Streams in batches with bounded memory; --engine ray spreads the work over Ray."""
    from edgecnn.bulk import predict_bulk

    summary = predict_bulk(
        model, inputs, out=out, engine=engine.value if engine else None, batch_size=batch_size, top_k=top_k,
        fit=fit.value, threads=threads, concurrency=concurrency,
        skip_unreadable=skip_unreadable, providers=provider,
        preprocessing=preprocessing_from(scale, offset), as_json=as_json, force=force)
    if out is not None or not as_json:
        where = f"{summary.workers} Ray actor(s)" if summary.engine == "ray" else "one process"
        typer.echo(
            f"{summary.images:,} image{'s' if summary.images != 1 else ''} in {summary.seconds:.1f} s "
            f"({summary.images_per_second:,.0f}/s, {where}, {', '.join(summary.providers)})"
            + (f"; {summary.unreadable:,} unreadable (rows with an error)" if summary.unreadable else "")
            + (f" -> {out}" if out else ""), err=True)
