"""Parity: every exported variant against the Keras model on the whole test set.

The Keras model is the reference. A variant passes when it agrees with Keras closely enough
for its kind: fp32 must match almost exactly, fp16 must give the same top-1 answers, int8 may
lose at most a small amount of accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.accuracy.agreement import Agreement
from edgecnn.accuracy.gates import Gates
from edgecnn.accuracy.metrics import agreement_metrics
from edgecnn.data import Dataset, load_dataset
from edgecnn.defaults import EMULATED_IMAGES, REQUIRED_VARIANTS
from edgecnn.errors import EdgeCNNError
from edgecnn.export.keras_io import (
    imported_code,
    load_keras,
    reference_file,
    reference_sha256,
)
from edgecnn.quantize.calibrate import calibration_images
from edgecnn.quantize.qdq_loss_debug import layer_drift
from edgecnn.results.bench import BenchMachine
from edgecnn.results.evidence import carry_earlier_rows, read_previous
from edgecnn.results.markdown import render_markdown
from edgecnn.results.page import write_page
from edgecnn.results.report import (
    REPORT_MD,
    Cell,
    DeviceRecord,
    Drift,
    Machine,
    Report,
    VariantRow,
    write_report,
)
from edgecnn.results.schema import from_json
from edgecnn.runners import ray_cluster
from edgecnn.runners.base import CellRun
from edgecnn.runners.devices import Device
from edgecnn.runners.native import Native
from edgecnn.runners.plan import class_runners, plan_classes, run_all
from edgecnn.runners.ray import run_on_ray
from edgecnn.runners.ssh import SshDevice
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import ISA_CLASSES, host_isa
from edgecnn.runtime.metadata import ModelInfo
from edgecnn.runtime.outputs import activate, to_probabilities
from edgecnn.store.files import sha256_file, write_text, writes_into
from edgecnn.train import KERAS_FILE, read_train_info
from edgecnn.validate.verdict import check_required, verdict
from edgecnn.variants import variant_files
from edgecnn.versions import package_versions
from edgecnn.zoo import get_spec, list_models

# What turns a variant's outputs into answers: it must be what the export recorded for the
# Keras reference, or validated outputs become wrong answers (a class list moved round by one).
ANSWER_FIELDS = ("class_names", "preprocessing", "input_shape", "output", "keras_logits")
log = logging.getLogger(__name__)


@writes_into(lambda model_dir: model_dir)
def validate(
    model_dir: str | Path,
    *,
    dataset: str | None = None,
    keras_path: str | Path | None = None,
    limit: int | None = None,
    gates: Gates = Gates(),
    providers: str = "cpu",
    isa: str | Sequence[str] | None = None,
    emulated_images: int = EMULATED_IMAGES,
    engine: str | None = None,
    require: Sequence[str] = REQUIRED_VARIANTS,
    devices: Sequence[Device] = (),
    unsafe: bool = False,
) -> Report:
    """Validate every variant in ``model_dir`` against its Keras model; write the reports.

    The Keras reference runs once, natively. Every variant is measured on ``providers`` here
    (the native row) and, on the CPU, on each instruction-set class in ``isa``: natively when it
    is the host's, otherwise under qemu-user. Gates apply to every row.

    Args:
        model_dir: folder holding ``model*.onnx`` (and by default ``model.keras``).
        dataset: test data; defaults to the dataset the model was trained on.
        keras_path: the reference Keras model (default ``model_dir/model.keras``, or ``model.h5``).
        limit: use a seeded random subset of this many test images.
        gates: tolerances.
        providers: execution providers for the native row.
        isa: instruction-set classes to measure besides the native row: "all", a list or a
            comma-separated string. A class named explicitly that cannot be run here is an
            error; with "all" it is reported as not measured, with the reason.
        emulated_images: emulated rows measure the first this many test images (the native
            row measures all of them); each row records its count.
        engine: ``local`` runs the rows here one class at a time, each emulated class probed
            against the native row first (:func:`edgecnn.runners.plan.probed`); ``ray`` runs
            every (class x variant) row as a Ray task, measured on its own images (default:
            ``ray`` when ``RAY_ADDRESS`` is set). The same verdicts either way.
        require: the variants (fp32, int8, dynint8, fp16) that must pass on every class; see
            :func:`verdict` for what a failed cell of another variant means.
        devices: SSH devices to measure on as well, natively and on every test image; each
            is a row of its own, named after the device, with the class it reads there.
        unsafe: load a reference whose loading runs code (Lambda layers, a SavedModel's
            graph); recorded in the report.

    Returns:
        The report (also written as ``report.json``, ``report.md`` and ``report.html``);
        ``report.passed`` is False when :func:`verdict` finds a failure, listed in
        ``report.failures``.
    """
    require = check_required(require)
    model_dir = Path(model_dir)
    remote = ready_devices(devices)
    reference = keras_reference(model_dir, dataset, keras_path, limit, providers, unsafe)
    outputs = measure_matrix(reference, isa, emulated_images, engine, remote)
    report = assemble(reference, outputs, gates, require)
    report.unsafe = unsafe
    carry_earlier_rows(report, read_previous(model_dir))
    report.failures, report.not_for = verdict(report)
    report.passed = not report.failures
    write_report(model_dir, report)
    write_text(model_dir / REPORT_MD, render_markdown(report))
    write_page(model_dir, report)
    return report


@dataclass
class Reference:
    """The Keras model's answers on the test images, and the variant files to compare with it."""

    files: list[Path]
    predictors: list[Predictor]
    info: ModelInfo  # fp32's metadata
    recorded: Any  # what the export recorded about the Keras model (train.json, else fp32's metadata)
    data: Dataset
    keras_path: Path
    probs: np.ndarray
    native: str  # the native row's name
    providers: str  # the native row's execution providers, as asked for

    @property
    def accuracy(self) -> float:
        return float((self.probs.argmax(1) == self.data.y_test).mean())


