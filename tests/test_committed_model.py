"""The committed exported/fashion-cnn artifacts: an app with only numpy + onnxruntime gets the
accuracy the report promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1] / "exported" / "fashion-cnn"

# Runs in a fresh interpreter in which importing TensorFlow, Keras or onnx fails.
_SCRIPT = """
import json, sys
for blocked in ("tensorflow", "keras", "tf2onnx", "onnx"):
    sys.modules[blocked] = None
from edgecnn.data.idx import load_fashion_mnist
from edgecnn.runtime import Predictor
data = load_fashion_mnist()
out = {}
for name in sys.argv[1:]:
    p = Predictor(name, providers="cpu")
    out[name.rsplit("/", 1)[-1]] = float((p.predict(data.x_test).labels == data.y_test).mean())
print(json.dumps(out))
"""


@pytest.mark.skipif(not (MODEL_DIR / "report.json").exists(), reason="no committed model")
def test_runtime_only_accuracy_matches_the_committed_report():
    report = json.loads((MODEL_DIR / "report.json").read_text())
    files = [str(MODEL_DIR / v["file"]) for v in report["variants"]]
    out = subprocess.run([sys.executable, "-c", _SCRIPT, *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    measured = json.loads(out.stdout)
    assert report["test_images"] == 10000
    for variant in report["variants"]:
        assert measured[variant["file"]] == pytest.approx(variant["accuracy"], abs=1e-9)
        assert variant["passed"]
    assert report["variants"][0]["accuracy"] >= 0.905
