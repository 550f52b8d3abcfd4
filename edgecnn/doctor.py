"""What this machine can run, and the exact reason for what it cannot.

``edgecnn doctor`` collects these checks. The execution-provider checks matter most: onnxruntime
itself only logs a warning and falls back to the CPU when, say, CUDA cannot start, and its
message does not tell a missing cuDNN from a machine without a GPU. Here each cause is checked
on its own, in the order a session would meet them: the provider in the onnxruntime build, its
shared libraries, the NVIDIA driver, a device, and finally a real session on a probe model.
Needs numpy + onnxruntime only (TensorFlow's version is read from package metadata).
"""

from __future__ import annotations

import base64
import ctypes
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgecnn.versions import package_versions

# A Relu over a float [1, 4] tensor (opset 17): small enough to keep here, so that a
# runtime-only install can try a real session without the onnx package.
_PROBE_MODEL = base64.b64decode(
    "CAg6PwoMCgF4EgF5IgRSZWx1EgVwcm9iZVoTCgF4Eg4KDAgBEggKAggBCgIIBGITCgF5Eg4KDAgBEggKAggBCgIIBEIECgAQEQ==")
_CUDA_SUCCESS, _CUDA_ERROR_NO_DEVICE = 0, 100
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
    from edgecnn.bench.machine import cpu_model
    from edgecnn.runtime.isa import ISA_CLASSES, host_isa

    isa = host_isa()
    return [Check("cpu", isa, True, f"{cpu_model()}; {ISA_CLASSES.get(isa, '')}")]


def _emulation_checks() -> list[Check]:
    from edgecnn.emulation import EMULATIONS, is_native, unavailable_reason
    from edgecnn.runtime.isa import ISA_CLASSES

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
    from edgecnn.runtime.providers import ALIASES, install_hint

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
        reason = _cuda_reason(ort, name) if name in ("CUDAExecutionProvider",
                                                     "TensorrtExecutionProvider") else None
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


def _cuda_reason(ort: Any, name: str) -> str | None:
    """Why the CUDA (or TensorRT) provider cannot start here, or None when nothing stops it.

    The driver comes first: the provider library links libcuda.so.1 itself, so on a machine
    without a GPU its load error would name a "missing library" instead of the real cause.
    """
    driver = _driver_reason(ort)
    if driver:
        return driver
    capi = Path(ort.__file__).parent / "capi"
    if hasattr(ort, "preload_dlls"):  # the CUDA/cuDNN wheels of onnxruntime-gpu[cuda,cudnn]
        try:
            ort.preload_dlls()
        except Exception:  # it only warns about what it cannot find; the load below says what
            pass
    libraries = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"]
    if name == "TensorrtExecutionProvider":
        libraries.append("libonnxruntime_providers_tensorrt.so")
    for library in libraries:
        path = capi / library
        if not path.is_file():
            return f"{library} is missing from {capi}: a broken onnxruntime-gpu install"
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            missing = str(exc).split(":")[0] if "cannot open shared object" in str(exc) else str(exc)
            return (f"missing shared library {missing} (needed by {library}); "
                    "pip install 'edgecnn[gpu]' brings the CUDA and cuDNN wheels, TensorRT is "
                    "installed separately")
    return None


def _driver_reason(ort: Any) -> str | None:
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA device: no NVIDIA driver on this machine (libcuda.so.1 not found)"
    rc = cuda.cuInit(0)
    if rc == _CUDA_ERROR_NO_DEVICE:
        return "no CUDA device: the NVIDIA driver is installed but sees no GPU"
    if rc != _CUDA_SUCCESS:
        return f"the NVIDIA driver failed to start (cuInit error {rc})"
    count, version = ctypes.c_int(0), ctypes.c_int(0)
    cuda.cuDeviceGetCount(ctypes.byref(count))
    if count.value == 0:
        return "no CUDA device: the NVIDIA driver sees no GPU"
    cuda.cuDriverGetVersion(ctypes.byref(version))
    needed = _built_cuda_version(ort)
    if needed and version.value < needed:
        return (f"the NVIDIA driver is too old: it supports CUDA {_cuda_text(version.value)}, "
                f"this onnxruntime was built for CUDA {_cuda_text(needed)}")
    return None


def _built_cuda_version(ort: Any) -> int | None:
    """The CUDA version onnxruntime-gpu was built with, as the driver API counts (12040)."""
    try:
        from onnxruntime.capi import build_and_package_info as build
    except ImportError:
        return None
    text = getattr(build, "cuda_version", "") or ""
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]) * 1000 + int(parts[1]) * 10


def _cuda_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"
