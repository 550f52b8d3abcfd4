"""Predictor: load an exported ``.onnx`` file and classify images with numpy + onnxruntime only.

A Predictor is safe to share between threads: it holds no per-call state, and onnxruntime's
``InferenceSession.run`` is thread-safe.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError, one_line
from edgecnn.runtime.images import image_batch
from edgecnn.runtime.metadata import METADATA_KEY, ModelInfo, Preprocessing
from edgecnn.runtime.outputs import (
    SUM_TOLERANCE,
    class_count,
    output_kind,
    to_probabilities,
)
from edgecnn.runtime.session import check_threads, load_session, session_options

_FLOAT_KINDS = "f"
# Float input may exceed the model's nominal range by this much (rounding, resampling).
_RANGE_SLACK = 1e-3


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for a batch, with the labels they imply.

    Attributes:
        probabilities: (N, C) float32, each row sums to 1.
        class_names: the model's C class names.
    """

    probabilities: np.ndarray
    class_names: tuple[str, ...]

    @property
    def labels(self) -> np.ndarray:
        """(N,) index of the most probable class."""
        return self.probabilities.argmax(axis=1)

    @property
    def names(self) -> list[str]:
        """Name of the most probable class of each image."""
        return [self.class_names[i] for i in self.labels]

    def top_k(self, k: int = 3) -> list[list[tuple[str, float]]]:
        """The k most probable (class name, probability) pairs of each image, best first."""
        k = max(1, min(k, self.probabilities.shape[1]))
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return [
            [(self.class_names[j], float(row[j])) for j in idx]
            for row, idx in zip(self.probabilities, order)
        ]