def keras_reference(model_dir: Path, dataset: str | None, keras_path: str | Path | None,
                    limit: int | None, providers: str, unsafe: bool = False) -> Reference:
    """Load the variants and the test data, and run the Keras model on it once, natively."""
    files = variant_files(model_dir)
    keras_path = Path(keras_path or reference_file(model_dir))
    predictors = [Predictor(f, providers=providers) for f in files]
    info = predictors[0].info
    trained = read_train_info(keras_path.parent) if keras_path.name == KERAS_FILE else None
    dataset = dataset or info.dataset or (trained.dataset if trained else None)
    if not dataset:
        raise EdgeCNNError("The model does not say which dataset it was trained on; name the test dataset.")
    data = load_dataset(dataset, image_size=info.input_shape[:2])
    if limit is not None:
        data = data.subset(test=limit, seed=0)
    if data.image_shape != info.input_shape:
        raise EdgeCNNError(
            f"Dataset '{dataset}' has images of shape {data.image_shape}, the model expects "
            f"{info.input_shape}."
        )
    log.info(f"Keras reference: {keras_path.name} on {len(data.x_test)} test images of '{data.name}'")
    net = load_keras(keras_path, unsafe=unsafe, output=info.keras_output)
    if info.keras_sha256 and reference_sha256(keras_path) != info.keras_sha256:
        # e.g. another export replaced model.keras: comparing against it would be meaningless
        raise EdgeCNNError(
            f"{keras_path} is not the Keras model {files[0].name} was exported from (its sha256 "
            f"differs from the {info.keras_sha256[:12]}... recorded in the model); re-run "
            "edgecnn export, or name the right reference model."
        )
    keras_out = net.predict(info.preprocessing.apply(data.x_test), batch_size=256, verbose=0)
    if info.keras_logits:  # the export appended the activation; the reference gets it too
        keras_out = activate(keras_out, info.output)
    return Reference(files, predictors, info, trained or info, data, keras_path,
                     to_probabilities(keras_out, info.output), native_row_name(predictors[0].providers), providers)


@dataclass
class Outputs:
    """Every row's cell (each variant's probabilities, and how they were obtained), the classes
    not measured, and the devices measured."""

    cells: dict[str, CellRun]
    not_measured: dict[str, str]
    devices: dict[str, DeviceRecord]


