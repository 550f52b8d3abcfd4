"""The runtime layer and the CLI's start-up must not import TensorFlow (apps embed them)."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx")


def _loaded_after(code: str) -> set[str]:
    # the last line only: what the code printed itself (help text) must not read as modules
    probe = code + "\nimport sys\nprint('\\nMODULES', ' '.join(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.rsplit("MODULES", 1)[1].split())


def test_runtime_predictor_runs_without_heavy_imports(tiny_onnx):
    loaded = _loaded_after(
        "import numpy as np\nfrom edgecnn.runtime import Predictor\n"
        f"p = Predictor(r'{tiny_onnx}')\np.predict(np.zeros((8, 8), np.uint8))"
    )
    assert "onnxruntime" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


# What `edgecnn --help` may load of edgecnn: the command modules and what they need to
# describe their options, nothing that trains, quantizes, validates, benchmarks or runs models.
HELP_MODULES = {
    "edgecnn", "edgecnn.cli", "edgecnn.cli.main", "edgecnn.cli.options", "edgecnn.cli.report_view",
    "edgecnn.defaults", "edgecnn.display", "edgecnn.errors", "edgecnn.accuracy", "edgecnn.accuracy.agreement", "edgecnn.accuracy.gates",
    "edgecnn.store", "edgecnn.store.locations",
    *(f"edgecnn.cli.{c}_cmd" for c in ("bench", "device", "doctor", "export", "isa", "predict", "quantize", "report",
                                        "train", "validate", "zoo")),
}


def test_cli_help_imports_only_the_command_modules():
    loaded = _loaded_after(
        "import sys\nfrom edgecnn.cli.main import app\nsys.argv=['edgecnn','--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    assert {m for m in loaded if m.split(".")[0] == "edgecnn"} == HELP_MODULES
    assert not loaded & {*HEAVY, "numpy", "onnxruntime"}


def test_zoo_listing_does_not_import_tensorflow():
    loaded = _loaded_after("from edgecnn.zoo import list_models\nlist_models()")
    assert "tensorflow" not in loaded