class Predictor:
    """Runs an exported edgecnn model.

    Which file: the one ``edgecnn export`` names on its last line and on the report page, the
    fastest that passes every gate on that CPU (fp32 or dynint8 for some graphs, not always int8).

    Args:
        model_path: the ``.onnx`` file.
        providers: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda"``, another alias,
            a comma-separated string or a list in priority order. A provider that is missing or
            fails to start raises EdgeCNNError instead of silently running on the CPU.
        preprocessing: overrides the preprocessing stored in the model; required for ONNX files
            that carry no edgecnn metadata.
        class_names: overrides or supplies class names (defaults to "0", "1", ... without metadata).
        intra_op_threads: threads inside one operator (0 = onnxruntime's default: every core).
            One image at a time runs faster on 1 than on 2 (the hand-off costs more than tiny
            ops save, bench/README.md); batches gain from more.
        inter_op_threads: threads across operators (0 = onnxruntime's default).
        max_batch: larger batches are split into chunks of this size to bound memory.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        providers: str | Sequence[str] = "auto",
        *,
        preprocessing: Preprocessing | None = None,
        class_names: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        max_batch: int = 1024,
    ) -> None:
        self.path = Path(model_path)
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise EdgeCNNError(f"max_batch must be an integer >= 1, got {max_batch!r}.")
        check_threads("intra_op_threads", intra_op_threads)
        check_threads("inter_op_threads", inter_op_threads)
        self.max_batch = max_batch
        self.session = load_session(
            self.path, providers, options=session_options(intra_op_threads, inter_op_threads)
        )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise EdgeCNNError(
                f"{self.path}: expected a model with one image input, got inputs "
                f"{[i.name for i in inputs]}."
            )
        self._input, output = inputs[0], outputs[0]
        self.info = self._read_info(preprocessing, class_names)
        self.info.check_graph(str(self.path), list(self._input.shape), list(output.shape))
        # Cached for the hot path: a batch-1 call takes a fraction of a millisecond. The compiled
        # session's own run, where this onnxruntime has it: InferenceSession.run re-validates the
        # feed in Python on every call (1.2 us of a 12 us shapes-toy call, bench/README.md
        # "Levers") and on a provider failure retries on other providers, a silent fallback this
        # package refuses anyway.
        compiled = getattr(getattr(self.session, "_sess", None), "run", None)
        self._run_session = ((lambda names, feed: compiled(names, feed, None)) if callable(compiled)
                             else self.session.run)
        self._input_name = self._input.name
        self._output_names = [output.name]
        self._output_is_float32 = output.type == "tensor(float)"
        self._sigmoid = self.info.output == "sigmoid"
        self._reads_pixels = self.info.reads_pixels
        self._input_type = np.float16 if self._input.type == "tensor(float16)" else np.float32
        low, high = self.info.preprocessing.value_range
        slack = _RANGE_SLACK * (high - low)
        self._lo, self._hi = low - slack, high + slack

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on, in priority order."""
        return self.session.get_providers()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return self.info.input_shape

    def predict(self, images: np.ndarray) -> Prediction:
        """Classify one image (H,W) / (H,W,C) or a batch (N,H,W) / (N,H,W,C).

        uint8 images get the model's own preprocessing; float images must already be
        preprocessed (e.g. 0-1 for a model trained on pixels / 255), except for a file exported
        with a uint8 input, which reads uint8 pixels only. Batches larger than
        ``max_batch`` are converted and run chunk by chunk, so memory stays bounded.
        """
        batch = self._checked(images)
        if batch.shape[0] <= self.max_batch:
            probs = self._run(self._convert(batch))
        else:
            probs = np.concatenate([
                self._run(self._convert(batch[i : i + self.max_batch]))
                for i in range(0, len(batch), self.max_batch)
            ])
        return Prediction(probs, self.info.class_names)

    __call__ = predict

    def _checked(self, images: np.ndarray) -> np.ndarray:
        """``images`` as an (N,H,W,C) uint8 or float array, or a clear error."""
        # numpy.ma is slow to import (cold start, bench/README.md); unless something imported it,
        # nothing is masked.
        ma = sys.modules.get("numpy.ma")
        if ma is not None and isinstance(images, ma.MaskedArray):
            raise EdgeCNNError(
                "Images are a masked array; its mask would be ignored. Fill the masked pixels "
                "first (images.filled(value)) or pass a plain array."
            )
        if type(images) is not np.ndarray:
            try:
                images = np.asarray(images)
            except (ValueError, TypeError) as exc:
                raise EdgeCNNError(f"Images must be a numpy array; could not convert: {exc}") from exc
        if images.dtype != np.uint8 and images.dtype.kind not in _FLOAT_KINDS:
            raise EdgeCNNError(
                f"Images must be uint8 pixels or preprocessed floats, got dtype {images.dtype}."
            )
        return self._as_batch(images)

    def _convert(self, batch: np.ndarray) -> np.ndarray:
        """uint8 pixels -> preprocessed floats (as they are, for a file that reads pixels);
        floats checked against the model's range."""
        if self._reads_pixels:
            if batch.dtype != np.uint8:
                raise EdgeCNNError(f"{self.path} reads uint8 pixels (its preprocessing is in the graph); "
                                   f"pass uint8 images, not {batch.dtype}.")
            return np.ascontiguousarray(batch)
        if batch.dtype == np.uint8:
            out = self.info.preprocessing.apply(batch)
        else:
            with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, refused below
                out = np.ascontiguousarray(batch, dtype=np.float32)
            low, high = float(out.min()), float(out.max())
            if not (np.isfinite(low) and np.isfinite(high)):
                raise EdgeCNNError("Images contain NaN or infinite values.")
            if low < self._lo or high > self._hi:
                raise EdgeCNNError(
                    f"Float images must already be preprocessed to the model's range "
                    f"[{self.info.preprocessing.value_range[0]:g}, "
                    f"{self.info.preprocessing.value_range[1]:g}], got values in "
                    f"[{low:g}, {high:g}]. Pass uint8 pixels to have them preprocessed."
                )
        return out if self._input_type is np.float32 else out.astype(self._input_type)

    def _as_batch(self, images: np.ndarray) -> np.ndarray:
        return image_batch(images, self.info.input_shape)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            out = self._run_session(self._output_names, {self._input_name: batch})[0]
        except Exception as exc:  # onnxruntime's Fail / RuntimeException / InvalidArgument ...
            raise EdgeCNNError(
                f"Running {self.path} failed: {one_line(exc)}"
            ) from exc
        if self._sigmoid or not self._output_is_float32:
            out = to_probabilities(out, self.info.output)
        # Probabilities or an error: a model whose outputs are not a distribution (logits, a
        # broken graph, NaN) must not be reported as confident answers.
        if len(out) == 1:  # the latency-critical case: a few floats are cheaper in Python
            row = out[0].tolist()
            low, worst = min(row), abs(math.fsum(row) - 1.0)
        else:
            low, worst = out.min(), np.abs(out.sum(axis=1) - 1.0).max()
        if not (low >= 0.0 and worst <= SUM_TOLERANCE):  # NaN fails both comparisons
            raise EdgeCNNError(
                f"{self.path} did not return probabilities (values down to {float(low):.3g}, row "
                f"sums off by up to {float(worst):.3g}); its output is not a {self.info.output} "
                "over the classes, or it produced NaN/inf."
            )
        return out

    def _read_info(
        self, preprocessing: Preprocessing | None, class_names: Sequence[str] | None
    ) -> ModelInfo:
        stored = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if stored is not None:
            info = ModelInfo.from_json(stored)
        else:
            if preprocessing is None:
                raise EdgeCNNError(
                    f"{self.path} carries no edgecnn metadata, so its preprocessing is unknown; "
                    "give it as preprocessing=Preprocessing(scale=..., offset=...)."
                )
            info = self._info_from_graph()
        pixels_in = self._input.type == "tensor(uint8)"
        if stored is None:
            info = info.replace(input_dtype="uint8" if pixels_in else "float32")
        elif pixels_in != info.reads_pixels:
            raise EdgeCNNError(f"{self.path}: its metadata says a {info.input_dtype} input, but the "
                               f"graph's input is {self._input.type}.")
        if preprocessing is not None:
            if info.reads_pixels:
                raise EdgeCNNError(f"{self.path} reads uint8 pixels and preprocesses them in its graph; "
                                   "a preprocessing given here would not be applied.")
            info = info.replace(preprocessing=preprocessing)
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
                raise EdgeCNNError(
                    f"class_names must be a sequence of strings, got {class_names!r}."
                )
            info = info.replace(class_names=tuple(class_names))
        return info

    def _info_from_graph(self) -> ModelInfo:
        shape = self.session.get_inputs()[0].shape
        out_shape = self.session.get_outputs()[0].shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
            raise EdgeCNNError(
                f"{self.path}: expected an NHWC image input with fixed H, W, C; got {shape}."
            )
        classes = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
        if classes is None:
            raise EdgeCNNError(f"{self.path}: cannot tell the number of classes from {out_shape}.")
        names = tuple(str(i) for i in range(class_count(classes)))
        return ModelInfo(
            name=self.path.stem, class_names=names, input_shape=tuple(shape[1:]),
            output=output_kind(classes),
        )
