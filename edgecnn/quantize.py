"""int8 and fp16 variants of an exported model, through onnxruntime's quantization tools.

- static: QDQ, uint8 activations, per-channel weights, calibrated on training images with the
  Predictor's preprocessing; the weight scheme is chosen by measurement on each instruction-set
  class the file is for (:mod:`edgecnn.int8_scheme`).
- dynamic: int8 weights of MatMul/Gemm only; dynamic Conv (ConvInteger) measured 4-11x slower
  than fp32 on x86 CPUs, so it is opt-in.
- fp16: float16 weights with float32 inputs/outputs; a GPU format (slower on the CPU provider).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn import int8_scheme
from edgecnn._optional import require
from edgecnn.data import Dataset, load_dataset
from edgecnn.defaults import DEFAULT_CALIBRATION
from edgecnn.errors import EdgeCNNError, GateFailedError
from edgecnn.files import check_overwrite, temporary_folder, write_bytes
from edgecnn.gates import Gates
from edgecnn.int8_scheme import SCHEMES
from edgecnn.onnx_metadata import load_proto, read_metadata, set_metadata
from edgecnn.runtime.isa import parse_isa_list
from edgecnn.runtime.metadata import ModelInfo, Preprocessing
from edgecnn.variants import VARIANT_FILE

MODES = ("static", "dynamic", "fp16")
VARIANT_NAME = {"static": "int8", "dynamic": "dynint8", "fp16": "fp16"}
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_DYNAMIC_OPS = ("MatMul", "Gemm")
SELECTION_IMAGES = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeResult:
    mode: str
    path: Path
    size_bytes: int
    written: bool


def _quantization_module() -> Any:
    require("onnx", "Quantization")
    require("sympy", "Quantization's pre-processing (symbolic shape inference)")
    return require("onnxruntime.quantization", "Quantization")


def calibration_images(data: Dataset, count: int, seed: int = 0, split: str = "train") -> np.ndarray:
    """``count`` training images drawn reproducibly; the test split is refused.

    Calibrating on test images would leak them into the model and make validation dishonest.
    """
    if split != "train":
        raise EdgeCNNError(
            f"Calibration must use the training split, not '{split}': the test split is kept "
            "for validation."
        )
    if count < 1:
        raise EdgeCNNError(f"The calibration set needs at least 1 image, got {count}.")
    if count > len(data.x_train):
        raise EdgeCNNError(
            f"{count} calibration images are more than the {len(data.x_train)} training images of "
            f"'{data.name}'."
        )
    return data.x_train[_calibration_indices(len(data.x_train), count, seed)]


def _calibration_indices(n: int, count: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, count, replace=False))


def selection_images(
    data: Dataset, calibration: int, count: int = SELECTION_IMAGES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled training images outside the calibration draw, for choosing the int8 scheme.

    Neither calibration images (the scheme was fitted to them) nor test images (kept for
    validation) would give an honest choice.
    """
    rest = np.setdiff1d(np.arange(len(data.x_train)),
                        _calibration_indices(len(data.x_train), calibration, seed))
    if len(rest) == 0:
        raise EdgeCNNError(
            f"All {len(data.x_train)} training images of '{data.name}' are used for calibration; "
            "none are left to choose the int8 scheme with. Calibrate on fewer images."
        )
    idx = np.sort(np.random.default_rng(seed + 1).choice(rest, min(count, len(rest)), replace=False))
    return data.x_train[idx], data.y_train[idx]


