"""The CLI end to end through typer's runner: exit codes, messages, files written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli.main import app
from edgecnn.quantize.int8_scheme import SCHEMES
from edgecnn.runtime.isa import ISA_CLASSES
from tests.conftest import TEST_SEED

runner = CliRunner()


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.startswith("edgecnn ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "export" in result.output


def test_zoo_json(tmp_path):
    """The zoo shows what an export measured, checked against the model run here, and only for
    the folders that hold one."""
    import shutil
    from pathlib import Path

    from edgecnn.data import load_dataset
    from edgecnn.runtime import Predictor
    from edgecnn.store.files import sha256_file

    committed = Path(__file__).resolve().parents[1] / "exported" / "fashion-cnn"
    exported = tmp_path / "exported"
    shutil.copytree(committed, exported / "fashion-cnn")
    # as a current validation writes it: each variant with the sha256 of the file it measured
    report_path = exported / "fashion-cnn" / "report.json"
    report = json.loads(report_path.read_text())
    for variant in report["variants"]:
        variant["sha256"] = sha256_file(exported / "fashion-cnn" / variant["file"])
    report_path.write_text(json.dumps(report))
    result = runner.invoke(app, ["zoo", "--json", "--exported", str(exported)])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["fashion-cnn"]["params"] == 333_526  # the tutorial's model
    assert [name for name, row in rows.items() if row["export"] is not None] == ["fashion-cnn"]
    shown = rows["fashion-cnn"]["export"]
    data = load_dataset("fashion_mnist")
    assert shown["dataset"] == "fashion_mnist" and shown["test_images"] == len(data.y_test) == 10_000
    # fp32 agrees with Keras to the image (near-ties aside): its accuracy measured now is Keras's
    fp32 = Predictor(exported / "fashion-cnn" / "model.onnx", providers="cpu").predict(data.x_test)
    assert shown["keras_accuracy"] == pytest.approx(float((fp32.labels == data.y_test).mean()), abs=1e-3)
    assert shown["int8_accuracy"] != shown["keras_accuracy"] and shown["passed"] is True
    # a variant changed since the report was written: its old numbers are not shown
    (exported / "fashion-cnn" / "model.int8.onnx").write_bytes(b"other bytes")
    again = runner.invoke(app, ["zoo", "--json", "--exported", str(exported)])
    [row] = [r for r in json.loads(again.output) if r["name"] == "fashion-cnn"]
    assert row["export"]["stale"] == ["model.int8.onnx"] and "keras_accuracy" not in row["export"]


def test_unknown_model_is_one_line_not_a_traceback():
    result = runner.invoke(app, ["export", "fashon-cnn"])
    assert result.exit_code == 1
    assert "Unknown model 'fashon-cnn'" in result.output
    assert "Traceback" not in result.output


def test_predict_on_npz_and_png(tiny_onnx, tmp_path):
    from PIL import Image

    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "batch.npz", x_test=images)
    Image.fromarray(images[0]).save(tmp_path / "one.png")
    result = runner.invoke(app, ["predict", str(tiny_onnx), str(tmp_path / "batch.npz"),
                                 str(tmp_path / "one.png"), "--json", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4 and all(len(line["top_k"]) == 2 for line in lines)
    assert lines[0]["top_k"] == lines[3]["top_k"]  # the PNG is image 0 of the npz


@pytest.mark.parametrize("content", [b"", b"just text", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_predict_refuses_files_that_are_not_images(tiny_onnx, tmp_path, content):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    result = runner.invoke(app, ["predict", str(tiny_onnx), str(bad)])
    assert result.exit_code == 1
    assert "not a readable image" in result.output and "Traceback" not in result.output


def test_predict_with_unavailable_cuda_says_so(tiny_onnx, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    np.savez(tmp_path / "x.npz", x=np.zeros((1, 8, 8), np.uint8))
    result = runner.invoke(app, ["predict", str(tiny_onnx), str(tmp_path / "x.npz"),
                                 "--provider", "cuda"])
    assert result.exit_code == 1
    assert "CUDAExecutionProvider" in result.output and "edgecnn[gpu]" in result.output


def test_quantize_rejects_bad_mode(tiny_onnx):
    result = runner.invoke(app, ["quantize", str(tiny_onnx), "--variant", "int4"])
    assert result.exit_code == 2 and "int4" in result.output


def test_a_variant_has_one_name_and_onnxruntimes_names_still_work():
    """int8 is the variant, its file and its gate; static is how onnxruntime makes it."""
    from edgecnn.variants import VARIANT_FILE, VARIANT_KINDS, variant_names

    assert variant_names(["static", "int8", "dynamic", "fp16"]) == ["int8", "dynint8", "fp16"]
    assert all(VARIANT_FILE[v] == f"model.{v}.onnx" for v in VARIANT_KINDS[1:])


@pytest.mark.slow
def test_validate_gate_fails_on_purpose_with_exit_code_3(fashion_copy):
    result = runner.invoke(app, ["validate", str(fashion_copy), "--limit", "300",
                                 "--max-abs-diff", "0"])  # no fp32 file is that exact
    assert result.exit_code == 3, result.output
    assert "accuracy gate broken: model.onnx (required) fails on" in result.output
    report = json.loads((fashion_copy / "report.json").read_text())
    assert report["passed"] is False and report["variants"][0]["passed"] is False
    ok = runner.invoke(app, ["validate", str(fashion_copy), "--limit", "300"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((fashion_copy / "report.json").read_text())["passed"] is True


@pytest.mark.slow
def test_train_export_pipeline_through_the_cli(tmp_path):
    out = tmp_path / "shapes"
    result = runner.invoke(app, ["export", "shapes-toy", "--out", str(out), "--epochs", "5",
                                 "--seed", str(TEST_SEED),
                                 "--calibration", "300"])
    # every class this machine can run is measured (make test sets up all of them)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bench.json", "model.dynint8.onnx", "model.fp16.onnx", "model.int8.onnx", "model.keras",
                     "model.onnx", "report.html", "report.json", "report.md", "train.json"]
    report = json.loads((out / "report.json").read_text())
    assert [v["variant"] for v in report["variants"]] == ["fp32", "int8", "dynint8", "fp16"]
    assert all(v["passed"] for v in report["variants"])
    assert set(report["isa_rows"]) | set(report["isa_not_measured"]) == set(ISA_CLASSES)
    int8 = report["variants"][1]
    assert int8["quantization"]["scheme"] in SCHEMES
    assert set(int8["by_isa"]) == set(report["isa_rows"])
    assert "a GPU format" in (out / "report.md").read_text()  # fp16's CPU cost is stated
