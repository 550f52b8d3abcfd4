"""``edgecnn train``: train a zoo model with its tutorial recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.cli.options import Force, Seed, keras_verbosity


def train(
    model: Annotated[str, typer.Argument(help="Zoo model name (see `edgecnn zoo`).")],
    dataset: Annotated[Optional[str], typer.Option(
        help="Dataset name, .npz file or image folder (default: the model's own).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Override the batch size.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        min=1, help="Train on a seeded random subset of N training images.")] = None,
    seed: Seed = 0,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default exported/MODEL).")] = None,
    force: Force = False,
) -> None:
    """Train a zoo model; saves model.keras and train.json (history, test accuracy)."""
    from edgecnn.train import train as run_train

    result = run_train(model, dataset=dataset, out_dir=out, epochs=epochs, batch_size=batch_size,
                       limit=limit, seed=seed, force=force, verbose=keras_verbosity())
    typer.echo(
        f"Saved {result.keras_path}: test accuracy {result.test_accuracy:.4f} after "
        f"{result.epochs_run} epochs in {result.seconds:.0f}s"
    )