def ready_devices(devices: Sequence[Device]) -> list[SshDevice]:
    """The devices as runners, each checked to be reachable and to have its runtime (one line
    if not), before the minutes of work that would otherwise come first."""
    if not devices:
        return []

    remote = [SshDevice(d) for d in devices]
    here = _onnxruntime_version()
    for device in remote:
        device.machine = device.check_ready()
        if device.machine["onnxruntime"] != here:
            log.warning(f"  {device.row} runs onnxruntime {device.machine['onnxruntime']}, this machine "
                        f"{here}: its column is measured with its own (the report records both)")
    return remote


def measure_matrix(reference: Reference, isa: str | Sequence[str] | None, emulated_images: int,
                   engine: str | None, remote: Sequence[SshDevice] = ()) -> Outputs:
    """The variant x row matrix: the native row here, every other class under qemu (or on a
    Ray node labelled with it) on its first ``emulated_images`` test images: emulation runs far
    slower. Each device runs natively there, on all of them."""
    x = reference.data.x_test
    native = Native(providers=reference.providers, row=reference.native)
    if ray_cluster.resolve_engine(engine) == "ray" and isa is not None:
        with ray_cluster.connected():
            labelled = ray_cluster.labelled_isas()
            rows, not_measured = plan_classes(isa, reference.native, labelled)
            cells = run_on_ray(rows, reference.files, x, emulated_images, labelled)
            cells.update(run_all([native, *remote], reference.files, x, emulated_images))
    else:
        rows, not_measured = plan_classes(isa, reference.native)
        # CPU classes are probed against the native row when it is a CPU class itself
        host = reference.native if reference.native in ISA_CLASSES else None
        cells = run_all([native, *class_runners(rows), *remote], reference.files, x, emulated_images,
                        [p.info.variant for p in reference.predictors], host)
    for path, predictor in zip(reference.files, reference.predictors):
        log.info(f"  {path.name} ({predictor.info.variant}) on {', '.join(predictor.providers)}")
    records = {d.row: DeviceRecord(d.device.address, d.isa,
                                   from_json(BenchMachine, d.machine, f"{d.row}'s machine") if d.machine else None,
                                   d.warnings)
               for d in remote}
    classes = len(reference.info.class_names)
    for row, cell in cells.items():  # what each row was sent, checked before it is judged
        own = min(emulated_images, len(x)) if cell.provenance.emulated else len(x)
        cell.check(row, len(reference.files),
                   [len(x) if cell.same(i) else own for i in range(len(reference.files))], classes)
    ordered = {reference.native: cells.pop(reference.native), **cells}
    return Outputs(ordered, not_measured, records)


def assemble(reference: Reference, outputs: Outputs, gates: Gates, require: Sequence[str]) -> Report:
    """The report of this run: each cell's metrics judged by its gates, each variant's verdict."""
    info, data = reference.info, reference.data
    validated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    fp32_size = reference.files[0].stat().st_size
    variants = []
    for i, (path, predictor) in enumerate(zip(reference.files, reference.predictors)):
        kind = gate_kind(predictor.info)
        by_isa, native_metrics = {}, None
        for row, cell in outputs.cells.items():
            probs, how, same = cell.probs[i], cell.provenance, cell.same(i)
            n = len(probs)
            metrics = agreement_metrics(reference.probs[:n], probs, data.y_test[:n], info.class_names)
            judged = gates.judge(kind, metrics)
            by_isa[row] = Cell(metrics.accuracy, metrics.accuracy_delta, metrics.agreement,
                               metrics.max_abs_diff, n, how.emulated, judged.passed,
                               judged.breaches, judged.flips, validated_at,
                               how=how.how, where=how.where, isa=how.isa,
                               decided=same.words if same else f"measured on {n:,} images",
                               same_as=same.row if same else None)
            if row == reference.native:
                native_metrics = metrics
        variants.append(_variant_row(reference, path, predictor, by_isa, native_metrics, gates, fp32_size))
    return Report(
        model=info.name, dataset=data.name, test_images=int(len(data.x_test)),
        keras_file=reference.keras_path.name, keras_accuracy=reference.accuracy,
        gates=asdict(gates), machine=Machine(host_isa(), _onnxruntime_version(), reference.native,
                                             package_versions()),
        isa_rows=list(outputs.cells), variants=variants, passed=False, devices=outputs.devices,
        dataset_provenance=data.provenance, keras_sha256=info.keras_sha256,
        warnings=_chance_warning(reference), isa_not_measured=outputs.not_measured,
        required=list(require), validated_at=validated_at, user_code=imported_code(), **_tutorial(info.name),
    )


