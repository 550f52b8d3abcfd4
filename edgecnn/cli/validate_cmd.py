"""``edgecnn validate``: parity of every variant against Keras."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.accuracy.gates import Gates
from edgecnn.cli.options import (
    DeviceNames,
    Engine,
    ImportModules,
    IsaList,
    Provider,
    Require,
    TargetsFile,
    Unsafe,
)
from edgecnn.cli.report_view import raise_if_failed
from edgecnn.defaults import DEFAULT_MODEL, EMULATED_IMAGES, REQUIRED_VARIANTS
from edgecnn.store.locations import default_folder

_DEFAULT = Gates()


def validate(
    model_dir: Annotated[Path, typer.Argument(
        file_okay=False, help="Folder with model*.onnx and model.keras (or model.h5).")] = default_folder(DEFAULT_MODEL),
    dataset: Annotated[Optional[str], typer.Option(
        help="Test data (default: the dataset the model was trained on).")] = None,
    keras_model: Annotated[Optional[Path], typer.Option(
        "--keras", help="Reference Keras model (default MODEL_DIR/model.keras, or model.h5).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Use N test images (seeded).")] = None,
    min_agreement: Annotated[float, typer.Option(
        help="fp32: minimum top-1 agreement with Keras.")] = _DEFAULT.fp32_min_agreement,
    max_abs_diff: Annotated[float, typer.Option(
        help="fp32: maximum |Δ probability|.")] = _DEFAULT.fp32_max_abs_diff,
    fp16_min_agreement: Annotated[float, typer.Option(
        help="fp16: minimum top-1 agreement.")] = _DEFAULT.fp16_min_agreement,
    int8_max_drop: Annotated[float, typer.Option(
        help="int8: maximum accuracy drop vs Keras, in percentage points.")] =
        _DEFAULT.int8_max_accuracy_drop * 100,
    int8_min_agreement: Annotated[float, typer.Option(
        help="int8: minimum top-1 agreement with Keras.")] = _DEFAULT.int8_min_agreement,
    int8_max_class_drop: Annotated[float, typer.Option(
        help="int8: maximum accuracy drop of any one class, in percentage points.")] =
        _DEFAULT.int8_max_class_drop * 100,
    int8_max_confident: Annotated[float, typer.Option(
        help="int8: the most answers Keras gives by a margin >= 0.5 a file may flip, in percent of "
        "the images (rounded down; fp32 and fp16 may flip none).")] = _DEFAULT.int8_max_confident_rate * 100,
    int8_significance: Annotated[float, typer.Option(
        help="int8: a drop past --int8-max-drop or --int8-max-class-drop fails when a sign test on the "
        "right answers lost and gained gives p below this (divided by the classes for a class); 1 "
        "fails any drop past them.")] = _DEFAULT.int8_loss_significance,
    provider: Provider = "cpu",
    isa: IsaList = None,
    emulated_images: Annotated[int, typer.Option(
        min=1, help="Emulated rows measure the first N test images (emulation is 10-50x slower).")
    ] = EMULATED_IMAGES,
    engine: Engine = None,
    require: Require = ",".join(REQUIRED_VARIANTS),
    device: DeviceNames = None,
    targets_file: TargetsFile = None,
    import_module: ImportModules = None,
    unsafe: Unsafe = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare every exported variant with Keras; writes report.json and report.md.

    With --isa, every variant is also measured on those instruction-set classes (a variant x
    class matrix); --engine ray runs each (class x variant) row as a Ray task. A variant that
    breaks a gate on a class is "not for" that class; exits with 3 when a required variant
    (--require) breaks one, a class has no passing variant, or a variant is stale or mislabelled.
    Rows of classes not measured again are kept from the previous report. --device measures
    on an SSH device too, natively and on every test image, in a column named after it.
    """
    import json

    from edgecnn.errors import EdgeCNNError
    from edgecnn.export.keras_io import import_user_code
    from edgecnn.results.schema import to_json
    from edgecnn.results.terminal import print_report
    from edgecnn.runners.devices import resolve_devices
    from edgecnn.validate.run import validate as run_validate

    try:
        gates = Gates(min_agreement, max_abs_diff, fp16_min_agreement, int8_max_drop / 100,
                      int8_min_agreement, int8_max_class_drop / 100,
                      int8_max_confident_rate=int8_max_confident / 100,
                      int8_loss_significance=int8_significance)
    except EdgeCNNError as exc:  # NaN, infinite or out of 0..1: a gate that cannot judge (usage, exit 2)
        raise typer.BadParameter(str(exc)) from None
    import_user_code(import_module)
    report = run_validate(model_dir, dataset=dataset, keras_path=keras_model, limit=limit,
                          gates=gates, providers=provider, isa=isa,
                          emulated_images=emulated_images,
                          engine=engine.value if engine else None, require=require,
                          devices=resolve_devices(device, targets_file), unsafe=unsafe)
    if as_json:
        typer.echo(json.dumps(to_json(report), indent=2))
    else:
        print_report(report)
    raise_if_failed(report)
