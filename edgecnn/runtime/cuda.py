"""Why onnxruntime's CUDA (or TensorRT) provider cannot start on this machine.

onnxruntime only logs a warning and falls back to the CPU when CUDA cannot start, and its
message does not tell a missing cuDNN from a machine without a GPU. Each cause is checked here on
its own, in the order a session meets them; ``edgecnn doctor`` shows the answer, and a session
that asked for CUDA and did not get it names it in its error. ctypes only: no CUDA toolkit needed.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

_CUDA_SUCCESS, _CUDA_ERROR_NO_DEVICE = 0, 100


def cuda_reason(ort: Any, name: str) -> str | None:
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
