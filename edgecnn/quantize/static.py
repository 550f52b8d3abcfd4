"""One static int8 quantization in progress: what it calibrates on and is judged against, so
that the scheme search (:mod:`edgecnn.quantize.quantize`) and the speed search
(:mod:`edgecnn.quantize.int8_speed`) write and gate candidate files the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.accuracy.gates import Gates
from edgecnn.errors import EdgeCNNError, one_line
from edgecnn.export.onnx_metadata import load_proto
from edgecnn.names import Name
from edgecnn.quantize import int8_scheme
from edgecnn.quantize.bias_correction import correct_biases
from edgecnn.quantize.calibrate import input_name, make_reader, quantization_module
from edgecnn.quantize.rewrites import gemm_float_outputs
from edgecnn.runtime.metadata import ModelInfo


class Method(Name):
    """How static int8 calibrates its activation ranges (onnxruntime's CalibrationMethod)."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class StaticRun:
    """A pre-processed float graph, its calibration images (training split), the held-out
    training images and labels a candidate is judged on with fp32's answers to them, the CPU
    classes it is for and the gates it must hold there; with ``bias_correction``, each file it
    writes has its biases corrected (:mod:`edgecnn.quantize.bias_correction`)."""

    graph: Path
    info: ModelInfo
    calibration: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    fp32_probs: np.ndarray
    isas: list[str]
    gates: Gates
    method: str = "minmax"
    per_channel: bool = True
    bias_correction: bool = False

    def write(self, scheme: int8_scheme.Scheme, float_nodes: list[str], out: Path) -> None:
        """The QDQ int8 file of ``scheme`` with ``float_nodes`` kept float, at ``out`` (a scratch
        file: the kept variant is written atomically later)."""
        quant = quantization_module()
        try:
            quant.quantize_static(
                str(self.graph), str(out),
                make_reader(self.calibration, self.info, input_name(self.graph)),
                quant_format=quant.QuantFormat.QDQ,
                per_channel=self.per_channel,
                nodes_to_exclude=list(float_nodes),
                calibrate_method={
                    Method.MINMAX: quant.CalibrationMethod.MinMax,
                    Method.ENTROPY: quant.CalibrationMethod.Entropy,
                    Method.PERCENTILE: quant.CalibrationMethod.Percentile,
                }[Method(self.method)],
                **int8_scheme.static_options(scheme, quant),
            )
        except Exception as exc:  # onnxruntime's calibrators raise bare ValueErrors and worse
            raise EdgeCNNError(
                f"Static int8 quantization ({self.method} calibration) failed: {one_line(exc)}"
            ) from exc
        model = load_proto(out)
        rewritten = gemm_float_outputs(model, float_nodes)
        if self.bias_correction:
            rewritten += correct_biases(model, self.graph, self.info.feed(self.calibration))
        if rewritten:
            out.write_bytes(model.SerializeToString())

    def gate(self, scheme: int8_scheme.Scheme, path: Path) -> int8_scheme.Trial:
        """``path`` judged against fp32 on every class of the run (see :func:`int8_scheme.check`)."""
        return int8_scheme.check(scheme, path, self.images, self.labels, self.fp32_probs, self.isas, self.gates)
