"""int8 / fp16 variants: what the graphs contain, the accuracy they keep, and bad arguments."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgecnn.errors import EdgeCNNError
from edgecnn.export.onnx_metadata import read_metadata
from edgecnn.quantize.calibrate import calibration_images, make_reader
from edgecnn.quantize.quantize import quantize
from edgecnn.runtime import Predictor, Preprocessing
from edgecnn.runtime.metadata import ModelInfo
from tests.conftest import impossible_gates

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quantized(fashion_export, fashion_small, tmp_path_factory):
    """A copy of the shared export with its variants written beside it. Without the speed search:
    what it keeps in float depends on the CPU's timing (an AVX2 machine may find a Gemm faster in
    float), and these tests assert the graph that accuracy alone gives; the search has its own."""
    folder = shutil.copytree(fashion_export, tmp_path_factory.mktemp("quantized") / "fashion-cnn")
    quantize(folder / "model.onnx", dataset=fashion_small, calibration=200, isa="host", speed_search=False)
    return folder


@pytest.fixture(scope="module")
def variants(quantized, fashion_small):
    results = quantize(quantized / "model.onnx", dataset=fashion_small, calibration=200, isa="host",
                       speed_search=False)
    assert not any(r.written for r in results)  # the same inputs give the same bytes
    return {r.variant: r for r in results}


def _load(path):
    import onnx

    return onnx.load(str(path))


def test_static_int8_is_qdq_with_int8_weights(variants):
    from tests.conftest import op_counts

    model = _load(variants["int8"].path)
    ops = op_counts(model)
    # The second Conv and both Gemm weights plus their activations must be quantized (the first
    # conv reads the image and stays float: next test).
    assert ops["QuantizeLinear"] >= 4 and ops["DequantizeLinear"] >= 7, ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == 3 and len(t.dims) > 1]
    assert len(int8_weights) == 3  # INT8 matrices and kernels (zero points are vectors)
    info = read_metadata(variants["int8"].path)
    assert info.variant == "int8"
    assert info.quantization["activations"] == "uint8" and info.quantization["per_channel"]
    assert info.quantization["calibration_split"] == "train"


def test_image_conv_and_softmax_stay_float_with_the_same_float_answers(variants, fashion_export,
                                                                       fashion_small, tmp_path):
    import onnx

    from edgecnn.quantize.rewrites import float_image_convs

    model = _load(variants["int8"].path)
    producers = {o: n for n in model.graph.node for o in n.output}
    initializers = {t.name: t for t in model.graph.initializer}
    first, second = [n for n in model.graph.node if n.op_type == "Conv"]
    assert initializers[first.input[1]].data_type == 1  # float weights, read directly
    assert producers[second.input[1]].op_type == "DequantizeLinear"  # int8 weights
    assert producers[first.input[0]].op_type == "Reshape"  # the image, never quantized
    pool = next(n for n in model.graph.node if n.op_type == "MaxPool" and n.input[0] == first.output[0])
    relu = next(n for n in model.graph.node if n.input[0] == pool.output[0])
    assert relu.op_type == "Relu"
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    assert producers[softmax.input[0]].op_type == "Gemm"  # float logits, no Q -> DQ pair between
    settings = read_metadata(variants["int8"].path).quantization
    # (the activation by the graph's own name: Keras numbers layers per process, conv2d_1 or conv2d_13)
    assert set(settings["float_nodes"]) == {first.name, pool.name, softmax.name, relu.name}

    probs = Predictor(variants["int8"].path, providers="cpu").predict(fashion_small.x_test).probabilities
    assert np.abs(probs * 256 - np.round(probs * 256)).max() > 0.01  # not uint8 levels
    # Pooling before the activation is exact: the rewritten fp32 graph gives the same floats.
    fp32 = _load(fashion_export / "model.onnx")
    assert len(float_image_convs(fp32)) == 3
    onnx.save(fp32, str(tmp_path / "pooled-first.onnx"))
    original = Predictor(fashion_export / "model.onnx", providers="cpu").predict(fashion_small.x_test)
    rewritten = Predictor(tmp_path / "pooled-first.onnx", providers="cpu").predict(fashion_small.x_test)
    assert np.array_equal(original.probabilities, rewritten.probabilities)


def _int8_nodes(path, op_type):
    """``op_type`` nodes of a QDQ file between a DequantizeLinear and a QuantizeLinear."""
    model = _load(path)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    return [n.name for n in model.graph.node if n.op_type == op_type
            and producers.get(n.input[0]) == "DequantizeLinear" and n.output[0] in quantized]


def _int8_pools(path):
    return _int8_nodes(path, "MaxPool")


def _only_pools_moved_to_float(candidate, best):
    return len(_int8_pools(candidate)) < len(_int8_pools(best)) and all(
        _int8_nodes(candidate, op) == _int8_nodes(best, op) for op in ("Conv", "Gemm"))


@pytest.fixture
def pools_faster_in_float(monkeypatch):
    """The speed search's timing replaced by a rule (the MaxPool alone moved to float halves the
    time, any other change costs 20 %), so that what it does with a measurement can be asserted; what
    the timing measures is a benchmark's business (bench/suite.py). Counts the gate checks."""
    from edgecnn.quantize import int8_scheme, int8_speed

    checks = []
    check = int8_scheme.check
    monkeypatch.setattr(int8_speed, "_ratios", lambda candidate, best, batches: dict.fromkeys(
        batches, 0.5 if _only_pools_moved_to_float(candidate, best) else 1.2))
    monkeypatch.setattr(int8_scheme, "check", lambda *a, **k: checks.append(a[0].name) or check(*a, **k))
    return checks