def _variant_row(reference: Reference, path: Path, predictor: Predictor, by_isa: dict[str, Cell],
                 metrics: Agreement, gates: Gates, fp32_size: int) -> VariantRow:
    """One variant's row: its native metrics and cells, and whether it passes as a file."""
    kind = predictor.info.variant
    rule = gates.rule(gate_kind(predictor.info))
    # e.g. an export interrupted between writing model.onnx and its variants
    stale = predictor.info.keras_sha256 != reference.info.keras_sha256
    mismatch = [f for f in ANSWER_FIELDS
                if getattr(predictor.info, f) != getattr(reference.recorded, f)]
    failed_rows = [row for row, cell in by_isa.items() if not cell.passed]
    passed = not failed_rows
    if failed_rows:
        rule += f" (broken on {', '.join(failed_rows)})"
    if mismatch:
        passed, rule = False, (f"metadata differs from the export's record of the Keras model "
                               f"in {', '.join(mismatch)}: its answers would be mislabelled")
    elif stale:
        passed, rule = False, "stale: made from another Keras model than model.onnx; re-run export"
    drift = None
    if not passed and kind == "int8":
        log.info(f"  {path.name} missed its gate; comparing its layers with fp32...")
        # Training images (never test), drawn reproducibly like calibration's.
        images = calibration_images(reference.data, min(200, len(reference.data.x_train)))
        drift = [Drift(**d) for d in layer_drift(reference.files[0], path, images, reference.info)]
    native = by_isa[reference.native]
    size = path.stat().st_size
    return VariantRow(
        file=path.name, variant=kind, size_bytes=size, compression=fp32_size / size,
        images=native.images, accuracy=native.accuracy, accuracy_delta=native.accuracy_delta,
        agreement=native.agreement, max_abs_diff=native.max_abs_diff,
        mean_abs_diff=metrics.mean_abs_diff, per_class_accuracy=metrics.per_class_accuracy,
        per_class_delta=metrics.per_class_delta, classes_called_out=metrics.classes_called_out,
        by_isa=by_isa, gate=rule, passed=passed, sha256=sha256_file(path),
        quantization=predictor.info.quantization, confusion_delta=metrics.confusion_delta,
        breaches=native.breaches, flips=native.flips, failed_on=failed_rows, stale=stale,
        mismatch=mismatch, layer_drift=drift,
    )


def gate_kind(info: ModelInfo) -> str:
    """The gates a variant is judged by: its kind's, but fp16's for the exact export of a
    mixed-precision model (float16 layers cannot match Keras to fp32's 1e-4)."""
    return "fp16" if info.variant == "fp32" and info.compute == "float16" else info.variant


def _chance_warning(reference: Reference) -> list[str]:
    chance = 1.0 / len(reference.info.class_names)
    if reference.accuracy >= chance + 0.05:
        return []
    warning = (f"The Keras model itself is at chance on this data ({reference.accuracy:.1%}; chance "
               f"{chance:.1%}): wrong preprocessing, dataset or class order? Variants that match it "
               "prove nothing.")
    log.warning(f"WARNING: {warning}")
    return [warning]


def _tutorial(name: str) -> dict[str, str | None]:
    spec = get_spec(name) if name in list_models() else None
    return {"tutorial_result": spec.tutorial_result if spec else None,
            "tutorial_dataset": spec.dataset if spec else None}


def native_row_name(active_providers: Sequence[str]) -> str:
    """The native row's name: the host's ISA class on the CPU, else the accelerator's provider."""
    primary = active_providers[0]
    if primary == "CPUExecutionProvider":
        return host_isa()
    return primary.removesuffix("ExecutionProvider").lower()


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
