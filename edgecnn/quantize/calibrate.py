"""What onnxruntime's quantizer is fed: the pre-processed graph and the images it sees.

Calibration images and the held-out images that choose the int8 scheme both come from the
training split, drawn reproducibly and never overlapping; the test split stays for validation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.data import Dataset
from edgecnn.errors import EdgeCNNError, last_line
from edgecnn.export.onnx_metadata import load_proto
from edgecnn.runtime.metadata import ModelInfo

SELECTION_IMAGES = 1000


def quantization_module() -> Any:
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
    images: np.ndarray, info: ModelInfo, input_name: str, batch: int = 32
) -> Any:
    """A CalibrationDataReader feeding ``images`` as the Predictor feeds ``info``'s file
    (preprocessed floats, or the uint8 pixels of a file that reads them).

    All batches have one size (the largest divisor of the image count up to ``batch``): the
    entropy and percentile calibrators stack per-batch results and crash on a short last batch.
    """
    quant = quantization_module()
    batch = max(d for d in range(1, max(1, batch) + 1) if len(images) % d == 0)

    class ImageCalibrationReader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                [info.feed(images[i : i + batch]) for i in range(0, len(images), batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: chunk}

    return ImageCalibrationReader()


def preprocess_for_quantization(model_path: Path, out: Path) -> None:
    """onnxruntime's recommended pre-processing: symbolic shape inference + graph optimisation.

    Runs in a child process whose working directory is ``out``'s folder: when shape inference
    gives up it saves ``sym_shape_infer_temp.onnx`` into the current folder, which must be
    neither the user's nor changed under this process's other threads (a chdir would be both).
    """
    quantization_module()  # a missing package is the one-line install hint, here
    source, target = model_path.resolve(), out.resolve()
    done = subprocess.run([sys.executable, "-c", _PRE_PROCESS, str(source), str(target)],
                          cwd=target.parent, capture_output=True, text=True)
    if done.returncode != 0:  # onnxruntime raises bare Exception for graphs it cannot analyse
        raise EdgeCNNError(
            f"onnxruntime's quantization pre-processing cannot handle {model_path.name}: "
            f"{last_line(done.stderr, f'exit {done.returncode}')}"
        )


_PRE_PROCESS = (
    "import sys\n"
    "from onnxruntime.quantization import quant_pre_process\n"
    "quant_pre_process(sys.argv[1], sys.argv[2], skip_symbolic_shape=False)\n"
)


def input_name(model_path: Path) -> str:
    """The name of a model file's (first) input."""
    return load_proto(model_path).graph.input[0].name