def test_speed_search_keeps_what_is_timed_faster_gates_it_again_and_a_rerun_keeps_its_choice(
        fashion_copy, fashion_small, pools_faster_in_float):
    model = fashion_copy / "model.onnx"
    [plain] = quantize(model, variants=["int8"], dataset=fashion_small, calibration=200, isa="host",
                       speed_search=False)
    quantized_pools = _int8_pools(plain.path)
    assert quantized_pools and "speed" not in read_metadata(plain.path).quantization
    pools_faster_in_float.clear()
    [result] = quantize(model, variants=["int8"], dataset=fashion_small, calibration=200, isa="host",
                        force=True)
    assert _int8_pools(result.path) == []  # the int8 MaxPool now runs in float
    settings = read_metadata(result.path).quantization
    speed = settings["speed"]
    assert speed["float_types"] == ["MaxPool"] and speed["float_nodes"] == quantized_pools
    assert set(quantized_pools) <= set(settings["float_nodes"]) and speed["int8_nodes"] == []
    assert len(pools_faster_in_float) == 2  # the scheme, then the faster file, both gated
    from edgecnn.store.files import sha256_file

    assert speed["fp32_sha256"] == sha256_file(model)
    again = quantize(model, variants=["int8"], dataset=fashion_small, calibration=200, isa="host")
    assert not again[0].written  # the same choice, so the same bytes, with no new timing


def test_a_faster_file_that_breaks_a_gate_is_not_kept(fashion_copy, fashion_small, monkeypatch,
                                                       pools_faster_in_float):
    from edgecnn.quantize import int8_scheme

    check = int8_scheme.check

    def second_fails(*args, **kwargs):
        trial = check(*args, **kwargs)
        if len(pools_faster_in_float) == 2:
            trial.failure = "a gate broken on purpose"
        return trial

    monkeypatch.setattr(int8_scheme, "check", second_fails)
    [result] = quantize(fashion_copy / "model.onnx", variants=["int8"], dataset=fashion_small,
                        calibration=200, isa="host", force=True)
    assert _int8_pools(result.path)  # the file that holds every gate, as it was
    speed = read_metadata(result.path).quantization["speed"]
    assert speed["float_types"] == [] and speed["float_nodes"] == []


def test_dynamic_int8_leaves_conv_in_float(variants):
    from tests.conftest import op_counts

    ops = op_counts(_load(variants["dynint8"].path))
    assert ops["Conv"] == 2 and "ConvInteger" not in ops
    assert ops["MatMulInteger"] + ops["DynamicQuantizeMatMul"] >= 1, ops


def test_fp16_keeps_float32_io(variants):
    model = _load(variants["fp16"].path)
    assert model.graph.input[0].type.tensor_type.elem_type == 1  # FLOAT
    assert any(t.data_type == 10 for t in model.graph.initializer)  # FLOAT16
    assert variants["fp16"].size_bytes < 0.6 * (variants["fp16"].path.parent / "model.onnx").stat().st_size


