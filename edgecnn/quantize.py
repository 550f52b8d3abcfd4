"""int8 and fp16 variants of an exported model, through onnxruntime's quantization tools.

- static: QDQ, uint8 activations + int8 weights (U8S8, the fast combination on x86 VNNI),
  per-channel weights, calibrated on training images with the Predictor's preprocessing.
- dynamic: int8 weights of MatMul/Gemm only; dynamic Conv (ConvInteger) measured 4-11x slower
  than fp32 on x86 CPUs, so it is opt-in.
- fp16: float16 weights with float32 inputs/outputs; a GPU format (slower on the CPU provider).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.data import Dataset, load_dataset
from edgecnn.defaults import DEFAULT_CALIBRATION
from edgecnn.errors import EdgeCNNError
from edgecnn.files import check_overwrite, write_bytes
from edgecnn.onnx_metadata import load_proto, read_metadata, set_metadata
from edgecnn.runtime.metadata import ModelInfo, Preprocessing
from edgecnn.variants import VARIANT_FILE

MODES = ("static", "dynamic", "fp16")
VARIANT_NAME = {"static": "int8", "dynamic": "dynint8", "fp16": "fp16"}
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_DYNAMIC_OPS = ("MatMul", "Gemm")
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
    idx = np.sort(np.random.default_rng(seed).choice(len(data.x_train), count, replace=False))
    return data.x_train[idx]


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
    force: bool = False,
) -> list[QuantizeResult]:
    """Write the requested variants of an fp32 edgecnn ONNX model next to it.

    Args:
        model_path: the fp32 ``model.onnx``.
        modes: any of ``static``, ``dynamic``, ``fp16``.
        calibration: number of training images for static calibration.
        method: static calibration method: minmax, entropy or percentile.
        per_channel: per-channel weight scales for static int8.
        dataset: calibration data (default: the dataset stored in the model).
        dynamic_ops: op types quantized dynamically (Conv is allowed but slow on CPUs).
        seed: picks the calibration images.
        force: replace existing variant files that differ.
    """
    modes = list(dict.fromkeys(modes))
    _check_args(modes, method, dynamic_ops)
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
    images = None
    if "static" in modes:
        data = dataset if isinstance(dataset, Dataset) else load_dataset(
            dataset or info.dataset or "", image_size=info.input_shape[:2]
        )
        images = calibration_images(data, calibration, seed)

    results = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-quant-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        if {"static", "dynamic"} & set(modes):
            preprocess_for_quantization(model_path, pre)
        for mode in modes:
            log.info(f"Quantizing {model_path.name}: {mode}")
            out = Path(tmp) / VARIANT_FILE[mode]
            if mode == "static":
                settings = _static(pre, out, images, info, method, per_channel)
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
    return results


def preprocess_for_quantization(model_path: Path, out: Path) -> None:
    """onnxruntime's recommended pre-processing: symbolic shape inference + graph optimisation."""
    quant = _quantization_module()
    quant.quant_pre_process(str(model_path), str(out), skip_symbolic_shape=False)


def input_name(model_path: Path) -> str:
    """The name of a model file's (first) input."""
    return load_proto(model_path).graph.input[0].name


def _static(pre: Path, out: Path, images, info: ModelInfo, method, per_channel) -> dict:
    quant = _quantization_module()
    reader = make_reader(images, info.preprocessing, input_name(pre))
    quant.quantize_static(
        str(pre), str(out), reader,
        quant_format=quant.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=quant.QuantType.QUInt8,
        weight_type=quant.QuantType.QInt8,
        calibrate_method={
            "minmax": quant.CalibrationMethod.MinMax,
            "entropy": quant.CalibrationMethod.Entropy,
            "percentile": quant.CalibrationMethod.Percentile,
        }[method],
    )
    return {
        "mode": "static", "format": "QDQ", "activations": "uint8", "weights": "int8",
        "per_channel": per_channel, "method": method, "calibration_images": int(len(images)),
        "calibration_split": "train",
    }


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
