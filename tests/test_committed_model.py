"""The committed exported/ artifacts: an app with only numpy + onnxruntime gets the accuracy the
reports promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXPORTED = Path(__file__).resolve().parents[1] / "exported"
REPORTS = sorted(EXPORTED.glob("*/report.json"))

# Runs in a fresh interpreter in which importing TensorFlow, Keras or onnx fails.
_SCRIPT = """
import json, sys
for blocked in ("tensorflow", "keras", "tf2onnx", "onnx"):
    sys.modules[blocked] = None
from edgecnn.data import load_dataset
from edgecnn.runtime import Predictor
data = load_dataset(sys.argv[1])
out = {}
for name in sys.argv[2:]:
    p = Predictor(name, providers="cpu")
    out[name.rsplit("/", 1)[-1]] = float((p.predict(data.x_test).labels == data.y_test).mean())
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
    assert {v["variant"] for v in report["variants"]} == {"fp32", "int8", "dynint8", "fp16"}
    for variant in report["variants"]:
        assert measured[variant["file"]] == pytest.approx(variant["accuracy"], abs=1e-9)
        assert variant["passed"]
    if report["model"] == "fashion-cnn":
        assert report["test_images"] == 10000 and report["variants"][0]["accuracy"] >= 0.905