def test_variants_stay_close_to_fp32(variants, fashion_export, fashion_small):
    x = fashion_small.x_test
    ref = Predictor(fashion_export / "model.onnx").predict(x).labels
    for mode, result in variants.items():
        agreement = (Predictor(result.path).predict(x).labels == ref).mean()
        assert agreement >= (0.99 if mode == "fp16" else 0.95), (mode, agreement)


def test_dynamic_conv_is_opt_in_and_flagged(fashion_export, tmp_path, fashion_small):
    from tests.conftest import op_counts

    copy = tmp_path / "model.onnx"
    shutil.copy(fashion_export / "model.onnx", copy)
    [result] = quantize(copy, variants=["dynint8"], dynamic_ops=["Conv", "MatMul", "Gemm"])
    assert op_counts(_load(result.path))["ConvInteger"] == 2
    assert "slower" in read_metadata(result.path).quantization["warning"]


def test_calibration_reader_refuses_the_test_split(fashion_small):
    with pytest.raises(EdgeCNNError, match="training split"):
        calibration_images(fashion_small, 10, split="test")
    with pytest.raises(EdgeCNNError, match="more than the 3000 training images"):
        calibration_images(fashion_small, 5000)


def test_calibration_reader_feeds_predictor_preprocessing(fashion_small):
    images = calibration_images(fashion_small, 40, seed=1)
    assert np.array_equal(images, calibration_images(fashion_small, 40, seed=1))
    info = ModelInfo("m", tuple("ab"), images.shape[1:])

    def fed(info: ModelInfo) -> np.ndarray:
        reader, batches = make_reader(images, info, "input", batch=16), []
        while (item := reader.get_next()) is not None:
            batches.append(item["input"])
        # equal batches, at most 16: the histogram calibrators cannot stack a short last one
        assert [len(b) for b in batches] == [10, 10, 10, 10]
        return np.concatenate(batches)

    floats = fed(info)
    np.testing.assert_array_equal(floats, Preprocessing().apply(images))  # the Predictor's own step
    np.testing.assert_allclose(floats, images / 255.0, atol=1e-7)
    pixels = fed(info.replace(input_dtype="uint8"))  # a file that reads pixels is fed them
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, images)


def test_bad_arguments(quantized, tmp_path):
    model = quantized / "model.onnx"
    with pytest.raises(EdgeCNNError, match="Unknown variant"):
        quantize(model, variants=["int4"])
    with pytest.raises(EdgeCNNError, match="Unknown calibration method"):
        quantize(model, method="magic")
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("hello")
    with pytest.raises(EdgeCNNError, match="not a valid ONNX model"):
        quantize(not_onnx)
    with pytest.raises(EdgeCNNError, match="already a int8 variant"):
        quantize(quantized / "model.int8.onnx")


def test_an_optional_variant_that_fails_is_not_for_that_class_and_a_required_one_fails_the_run(
        quantized, tmp_path, monkeypatch):
    """fp16 breaking its gate (made impossible here) marks it 'not for' the class and the run
    passes; required with --require, the same failure is exit 3. (int8 is left out of --require:
    on 300 images of a one-epoch model its per-class gate is one image per class, so whether it
    passes depends on the training seed.)"""
    import json

    from typer.testing import CliRunner

    from edgecnn.accuracy.gates import Gates, Verdict
    from edgecnn.cli.main import app

    judge = Gates.judge

    def fp16_always_fails(self, kind, metrics):  # a test double: an fp16 file that is off
        verdict = judge(self, kind, metrics)
        return Verdict(False, ["made to fail"], verdict.flips) if kind == "fp16" else verdict

    monkeypatch.setattr(Gates, "judge", fp16_always_fails)
    folder = shutil.copytree(quantized, tmp_path / "copy")
    args = ["validate", str(folder), "--limit", "300", "--require", "fp32"]
    optional = CliRunner().invoke(app, args)
    assert optional.exit_code == 0, optional.output
    report = json.loads((folder / "report.json").read_text())
    fp16 = next(v for v in report["variants"] if v["variant"] == "fp16")
    host = report["machine"]["native_row"]
    assert not fp16["passed"] and fp16["failed_on"] == [host]
    assert report["passed"] and report["not_for"]["fp16"] == [host] and report["failures"] == []
    assert "not for" in optional.output and f"fp16 is not for {host}" in optional.output
    assert f"`fp16` is not for {host}" in (folder / "report.md").read_text()
    assert "is not for" in (folder / "report.html").read_text()
    required = CliRunner().invoke(app, [*args, "--require", "fp32,fp16"])
    assert required.exit_code == 3, required.output
    assert f"model.fp16.onnx (required) fails on {host}" in required.output
    bad = CliRunner().invoke(app, [*args, "--require", "fp32,int4"])
    assert bad.exit_code == 2 and "int4" in bad.output


