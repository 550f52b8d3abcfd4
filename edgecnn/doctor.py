"""What this machine can run, and the exact reason for what it cannot.

``edgecnn doctor`` collects these checks. The execution-provider checks matter most: whether the
provider is in the onnxruntime build, for CUDA and TensorRT why it cannot start
(:mod:`edgecnn.runtime.cuda`: driver, device, libraries), and finally a real session on a probe
model.
Needs numpy + onnxruntime only (TensorFlow's version is read from package metadata).
"""

from __future__ import annotations

import base64
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from edgecnn.runners.qemu import EMULATIONS, is_native, unavailable_reason
from edgecnn.runtime.cuda import cuda_reason
from edgecnn.runtime.isa import ISA_CLASSES, host_isa
from edgecnn.runtime.providers import ALIASES, install_hint, needs_cuda_libraries
from edgecnn.timing.machine import cpu_model
from edgecnn.versions import package_versions

# A Relu over a float [1, 4] tensor (opset 17): small enough to keep here, so that a
# runtime-only install can try a real session without the onnx package.
_PROBE_MODEL = base64.b64decode(
    "CAg6PwoMCgF4EgF5IgRSZWx1EgVwcm9iZVoTCgF4Eg4KDAgBEggKAggBCgIIBGITCgF5Eg4KDAgBEggKAggBCgIIBEIECgAQEQ==")
_BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")


@dataclass(frozen=True)
class Check:
    """One thing this machine can or cannot do, and why."""

    area: str
    name: str
    ok: bool
    detail: str


def doctor() -> list[Check]:
    """Every check: Python and packages, the CPU class, emulation, the browser, the providers."""
    checks = [Check("python", platform.python_version(), True, sys.executable)]
    checks += [Check("package", name, True, version) for name, version in package_versions().items()]
    checks += _cpu_checks()
    checks += _emulation_checks()
    checks.append(_browser_check())
    checks += provider_checks()
    return checks


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


def _cpu_checks() -> list[Check]:
    isa = host_isa()
    return [Check("cpu", isa, True, f"{cpu_model()}; {ISA_CLASSES.get(isa, '')}")]


def _emulation_checks() -> list[Check]:
    out = []
    for isa in ISA_CLASSES:
        reason = unavailable_reason(isa)
        if reason:
            out.append(Check("emulation", isa, False, reason))
        elif is_native(isa):
            out.append(Check("emulation", isa, True, "native (this CPU)"))
        else:
            e = EMULATIONS[isa]
            out.append(Check("emulation", isa, True, f"{e.qemu} -cpu {e.cpu} ({_qemu_version(e.qemu)})"))
    return out


def _qemu_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "version unknown"
    first = done.stdout.strip().splitlines()
    return first[0] if first else "version unknown"


def _browser_check() -> Check:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return Check("browser", name, True, f"{path} (renders report.html in the tests)")
    return Check("browser", "chromium", False, "no headless Chromium; the report page is still "
                 "written, only its rendering test needs one (apt-get install "
                 "--no-install-recommends chromium-headless-shell)")


def provider_checks() -> list[Check]:
    """One check per execution provider edgecnn knows: usable here, or exactly why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [Check("provider", "onnxruntime", False,
                      "onnxruntime is not installed: pip install 'edgecnn[cpu]' (or [gpu])")]
    available = ort.get_available_providers()
    out = []
    for name in ALIASES.values():
        if name not in available:
            hint = install_hint(name)
            out.append(Check("provider", name, False, f"not in this onnxruntime build "
                             f"({_ort_package()} {ort.__version__})" + (f"; to use it: {hint}" if hint else "")))
            continue
        reason = cuda_reason(ort, name) if needs_cuda_libraries([name]) else None
        out.append(Check("provider", name, False, reason) if reason else _session_check(ort, name))
    return out


def _ort_package() -> str:
    versions = package_versions(("onnxruntime-gpu", "onnxruntime"))
    return next(iter(versions), "onnxruntime")


def _session_check(ort: Any, name: str) -> Check:
    """A real session on the probe model: the provider must be the one that runs it."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(_PROBE_MODEL, sess_options=options,
                                       providers=list(dict.fromkeys([name, "CPUExecutionProvider"])))
    except Exception as exc:  # onnxruntime raises several types when a provider fails to start
        return Check("provider", name, False, f"a session could not start: {str(exc).strip()[-300:]}")
    if session.get_providers()[0] != name:
        return Check("provider", name, False, "onnxruntime fell back to "
                     f"{session.get_providers()[0]} (it gave no reason; run with "
                     "ORT_LOGGING_LEVEL=0 for its log)")
    return Check("provider", name, True, "a session runs on it")
