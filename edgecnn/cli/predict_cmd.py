"""``edgecnn predict``: classify image files or a .npz with the Predictor (no TensorFlow)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli.options import Offset, Provider, Scale, preprocessing_from


class Fit(str, Enum):
    crop = "crop"
    pad = "pad"
    stretch = "stretch"


def predict(
    model: Annotated[Path, typer.Argument(help="An exported .onnx model.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...) or .npz files.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes to show per image.")] = 3,
    provider: Provider = "auto",
    scale: Scale = None,
    offset: Offset = None,
    fit: Annotated[Fit, typer.Option(
        help="Images of another aspect ratio than the model's: centre-crop, pad with black, or "
        "stretch.")] = Fit.crop,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Classify images with an exported model and print the top-k classes of each."""
    from edgecnn.runtime import Predictor
    from edgecnn.runtime.images import read_image, read_npz_images

    predictor = Predictor(model, providers=provider, preprocessing=preprocessing_from(scale, offset))
    for path in inputs:
        if path.suffix == ".npz":
            batch = read_npz_images(path)
            names = [f"{path}[{i}]" for i in range(len(batch))]
        else:
            names = [str(path)]
            batch = read_image(path, predictor.input_shape, fit=fit.value)[None]
        ranked = predictor.predict(batch).top_k(top_k)
        for name, top in zip(names, ranked):
            if as_json:
                typer.echo(json.dumps({"input": name, "top_k": [
                    {"class": c, "probability": round(p, 6)} for c, p in top]}))
            else:
                typer.echo(f"{name}: " + ", ".join(f"{c} {p:.3f}" for c, p in top))
    if not as_json:
        typer.echo(f"({', '.join(predictor.providers)})", err=True)

