"""What an exported model carries about itself, stored as JSON in the ONNX metadata.

One key (``edgecnn``) holds everything a Predictor needs: class names, input layout and
preprocessing, so an app needs the ``.onnx`` file and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError

METADATA_KEY = "edgecnn"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Preprocessing:
    """How raw uint8 pixels become model input: ``x * scale + offset`` as float32.

    ``value_range`` is the range of model-ready float input; float images outside it are
    refused because they were almost certainly not preprocessed (e.g. 0-255 floats given to a
    model trained on 0-1).
    """

    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> float32 model input; training, calibration and the Predictor share it."""
        out = np.multiply(pixels, np.float32(self.scale), dtype=np.float32)
        if self.offset:
            out += np.float32(self.offset)
        return out

    @property
    def value_range(self) -> tuple[float, float]:
        ends = (self.offset, 255.0 * self.scale + self.offset)
        return (min(ends), max(ends))


@dataclass(frozen=True)
class ModelInfo:
    """Everything about an exported model that is not its graph."""

    name: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    output: str = "softmax"
    layout: str = "NHWC"
    dataset: str | None = None
    keras_sha256: str | None = None
    edgecnn_version: str | None = None
    variant: str = "fp32"
    quantization: dict[str, Any] | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["schema"] = SCHEMA_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        try:
            data = json.loads(text)
            data.pop("schema", None)
            data["class_names"] = tuple(data["class_names"])
            data["input_shape"] = tuple(data["input_shape"])
            data["preprocessing"] = Preprocessing(**data.get("preprocessing", {}))
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise EdgeCNNError(f"Malformed edgecnn metadata in the model: {exc}") from exc

    def replace(self, **changes: Any) -> ModelInfo:
        values = {**asdict(self), "preprocessing": self.preprocessing, **changes}
        return ModelInfo(**values)
