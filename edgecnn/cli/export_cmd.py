"""``edgecnn export``: Keras -> ONNX, then the quantized variants and the parity report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.cli.options import Force, Offset, Scale, Seed, preprocessing_from
from edgecnn.cli.report_view import print_quantized, print_report, raise_if_failed
from edgecnn.export import DEFAULT_MODEL, DEFAULT_OPSET


def export(
    model: Annotated[str, typer.Argument(
        help="Zoo model name or a .keras file.")] = DEFAULT_MODEL,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default exported/NAME).")] = None,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset.")] = DEFAULT_OPSET,
    quantize: Annotated[bool, typer.Option(
        "--quantize/--no-quantize", help="Also write the int8, dynamic-int8 and fp16 variants.")] = True,
    validate: Annotated[bool, typer.Option(
        "--validate/--no-validate", help="Check every variant against Keras on the test set.")] = True,
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="Train the zoo model again even if model.keras exists.")] = False,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs when training.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        min=1, help="When training: use N training images.")] = None,
    seed: Seed = 0,
    calibration: Annotated[int, typer.Option(min=1, help="Calibration images for int8.")] = 500,
    class_names: Annotated[Optional[str], typer.Option(
        help="Comma-separated class names for a .keras file without an edgecnn record.")] = None,
    scale: Scale = None,
    offset: Offset = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="Data for training, calibration and validation (default: the model's own).")] = None,
    unsafe: Annotated[bool, typer.Option(
        "--unsafe", help="Load a .keras file with Keras's safe mode OFF. Lambda layers then run "
        "code stored in the file: only for files you trust.")] = False,
    force: Force = False,
) -> None:
    """Export a zoo model (training it first if needed) or your own .keras model to ONNX.

    With no arguments: fashion-cnn on the offline Fashion-MNIST, written to exported/fashion-cnn/.
    """
    from edgecnn.export import export as run_export

    train_options = {"epochs": epochs, "limit": limit, "seed": seed, "dataset": dataset}
    result = run_export(
        model, out_dir=out, opset=opset, force=force, retrain=retrain, unsafe=unsafe,
        class_names=[c.strip() for c in class_names.split(",")] if class_names else None,
        preprocessing=preprocessing_from(scale, offset), train_options=train_options,
    )
    state = "written" if result.written else "up to date"
    typer.echo(f"ONNX model {result.onnx_path} ({state})")
    if quantize:
        from edgecnn.quantize import quantize as run_quantize

        print_quantized(run_quantize(result.onnx_path, calibration=calibration, dataset=dataset,
                                     seed=seed, force=force))
    if validate:
        from edgecnn.validate import validate as run_validate

        report = run_validate(result.onnx_path.parent, dataset=dataset)
        print_report(report)
        typer.echo(f"Reports: {result.onnx_path.parent / 'report.md'}")
        raise_if_failed(report)
