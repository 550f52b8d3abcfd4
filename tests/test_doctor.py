"""``edgecnn doctor``: what this machine can run, with the exact reason for what it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Runs doctor in a fresh interpreter in which TensorFlow, Keras and onnx cannot be imported.
_RUNTIME_ONLY = """
import json, sys
for blocked in ("tensorflow", "keras", "tf2onnx", "onnx"):
    sys.modules[blocked] = None
from edgecnn.doctor import as_json, doctor
print(json.dumps(as_json(doctor())))
"""


def _checks(python: str = sys.executable, script: str = _RUNTIME_ONLY) -> dict[tuple[str, str], dict]:
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return {(c["area"], c["name"]): c for c in json.loads(out.stdout.strip().splitlines()[-1])}


def test_doctor_on_the_cpu_runtime_needs_neither_tensorflow_nor_onnx():
    import onnxruntime

    from edgecnn.runtime.isa import host_isa

    checks = _checks()
    assert checks[("provider", "CPUExecutionProvider")]["ok"]
    assert checks[("cpu", host_isa())]["ok"]
    assert checks[("package", "onnxruntime")]["detail"] == onnxruntime.__version__
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        cuda = checks[("provider", "CUDAExecutionProvider")]
        assert not cuda["ok"] and "not in this onnxruntime build" in cuda["detail"]
        assert "edgecnn[gpu]" in cuda["detail"]
    for isa in ("x86-vnni", "x86-avx2", "x86-sse4", "arm64-neon", "arm64-dot", "arm64-i8mm"):
        assert ("emulation", isa) in checks  # each class: native, emulated, or why not


def test_doctor_cli_prints_a_table_and_json():
    from typer.testing import CliRunner

    from edgecnn.cli.main import app

    table = CliRunner().invoke(app, ["doctor"])
    assert table.exit_code == 0 and "CPUExecutionProvider" in table.output
    listed = json.loads(CliRunner().invoke(app, ["doctor", "--json"]).output)
    assert {"area", "name", "ok", "detail"} <= set(listed[0])


def _gpu_python() -> str:
    """The GPU venv's Python (``make gpu-venv``, or EDGECNN_GPU_VENV); skip without one."""
    venv = Path(os.environ.get("EDGECNN_GPU_VENV", ROOT / ".venv-gpu"))
    python = venv / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"no GPU venv at {venv} (make gpu-venv installs onnxruntime-gpu and its CUDA wheels)")
    return str(python)


def test_doctor_in_the_gpu_venv_names_the_real_cause():
    """onnxruntime-gpu with its CUDA/cuDNN wheels: on a machine without a GPU the reason is the
    missing device, and with the driver check bypassed the library check names what is missing."""
    python = _gpu_python()
    checks = _checks(python)
    cuda = checks[("provider", "CUDAExecutionProvider")]
    assert "onnxruntime-gpu" in {name for area, name in checks if area == "package"}
    if not Path("/dev/nvidiactl").exists():
        assert not cuda["ok"] and cuda["detail"].startswith("no CUDA device"), cuda
    # The library check on its own: with the driver check bypassed, loading the provider
    # library must fail on exactly the library this machine lacks, and say it by name.
    script = ("import json, onnxruntime as ort, edgecnn.runtime.cuda as c\n"
              "c._driver_reason = lambda ort: None\n"
              "print(json.dumps(c.cuda_reason(ort, 'CUDAExecutionProvider')))")
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    reason = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path("/dev/nvidiactl").exists():
        assert reason.startswith("missing shared library libcuda.so.1"), reason


def test_a_cuda_session_in_the_gpu_venv_preloads_the_wheels_and_never_falls_back(tiny_onnx):
    """The CUDA path is real code even without a GPU: it loads the CUDA/cuDNN wheels first
    (onnxruntime.preload_dlls), and a CUDA that cannot start is an error, not a CPU run."""
    python = _gpu_python()
    script = (
        "import sys, onnxruntime as ort\n"
        "calls = []\n"
        "real = ort.preload_dlls\n"
        "ort.preload_dlls = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "from edgecnn.errors import EdgeCNNError\n"
        "from edgecnn.runtime import Predictor\n"
        "try:\n"
        "    Predictor(sys.argv[1], providers='cuda')\n"
        "    print('ran', len(calls))\n"
        "except EdgeCNNError as exc:\n"
        "    print('refused', len(calls), exc)\n")
    out = subprocess.run([python, "-c", script, str(tiny_onnx)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    verdict, preloaded, *message = out.stdout.strip().splitlines()[-1].split(" ", 2)
    assert int(preloaded) >= 1
    if not Path("/dev/nvidiactl").exists():
        assert verdict == "refused" and "Refusing to fall back silently" in message[0], out.stdout
        assert "(no CUDA device" in message[0]  # the cause, not only the symptom
        cli = subprocess.run([python, "-c", "from edgecnn.cli.main import main; main()", "predict",
                              str(tiny_onnx), str(tiny_onnx), "--provider", "cuda"],
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
        lines = [line for line in cli.stderr.splitlines() if line.strip()]
        assert cli.returncode == 1 and len(lines) == 1 and "no CUDA device" in lines[0], cli.stderr
