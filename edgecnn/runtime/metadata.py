"""What an exported model carries about itself, stored as JSON in the ONNX metadata.

One key (``edgecnn``) holds everything a Predictor needs: class names, input layout and
preprocessing, so an app needs the ``.onnx`` file and nothing else.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.outputs import OUTPUT_KINDS

METADATA_KEY = "edgecnn"
SCHEMA_VERSION = 1
INPUT_DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class Preprocessing:
    """How raw uint8 pixels become model input: ``x * scale + offset`` as float32.

    ``value_range`` is the range of model-ready float input; float images outside it are
    refused because they were almost certainly not preprocessed (e.g. 0-255 floats given to a
    model trained on 0-1).
    """

    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        # A NaN, infinite or zero scale makes every image the same input: a wrong answer, exit 0.
        for name, value in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EdgeCNNError(f"Preprocessing {name} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise EdgeCNNError(f"Preprocessing {name} must be finite, got {value!r}.")
        if not 0 < self.scale <= 1e3:
            raise EdgeCNNError(
                f"Preprocessing scale must be positive and at most 1000, got {self.scale!r} "
                "(input = pixel * scale + offset)."
            )
        if abs(self.offset) > 1e6:
            raise EdgeCNNError(f"Preprocessing offset {self.offset!r} is out of range.")

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
    # The Keras model returns logits; the exported graph appends ``output`` (softmax/sigmoid).
    keras_logits: bool = False
    # Where a user's .keras file came from (zoo models: None).
    keras_source: str | None = None
    # What the Keras model computes its layers in: float16 for a mixed-precision model, whose
    # exact export then differs from float32 arithmetic by half-precision rounding.
    compute: str = "float32"
    # Of a Keras model with several outputs, the one exported (the class head).
    keras_output: str | None = None
    # What the ONNX file reads: preprocessed float32, or uint8 pixels (camera bytes) with its
    # preprocessing inside the graph.
    input_dtype: str = "float32"

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not self.name:
            problems.append(f"name must be a non-empty string, got {self.name!r}")
        if len(self.input_shape) != 3 or any(d < 1 for d in self.input_shape):
            problems.append(f"input_shape must be (H, W, C) of positive sizes, got {self.input_shape}")
        if self.output not in OUTPUT_KINDS:
            problems.append(f"output must be one of {', '.join(OUTPUT_KINDS)}, got {self.output!r}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            problems.append(f"class_names must be 2 or more distinct names, got {list(self.class_names)}")
        elif not all(isinstance(n, str) and n.strip() for n in self.class_names):
            # an empty name makes a winning answer look like no answer (label "", error None)
            problems.append(f"class names must be non-empty strings, got {list(self.class_names)}")
        if self.output == "sigmoid" and len(self.class_names) != 2:
            problems.append(f"a sigmoid output has 2 classes, not {len(self.class_names)}")
        if self.layout != "NHWC":
            problems.append(f"layout must be NHWC, got {self.layout!r}")
        if self.quantization is not None and not isinstance(self.quantization, dict):
            problems.append("quantization must be an object")
        if self.input_dtype not in INPUT_DTYPES:
            problems.append(f"input_dtype must be one of {', '.join(INPUT_DTYPES)}, got {self.input_dtype!r}")
        if self.compute not in ("float32", "float16"):
            problems.append(f"compute must be float32 or float16, got {self.compute!r}")
        if not isinstance(self.keras_logits, bool):
            problems.append(f"keras_logits must be true or false, got {self.keras_logits!r}")
        for key in ("dataset", "keras_sha256", "edgecnn_version", "variant", "keras_source", "keras_output"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                problems.append(f"{key} must be a string, got {value!r}")
        if problems:
            raise EdgeCNNError("Invalid edgecnn metadata: " + "; ".join(problems) + ".")

    def check_graph(self, model: str, input_dims: list[Any], output_dims: list[Any]) -> None:
        """Refuse metadata that disagrees with the graph it describes (dims as onnxruntime
        reports them: ints, or names for dynamic ones)."""
        graph_image = tuple(input_dims[1:])
        if len(input_dims) != 4 or any(
            isinstance(g, int) and g != m for g, m in zip(graph_image, self.input_shape)
        ):
            raise EdgeCNNError(
                f"{model}: its metadata says input (N, {', '.join(map(str, self.input_shape))}) "
                f"but the graph's input is {list(input_dims)}."
            )
        width = output_dims[-1] if output_dims else None
        expected = 1 if self.output == "sigmoid" else len(self.class_names)
        if len(output_dims) != 2 or (isinstance(width, int) and width != expected):
            raise EdgeCNNError(
                f"{model}: its metadata says a {self.output} output over "
                f"{len(self.class_names)} classes ({expected} column(s)), but the graph's output "
                f"is {list(output_dims)}."
            )

    @property
    def reads_pixels(self) -> bool:
        """Whether the file's input is uint8 pixels (its preprocessing is in the graph)."""
        return self.input_dtype == "uint8"

    def feed(self, pixels: np.ndarray) -> np.ndarray:
        """What the ONNX file reads for uint8 ``pixels``: the pixels themselves when its input is
        uint8, else the preprocessed floats: what calibration and timing feed (the Predictor
        does the same with uint8 images, and checks float ones)."""
        return np.ascontiguousarray(pixels, np.uint8) if self.reads_pixels else self.preprocessing.apply(pixels)

    def to_json(self) -> str:
        data = asdict(self)
        data["schema"] = SCHEMA_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        """Parse and check stored metadata: a model file is untrusted input."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EdgeCNNError(f"Malformed edgecnn metadata in the model: {exc}") from exc
        if not isinstance(data, dict):
            raise EdgeCNNError(
                f"Malformed edgecnn metadata in the model: expected an object, got {type(data).__name__}."
            )
        schema = data.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:  # a newer edgecnn's file: its fields may mean other things
            raise EdgeCNNError(
                f"The model's edgecnn metadata is schema {str(schema)[:20]}; this edgecnn reads "
                f"schema {SCHEMA_VERSION}: upgrade edgecnn (pip install -U edgecnn) to run it."
            )
        unknown = set(data) - set(cls.__dataclass_fields__)
        missing = {"name", "class_names", "input_shape"} - set(data)
        if unknown or missing:
            raise EdgeCNNError(
                "Malformed edgecnn metadata in the model: "
                + (f"unknown keys {sorted(unknown)}" if unknown else f"missing {sorted(missing)}")
                + "."
            )
        preprocessing = data.get("preprocessing", {})
        if not isinstance(preprocessing, dict):
            raise EdgeCNNError("Malformed edgecnn metadata in the model: preprocessing must be an object.")
        data["class_names"] = _tuple_of(data["class_names"], str, "class_names")
        data["input_shape"] = _tuple_of(data["input_shape"], int, "input_shape")
        try:
            data["preprocessing"] = Preprocessing(**preprocessing)
        except TypeError as exc:
            raise EdgeCNNError(f"Malformed edgecnn metadata in the model: preprocessing: {exc}") from exc
        return cls(**data)

    def replace(self, **changes: Any) -> ModelInfo:
        values = {**asdict(self), "preprocessing": self.preprocessing, **changes}
        return ModelInfo(**values)


def _tuple_of(value: Any, kind: type, key: str) -> tuple:
    """A JSON list of ``kind`` as a tuple; anything else (a string, null, mixed types) refused."""
    if not isinstance(value, list) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise EdgeCNNError(
            f"Malformed edgecnn metadata in the model: {key} must be a list of "
            f"{kind.__name__}, got {value!r}."
        )
    return tuple(value)
