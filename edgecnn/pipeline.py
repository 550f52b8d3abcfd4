"""The whole pipeline as one call: export (training first if needed) -> quantize -> validate.

``edgecnn export`` is a thin wrapper around :func:`run_pipeline`; scripts call it directly.
Progress goes to the ``edgecnn`` logger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn.accuracy.gates import Gates
from edgecnn.benchmark.quick import time_for_shipping
from edgecnn.defaults import (
    DEFAULT_CALIBRATION,
    DEFAULT_MODEL,
    DEFAULT_OPSET,
    EMULATED_IMAGES,
    REQUIRED_VARIANTS,
)
from edgecnn.errors import EdgeCNNError, GateFailedError
from edgecnn.export.convert import ExportResult, export, output_folder
from edgecnn.quantize.quantize import QuantizeResult, quantize
from edgecnn.results.bench import BenchResult
from edgecnn.results.page import write_page
from edgecnn.results.report import REPORT_HTML, REPORT_JSON, REPORT_MD, Report
from edgecnn.runtime.metadata import Preprocessing
from edgecnn.store.files import folder_lock, removed_if_left_empty, staged
from edgecnn.validate.run import validate
from edgecnn.validate.verdict import check_required


@dataclass(frozen=True)
class PipelineResult:
    """What each stage produced; ``report`` is None when validation was skipped, ``timing``
    when the variants were not timed (see :mod:`edgecnn.benchmark.quick`)."""

    export: ExportResult
    variants: list[QuantizeResult]
    report: Report | None
    timing: BenchResult | None = None

    @property
    def passed(self) -> bool:
        """False only when validation ran and its verdict found a failure."""
        return self.report is None or self.report.passed


def run_pipeline(
    model: str = DEFAULT_MODEL,
    *,
    out_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    quantize_variants: bool = True,
    validate_variants: bool = True,
    retrain: bool = False,
    train_options: dict[str, Any] | None = None,
    calibration: int = DEFAULT_CALIBRATION,
    seed: int = 0,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    dataset: str | None = None,
    gates: Gates = Gates(),
    isa: str | Sequence[str] = "all",
    output: str | None = None,
    output_name: str | None = None,
    uint8_input: bool | None = None,
    input_shape: tuple[int, ...] | None = None,
    require: str | Sequence[str] = REQUIRED_VARIANTS,
    emulated_images: int = EMULATED_IMAGES,
    unsafe: bool = False,
    force: bool = False,
    time_variants: bool = True,
) -> PipelineResult:
    """Export ``model`` (a zoo name or a ``.keras`` path), write its variants and validate them.

    The arguments are those of :func:`edgecnn.export.convert.export`, :func:`edgecnn.quantize.quantize.quantize`
    and :func:`edgecnn.validate.run.validate`; ``dataset`` serves training, calibration and
    validation alike, and ``isa`` names the instruction-set classes the int8 scheme must hold on
    and validation measures (those that cannot be run here are reported as such). When no int8
    scheme holds, the run fails if int8 is in ``require`` (the default); otherwise it goes on
    without an int8 file and the result says why. ``time_variants`` times the validated
    variants at batch 1 and 64 on one thread here, so that the result (and the report page) name the
    fastest file that passes on this CPU.
    """
    require = check_required(require)  # before any training
    target = output_folder(model, out_dir)
    # Written as a whole new set beside the folder, which it replaces in one step at the end:
    # an interrupted export leaves the old set (variants, model.keras, report, page) untouched.
    no_int8 = None
    with removed_if_left_empty(target), folder_lock(target) as final, staged(final) as folder, \
            _named_as(folder, final):
        exported = export(
            model, out_dir=folder, opset=opset, force=force, retrain=retrain, unsafe=unsafe,
            class_names=class_names, preprocessing=preprocessing,
            dataset=dataset, output=output, output_name=output_name, input_shape=input_shape,
            uint8_input=uint8_input, train_options={**(train_options or {}), "seed": seed},
            needs_data=quantize_variants or validate_variants,
        )
        try:
            variants = (
                quantize(exported.onnx_path, calibration=calibration, dataset=dataset, seed=seed,
                         isa=isa, gates=gates, force=force, strict="int8" in require)
                if quantize_variants else []
            )
        except GateFailedError as exc:
            # A finished run that failed loudly: its files are kept, so that the user can look
            # at them or validate without int8, but not the old report, which describes others.
            for name in (REPORT_JSON, REPORT_MD, REPORT_HTML):
                (folder / name).unlink(missing_ok=True)
            no_int8, variants = exc, []
        report = (
            validate(exported.onnx_path.parent, dataset=dataset, gates=gates, isa=isa,
                     require=require, emulated_images=emulated_images, unsafe=unsafe)
            if validate_variants and no_int8 is None else None
        )
        timing = None
        if report is not None and time_variants:
            timing = time_for_shipping(folder, final)
            write_page(folder, report)  # now with the latency it recommends by
    if no_int8 is not None:
        raise no_int8
    return PipelineResult(_moved(exported, folder, final), [_moved(q, folder, final) for q in variants],
                          report, timing)


@contextlib.contextmanager
def _named_as(stage: Path, final: Path) -> Iterator[None]:
    """Errors that name a file of the staged set name it where the user will look for it."""
    try:
        yield
    except EdgeCNNError as exc:
        message = str(exc).replace(str(stage), str(final))
        if message == str(exc):
            raise
        raise type(exc)(message) from exc


def _moved(result: Any, stage: Path, final: Path) -> Any:
    """A stage's result with its paths in the final folder, where the files now are."""
    changes = {k: final / v.relative_to(stage) for k, v in vars(result).items()
               if isinstance(v, Path) and v.is_relative_to(stage)}
    return replace(result, **changes)
