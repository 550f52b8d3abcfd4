"""Bias correction takes out of each int8 layer's bias the mean shift int8 gives its output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

EXPORTED = Path(__file__).resolve().parents[1] / "exported" / "fashion-cnn"


def _layer_shifts(int8: Path, fp32: Path, feed: np.ndarray) -> np.ndarray:
    """|mean int8 output - mean fp32 output| per channel of every Conv / Gemm, concatenated."""
    import onnx
    import onnxruntime as ort

    def means(path: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
        model = onnx.load(str(path))
        outputs = {n.name: n.output[0] for n in model.graph.node if n.name in names}
        del model.graph.output[:]
        model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(o) for o in outputs.values())
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        values = session.run(list(outputs.values()), {session.get_inputs()[0].name: feed})
        return {name: v.mean(axis=tuple(a for a in range(v.ndim) if a != 1)) for name, v in zip(outputs, values)}

    layers = {n.name: n.op_type for n in onnx_nodes(fp32) if n.op_type in ("Conv", "Gemm")}
    quantized, reference = means(int8, layers), means(fp32, layers)
    assert len(quantized) == len(layers) >= 3
    return np.concatenate([np.abs(quantized[n] - reference[n]) for n in sorted(layers)])


def onnx_nodes(path: Path):
    import onnx

    return onnx.load(str(path)).graph.node


@pytest.fixture(scope="module")
def corrected(tmp_path_factory, fashion_small):
    """fashion-cnn's graph as the quantizer reads it, and its int8 file (every conv and the dense
    layer in int8) without and with bias correction."""
    from edgecnn.accuracy.gates import Gates
    from edgecnn.quantize.calibrate import calibration_images, preprocess_for_quantization, selection_images
    from edgecnn.quantize.int8_scheme import SCHEMES
    from edgecnn.quantize.rewrites import float_softmax_outputs
    from edgecnn.quantize.static import StaticRun
    from edgecnn.runtime import Predictor

    tmp = tmp_path_factory.mktemp("bias")
    fp32 = EXPORTED / "model.onnx"
    info = Predictor(fp32).info
    pre = tmp / "pre.onnx"
    preprocess_for_quantization(fp32, pre)
    import onnx

    softmax = float_softmax_outputs(onnx.load(str(pre)))
    calib = calibration_images(fashion_small, 200)
    held, _ = selection_images(fashion_small, 200)
    files = {}
    for corrects in (False, True):
        files[corrects] = tmp / f"int8-{corrects}.onnx"
        StaticRun(pre, info, calib, held, held[:0], np.zeros((0, 10)), [], Gates(),
                  bias_correction=corrects).write(SCHEMES["u8s8-reduce-range"], softmax, files[corrects])
    return pre, files, info.feed(calib[:128]), info.feed(held)


def test_each_layer_is_left_with_no_mean_shift_on_the_images_it_was_measured_on(corrected):
    pre, files, measured, _ = corrected
    before, after = _layer_shifts(files[False], pre, measured), _layer_shifts(files[True], pre, measured)
    # what remains is the bias's own rounding to int32 and float sums: far below the shift it had
    assert after.max() < 0.02 * before.max() and after.mean() < 0.02 * before.mean(), (before.mean(), after.mean())


def test_the_correction_holds_on_images_it_never_saw(corrected):
    pre, files, _, held = corrected
    before, after = _layer_shifts(files[False], pre, held), _layer_shifts(files[True], pre, held)
    assert after.mean() < 0.5 * before.mean(), (before.mean(), after.mean())


def test_the_weights_and_the_scales_are_untouched_only_the_biases_move(corrected):
    import onnx
    from onnx import numpy_helper

    _, files, _, _ = corrected
    plain, fixed = ({t.name: numpy_helper.to_array(t) for t in onnx.load(str(files[c])).graph.initializer}
                    for c in (False, True))
    assert plain.keys() == fixed.keys()
    moved = {name for name in plain if not np.array_equal(plain[name], fixed[name])}
    assert moved and all(plain[name].dtype == np.int32 for name in moved), moved


def test_a_scheme_that_does_not_hold_is_tried_again_with_its_biases_corrected(tmp_path, fashion_small, monkeypatch):
    """The search keeps the plain file where it holds, and tries the corrected one of the same
    scheme next where it does not (here every plain file is made to fail); the model's record
    says which it is."""
    import shutil

    from edgecnn.export.onnx_metadata import read_metadata
    from edgecnn.quantize.quantize import quantize
    from edgecnn.quantize.static import StaticRun

    folder = shutil.copytree(EXPORTED, tmp_path / "fashion-cnn")
    for name in ("model.int8.onnx", "model.dynint8.onnx", "model.fp16.onnx"):
        (folder / name).unlink(missing_ok=True)
    real_gate = StaticRun.gate

    def plain_fails(self, scheme, path):
        trial = real_gate(self, scheme, path)
        if not self.bias_correction:
            trial.failure = "a plain file (test double)"
        return trial

    quantize(folder / "model.onnx", variants=["int8"], dataset=fashion_small, calibration=100, isa="host",
             speed_search=False, auto_exclude=False)
    assert read_metadata(folder / "model.int8.onnx").quantization["bias_correction"] is False
    monkeypatch.setattr(StaticRun, "gate", plain_fails)
    quantize(folder / "model.onnx", variants=["int8"], dataset=fashion_small, calibration=100, isa="host",
             speed_search=False, auto_exclude=False, force=True)
    settings = read_metadata(folder / "model.int8.onnx").quantization
    assert settings["bias_correction"] is True and settings["scheme"] == "u8s8-reduce-range"
    first = settings["rejected_schemes"][0]
    assert first["scheme"] == "u8s8-reduce-range" and not first["bias_corrected"], first