def test_int8_that_holds_nowhere_fails_only_when_required(quantized, tmp_path):
    from edgecnn.errors import GateFailedError

    folder = shutil.copytree(quantized, tmp_path / "copy")
    impossible = impossible_gates(int8_max_accuracy_drop=-1.0, int8_loss_significance=2.0)
    with pytest.raises(GateFailedError, match="no static int8 scheme holds"):
        quantize(folder / "model.onnx", variants=["int8"], gates=impossible, isa="host",
                 calibration=100, auto_exclude=False, force=True)
    assert not (folder / "model.int8.onnx").exists()  # the old one was not left to pass for it
    [result] = quantize(folder / "model.onnx", variants=["int8"], gates=impossible, isa="host",
                        calibration=100, auto_exclude=False, force=True, strict=False)
    assert result.failure and "loses" in result.failure and not result.written
    assert not (folder / "model.int8.onnx").exists()


def test_failed_int8_gate_names_the_drifting_layers(quantized, tmp_path):
    from edgecnn.validate.run import validate

    strict = impossible_gates(int8_max_accuracy_drop=-1.0, int8_loss_significance=2.0)  # int8 must gain 100 pp
    folder = shutil.copytree(quantized, tmp_path / "copy")
    report = validate(folder, limit=300, gates=strict)
    int8 = report.variant("int8")
    assert not int8.passed and not report.passed
    drift = int8.layer_drift
    assert drift and all(np.isfinite(d.sqnr_db) for d in drift)
    assert [d.sqnr_db for d in drift] == sorted(d.sqnr_db for d in drift)
    assert "drift most from fp32" in (folder / "report.md").read_text()
    # the other variants were still validated and reported
    assert {v.variant for v in report.variants} == {"fp32", "int8", "dynint8", "fp16"}


def test_variant_from_another_keras_model_is_reported_stale(quantized, tmp_path):
    import onnx

    from edgecnn.export.onnx_metadata import set_metadata
    from edgecnn.validate.run import validate

    folder = tmp_path / "copy"
    shutil.copytree(quantized, folder)
    proto = onnx.load(str(folder / "model.fp16.onnx"))
    set_metadata(proto, read_metadata(folder / "model.fp16.onnx").replace(keras_sha256="0" * 64))
    onnx.save(proto, str(folder / "model.fp16.onnx"))
    report = validate(folder, limit=200)
    fp16 = report.variant("fp16")
    assert not fp16.passed and fp16.gate.startswith("stale")


def test_quantization_never_changes_the_working_folder(quantized, tmp_path, monkeypatch):
    """The process-wide working folder is not library state: threads and Ray actors share it."""
    import os

    def refuse(path):
        raise AssertionError(f"library code changed the working folder to {path}")

    folder = shutil.copytree(quantized, tmp_path / "copy")
    monkeypatch.setattr(os, "chdir", refuse)
    [result] = quantize(folder / "model.onnx", variants=["dynint8"], force=True)
    assert result.path.is_file()


def test_a_variant_that_does_not_load_is_never_kept_and_the_others_are(fashion_copy, monkeypatch):
    """A converter's file that passes onnx.checker but not onnxruntime (as the fp16 converter
    wrote for a uint8-input model) is one line naming it; a stale one is removed too."""
    import onnx

    from edgecnn.quantize import quantize as q

    real = q._fp16

    def broken(model_path, out):  # the graph's output declared float16, its producer float
        settings = real(model_path, out)
        model = onnx.load(str(out))
        model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
        onnx.save(model, str(out))
        return settings

    monkeypatch.setattr(q, "_fp16", broken)
    (fashion_copy / "model.fp16.onnx").write_bytes(b"stale")
    results = {r.variant: r for r in q.quantize(fashion_copy / "model.onnx", variants=["dynint8", "fp16"],
                                                isa="host", force=True)}
    assert results["dynint8"].failure is None and (fashion_copy / "model.dynint8.onnx").is_file()
    assert not results["fp16"].written and "the fp16 file" in results["fp16"].failure
    assert not (fashion_copy / "model.fp16.onnx").exists()
    assert ".edgecnn-tmp" not in results["fp16"].failure  # names the variant, not a scratch file
