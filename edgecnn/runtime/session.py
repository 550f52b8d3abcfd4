"""The one place an onnxruntime InferenceSession is built (Polygraphy's ``SessionFromOnnx``).

The Predictor and the benchmark both load models here, so provider resolution, the refusal of
silent CPU fallbacks and the refusal of external data outside the model's folder hold for both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.defaults import MAX_THREADS
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import providers as _providers
from edgecnn.runtime.cuda import cuda_reason


def check_threads(name: str, value: int) -> None:
    """One line for a thread count that is not an integer from 0 (onnxruntime's default) to
    MAX_THREADS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_THREADS:
        raise EdgeCNNError(f"{name} must be an integer from 0 to {MAX_THREADS}, got {value!r}.")


def session_options(intra_op_threads: int = 0, inter_op_threads: int = 0) -> Any:
    """SessionOptions with thread counts (0 = onnxruntime's default) and quiet logging."""
    check_threads("intra_op_threads", intra_op_threads)
    check_threads("inter_op_threads", inter_op_threads)
    ort = require("onnxruntime", "Running a model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3
    return options


def load_session(
    path: str | os.PathLike,
    providers: str | Sequence[str] = "auto",
    *,
    options: Any = None,
    provider_options: Mapping[str, Any] | None = None,
) -> Any:
    """An InferenceSession for ``path`` on exactly the requested providers.

    Args:
        path: the ``.onnx`` file.
        providers: as :func:`edgecnn.runtime.providers.resolve` takes them.
        options: SessionOptions (default: :func:`session_options`).
        provider_options: options for the primary provider only.

    Raises:
        EdgeCNNError: missing or unreadable file, external data outside the model's folder, or a
            requested provider that is missing or that onnxruntime could not start.
    """
    ort = require("onnxruntime", "Running a model")
    # onnxruntime's own coloured "[E:onnxruntime...]" lines would duplicate our one-line errors
    # (a CUDA that cannot start logs at error level; why is said below, by runtime.cuda).
    ort.set_default_logger_severity(4)
    path = Path(path)
    if not path.is_file():
        raise EdgeCNNError(f"Model file not found: {path} (expected an .onnx file).")
    requested = _providers.resolve(providers, ort.get_available_providers())
    if _providers.needs_cuda_libraries(requested) and hasattr(ort, "preload_dlls"):
        # onnxruntime-gpu[cuda,cudnn] ships CUDA and cuDNN as wheels, which the provider finds
        # only once they are loaded; without this a driver-only machine falls back to the CPU
        ort.preload_dlls()
    per_provider = [dict(provider_options or {}) if i == 0 else {} for i in range(len(requested))]
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options or session_options(), providers=requested,
            provider_options=per_provider,
        )
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        text = str(exc)
        if "External data path escapes" in text:
            raise EdgeCNNError(
                f"Refusing {path}: its external weight data points outside the model's "
                f"folder ({text.strip()[-200:]}). Keep external data files beside the model."
            ) from exc
        if "External data path does not exist" in text:
            raise EdgeCNNError(
                f"{path}: its external weight data file is missing ({text.strip()[-200:]})."
            ) from exc
        raise EdgeCNNError(f"Could not load {path} as an ONNX model: {str(exc).strip()[:300]}") from exc
    active = session.get_providers()
    reason = None
    if requested[0] not in active and _providers.needs_cuda_libraries(requested[:1]):
        reason = cuda_reason(ort, requested[0])
    _providers.check_active(requested, active, reason)
    return session