def make_reader(
    images: np.ndarray, preprocessing: Preprocessing, input_name: str, batch: int = 32
) -> Any:
    """A CalibrationDataReader feeding ``images`` with exactly the Predictor's preprocessing."""
    quant = _quantization_module()

    class ImageCalibrationReader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                [preprocessing.apply(images[i : i + batch]) for i in range(0, len(images), batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: chunk}

    return ImageCalibrationReader()


def _check_args(modes: Sequence[str], method: str, dynamic_ops: Sequence[str]) -> None:
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise EdgeCNNError(f"Unknown quantization mode {unknown or modes}; use {', '.join(MODES)} or all.")
    if method not in METHODS:
        raise EdgeCNNError(f"Unknown calibration method '{method}'; use {', '.join(METHODS)}.")
    if not dynamic_ops:
        raise EdgeCNNError("Dynamic quantization needs at least one op type.")


def quantize(
    model_path: str | Path,
    *,
    modes: Iterable[str] = MODES,
    calibration: int = DEFAULT_CALIBRATION,
    method: str = "minmax",
    per_channel: bool = True,
    dataset: str | Dataset | None = None,
    dynamic_ops: Sequence[str] = DEFAULT_DYNAMIC_OPS,
    seed: int = 0,
    isa: str | Sequence[str] = "all",
    schemes: Sequence[str] = tuple(SCHEMES),
    max_drop: float = Gates().int8_max_accuracy_drop,
    force: bool = False,
) -> list[QuantizeResult]:
    """Write the requested variants of an fp32 edgecnn ONNX model next to it.

    Static int8 tries ``schemes`` in order and keeps the first that loses at most ``max_drop``
    accuracy against fp32 on held-out training images on every class in ``isa`` that can be run
    here (see :mod:`edgecnn.int8_scheme`). When none holds, no int8 file is written and
    GateFailedError is raised after the other variants are written.

    Args:
        model_path: the fp32 ``model.onnx``.
        modes: any of ``static``, ``dynamic``, ``fp16``.
        calibration: number of training images for static calibration.
        method: static calibration method: minmax, entropy or percentile.
        per_channel: per-channel weight scales for static int8.
        dataset: calibration data (default: the dataset stored in the model).
        dynamic_ops: op types quantized dynamically (Conv is allowed but slow on CPUs).
        seed: picks the calibration images.
        isa: instruction-set classes the int8 file is for: "all", "host", a list or a
            comma-separated string (see :mod:`edgecnn.runtime.isa`).
        schemes: static int8 schemes to try, in order (names from ``int8_scheme.SCHEMES``).
        max_drop: the int8 gate, as a fraction.
        force: replace existing variant files that differ.
    """
    modes = list(dict.fromkeys(modes))
    _check_args(modes, method, dynamic_ops)
    unknown = [name for name in schemes if name not in SCHEMES]
    if unknown or not schemes:
        raise EdgeCNNError(f"Unknown int8 scheme {unknown or list(schemes)}; use {', '.join(SCHEMES)}.")
    isas = parse_isa_list(isa)
    model_path = Path(model_path)
    if not model_path.is_file():
        raise EdgeCNNError(f"Model file not found: {model_path}")
    onnx = require("onnx", "Quantization")
    try:
        info = read_metadata(model_path)
        onnx.checker.check_model(str(model_path))
    except EdgeCNNError:
        raise
    except Exception as exc:  # protobuf and checker errors for non-ONNX input
        raise EdgeCNNError(f"{model_path} is not a valid ONNX model: {str(exc)[:200]}") from exc
    if info is None:
        raise EdgeCNNError(f"{model_path} has no edgecnn metadata; export it with edgecnn first.")
    if info.variant != "fp32":
        raise EdgeCNNError(f"{model_path} is already a {info.variant} variant; quantize the fp32 model.")
    data = None
    if "static" in modes:
        data = dataset if isinstance(dataset, Dataset) else load_dataset(
            dataset or info.dataset or "", image_size=info.input_shape[:2]
        )
        calibration_images(data, calibration, seed)  # checks the count before any work

    results, failure = [], None
    with temporary_folder(model_path.parent, "quant") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        if {"static", "dynamic"} & set(modes):
            preprocess_for_quantization(model_path, pre)
        for mode in modes:
            log.info(f"Quantizing {model_path.name}: {mode}")
            out = Path(tmp) / VARIANT_FILE[mode]
            if mode == "static":
                settings, failure = _static(model_path, pre, out, data, info, isas, schemes,
                                            StaticOptions(calibration, seed, method, per_channel,
                                                          max_drop))
                if failure:
                    log.warning(f"No int8 file written: {failure}")
                    continue
            elif mode == "dynamic":
                settings = _dynamic(pre, out, dynamic_ops)
            else:
                settings = _fp16(model_path, out)
            proto = onnx.load(str(out))
            set_metadata(proto, info.replace(variant=VARIANT_NAME[mode], quantization=settings))
            onnx.checker.check_model(proto)
            data_bytes = proto.SerializeToString()
            dest = model_path.parent / VARIANT_FILE[mode]
            written = check_overwrite(dest, data_bytes, force)
            if written:
                write_bytes(dest, data_bytes)
            results.append(QuantizeResult(mode, dest, len(data_bytes), written))
    if failure:
        raise GateFailedError(f"no static int8 scheme holds the gate: {failure}")
    return results


def preprocess_for_quantization(model_path: Path, out: Path) -> None:
    """onnxruntime's recommended pre-processing: symbolic shape inference + graph optimisation.

    Runs with ``out``'s folder as the working directory: when shape inference gives up it saves
    ``sym_shape_infer_temp.onnx`` into the current one, which must not be the user's.
    """
    quant = _quantization_module()
    source, target, here = model_path.resolve(), out.resolve(), os.getcwd()
    os.chdir(target.parent)
    try:
        quant.quant_pre_process(str(source), str(target), skip_symbolic_shape=False)
    except Exception as exc:  # onnxruntime raises bare Exception for graphs it cannot analyse
        raise EdgeCNNError(
            f"onnxruntime's quantization pre-processing cannot handle {model_path.name}: "
            f"{str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__}"
        ) from exc
    finally:
        os.chdir(here)


def input_name(model_path: Path) -> str:
    """The name of a model file's (first) input."""
    return load_proto(model_path).graph.input[0].name


@dataclass(frozen=True)
class StaticOptions:
    """How static int8 is calibrated and judged."""

    calibration: int
    seed: int
    method: str
    per_channel: bool
    max_drop: float


def _static(
    fp32: Path, pre: Path, out: Path, data: Dataset, info: ModelInfo, isas: list[str],
    schemes: Sequence[str], options: StaticOptions,
) -> tuple[dict[str, Any], str | None]:
    """Quantize with each scheme in turn until one holds on every class; (settings, failure)."""
    from edgecnn.runtime import Predictor

    quant = _quantization_module()
    calib = calibration_images(data, options.calibration, options.seed)
    images, labels = selection_images(data, options.calibration, seed=options.seed)
    fp32_probs = Predictor(fp32, providers="cpu").predict(images).probabilities
    rejected = []
    for name in schemes:
        scheme = SCHEMES[name]
        log.info(f"  static int8 scheme {name} on {', '.join(isas)}")
        quant.quantize_static(
            str(pre), str(out), make_reader(calib, info.preprocessing, input_name(pre)),
            quant_format=quant.QuantFormat.QDQ,
            per_channel=options.per_channel,
            calibrate_method={
                "minmax": quant.CalibrationMethod.MinMax,
                "entropy": quant.CalibrationMethod.Entropy,
                "percentile": quant.CalibrationMethod.Percentile,
            }[options.method],
            **int8_scheme.static_options(scheme, quant),
        )
        trial = int8_scheme.check(scheme, out, images, labels, fp32_probs, isas, options.max_drop)
        if trial.passed:
            settings = {
                "mode": "static", "format": "QDQ", "activations": "uint8",
                "weights": scheme.weights, "reduce_range": scheme.reduce_range,
                "per_channel": options.per_channel, "method": options.method,
                "calibration_images": int(len(calib)), "calibration_split": "train",
                "isa": isas, **int8_scheme.summary(trial, rejected, len(labels)),
            }
            return settings, None
        log.info(f"    {name} rejected: {trial.failure}")
        rejected.append(trial)
    return {}, "; ".join(f"{t.scheme} {t.failure}" for t in rejected)


def _dynamic(pre: Path, out: Path, ops: Sequence[str]) -> dict:
    quant = _quantization_module()
    quant.quantize_dynamic(
        str(pre), str(out), op_types_to_quantize=list(ops), weight_type=quant.QuantType.QInt8
    )
    settings: dict[str, Any] = {"mode": "dynamic", "weights": "int8", "op_types": list(ops)}
    if "Conv" in ops:
        settings["warning"] = (
            "Conv quantized dynamically (ConvInteger): measured 4-11x slower than fp32 on x86 CPUs."
        )
    return settings


def _fp16(model_path: Path, out: Path) -> dict:
    onnx = require("onnx", "fp16 conversion")
    float16 = require("onnxconverter_common.float16", "fp16 conversion")
    with warnings.catch_warnings():
        # It warns for every tiny weight clipped to fp16's range: expected, and checked by
        # validation's agreement gate rather than by reading warnings.
        warnings.simplefilter("ignore", UserWarning)
        model = float16.convert_float_to_float16(onnx.load(str(model_path)), keep_io_types=True)
    onnx.save(model, str(out))
    return {"mode": "fp16", "weights": "float16", "io": "float32", "note": "a GPU format; "
            "slower than fp32 on the CPU provider"}
