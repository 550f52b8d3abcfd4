"""The committed exported/ artifacts: an app with only numpy + onnxruntime gets the accuracy the
reports promise for this machine's instruction-set class."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import committed_tolerance

EXPORTED = Path(__file__).resolve().parents[1] / "exported"
REPORTS = sorted(EXPORTED.glob("*/report.json"))

# Runs in a fresh interpreter in which importing TensorFlow, Keras or onnx fails.
_SCRIPT = """
import json, sys
for blocked in ("tensorflow", "keras", "tf2onnx", "onnx"):
    sys.modules[blocked] = None
from edgecnn.data import load_dataset
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import host_isa
data = load_dataset(sys.argv[1])
out = {"host_isa": host_isa()}
for name in sys.argv[2:]:
    p = Predictor(name, providers="cpu")
    out[name.rsplit("/", 1)[-1]] = (p.predict(data.x_test).labels == data.y_test).tolist()
print(json.dumps(out))
"""


def test_the_default_model_is_committed():
    assert EXPORTED / "fashion-cnn" / "report.json" in REPORTS


@pytest.mark.parametrize("report_path", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_runtime_only_accuracy_matches_the_committed_report(report_path):
    report = json.loads(report_path.read_text())
    files = [str(report_path.parent / v["file"]) for v in report["variants"]]
    out = subprocess.run([sys.executable, "-c", _SCRIPT, report["dataset"], *files],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    measured = json.loads(out.stdout)
    host = measured["host_isa"]
    if host not in report["isa_rows"]:
        pytest.skip(f"the committed report has no row for this CPU's class ({host})")
    assert {v["variant"] for v in report["variants"]} == {"fp32", "int8", "dynint8", "fp16"}
    max_drop = report["gates"]["int8_max_accuracy_drop"]
    for variant in report["variants"]:
        row = variant["by_isa"][host]
        accuracy = sum(measured[variant["file"]][:row["images"]]) / row["images"]
        assert accuracy == pytest.approx(row["accuracy"], abs=committed_tolerance(report)), variant["file"]
        # the loosest gate, recomputed from what was just measured (Keras on the same images)
        keras = row["accuracy"] - row["accuracy_delta"]
        assert keras - accuracy <= max_drop + 1e-12, variant["file"]
    if report["model"] == "fashion-cnn":
        assert report["test_images"] == 10000
        assert sum(measured["model.onnx"]) / 10000 >= 0.905


@pytest.mark.parametrize("report_path", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_committed_int8_holds_on_every_class(report_path):
    """Committed with --isa all: every class was measured or says why not."""
    from edgecnn.runtime.isa import ISA_CLASSES

    report = json.loads(report_path.read_text())
    assert set(report["isa_rows"]) | set(report["isa_not_measured"]) == set(ISA_CLASSES)
    int8 = next(v for v in report["variants"] if v["variant"] == "int8")
    assert int8["quantization"]["isa"] == list(ISA_CLASSES)
    for row, metrics in int8["by_isa"].items():
        assert -metrics["accuracy_delta"] <= report["gates"]["int8_max_accuracy_drop"] + 1e-12, row
