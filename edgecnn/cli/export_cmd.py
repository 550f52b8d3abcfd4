"""``edgecnn export``: Keras -> ONNX, then the quantized variants and the parity report."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.cli.options import (
    Force,
    ImportModules,
    IsaList,
    Offset,
    Require,
    Scale,
    Seed,
    Unsafe,
    int_list,
    keras_verbosity,
    preprocessing_from,
)
from edgecnn.defaults import (
    DEFAULT_CALIBRATION,
    DEFAULT_MODEL,
    DEFAULT_OPSET,
    EMULATED_IMAGES,
    REQUIRED_VARIANTS,
)


class Head(str, Enum):
    softmax = "softmax"
    sigmoid = "sigmoid"
    logits = "logits"


def export(
    model: Annotated[str, typer.Argument(
        help="Zoo model name, or a .keras (or legacy .h5) file.")] = DEFAULT_MODEL,
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
    calibration: Annotated[int, typer.Option(min=1, help="Calibration images for int8.")] = DEFAULT_CALIBRATION,
    class_names: Annotated[Optional[str], typer.Option(
        help="Comma-separated class names for a .keras file without an edgecnn record.")] = None,
    output: Annotated[Optional[Head], typer.Option(
        help="For a .keras file whose last layer does not say: what it outputs (logits get a "
        "softmax/sigmoid appended in the exported graph).")] = None,
    output_name: Annotated[Optional[str], typer.Option(
        help="For a .keras file with several outputs: the class head to export (default: its one "
        "softmax output, when exactly one is).")] = None,
    uint8_input: Annotated[Optional[bool], typer.Option(
        "--uint8-input/--float-input", help="The ONNX files read uint8 pixels, the preprocessing in "
        "the graph (an app feeds camera bytes as they are), or preprocessed float32. Default: uint8 "
        "for a model whose own input is uint8, float32 otherwise.")] = None,
    scale: Scale = None,
    offset: Offset = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="Data for training, calibration and validation (default: the model's own).")] = None,
    isa: IsaList = "all",
    require: Require = ",".join(REQUIRED_VARIANTS),
    emulated_images: Annotated[int, typer.Option(
        min=1, help="Emulated classes measure the first N test images (qemu is 10-50x slower).")
    ] = EMULATED_IMAGES,
    input_shape: Annotated[Optional[str], typer.Option(
        callback=int_list, help="H,W,C to export a model of variable input size for (e.g. 28,28,1); "
        "an ONNX file for the edge has a fixed size.")] = None,
    unsafe: Unsafe = False,
    import_module: ImportModules = None,
    time_variants: Annotated[bool, typer.Option(
        "--time/--no-time", help="Time the validated variants at batch 1 and 64 on one thread here (a few "
        "seconds), to name the fastest file that passes on this CPU.")] = True,
    force: Force = False,
) -> None:
    """Export a zoo model (training it first if needed) or your own .keras / .h5 model to ONNX.

    With no arguments: fashion-cnn on the offline Fashion-MNIST, written to exported/fashion-cnn/.
    The int8 scheme is chosen to hold on every --isa class, and validation reports each of them.
    """
    from edgecnn.cli.report_view import print_quantized, raise_if_failed
    from edgecnn.display import visible
    from edgecnn.export.keras_io import import_user_code
    from edgecnn.pipeline import run_pipeline
    from edgecnn.results.terminal import print_report, ship_line

    import_user_code(import_module)
    result = run_pipeline(
        model, out_dir=out, opset=opset, quantize_variants=quantize, validate_variants=validate,
        retrain=retrain, train_options={"epochs": epochs, "limit": limit, "verbose": keras_verbosity()}, calibration=calibration,
        seed=seed, class_names=[c.strip() for c in class_names.split(",")] if class_names else None,
        preprocessing=preprocessing_from(scale, offset), dataset=dataset, isa=isa or "all",
        output=output.value if output else None, output_name=output_name, require=require,
        uint8_input=uint8_input,
        emulated_images=emulated_images,
        input_shape=tuple(input_shape) if input_shape else None,
        unsafe=unsafe, force=force, time_variants=time_variants,
    )
    state = "written" if result.export.written else "up to date"
    typer.echo(f"ONNX model {result.export.onnx_path} ({state})")
    print_quantized(result.variants)
    if result.report is not None:
        print_report(result.report)
        typer.echo(f"Reports: {result.export.onnx_path.parent / 'report.md'}")
        typer.echo(visible(ship_line(result.report, result.timing, result.export.onnx_path.parent)))
        raise_if_failed(result.report)
