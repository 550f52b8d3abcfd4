"""Lazy imports of optional heavy dependencies, with an error that names the install command."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from edgecnn.errors import MissingDependencyError

_EXTRA_OF: dict[str, str | None] = {
    "tensorflow": "export",
    "keras": "export",
    "tf2onnx": "export",
    "onnx": "export",
    "onnxconverter_common": "export",
    "sympy": "export",
    "onnxruntime": "cpu",
    "PIL": None,  # a base dependency
    "matplotlib": "bench",
    "ai_edge_litert": "engines",
    "openvino": "engines",
    "pyarrow": "parquet",
    "ray": "scale",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError explaining how to install it.

    Args:
        module: dotted module name, e.g. ``"tf2onnx"``.
        purpose: what the caller needs it for, quoted in the error.
    """
    top = module.split(".")[0]
    if top in ("tensorflow", "keras", "tf2onnx"):
        # TensorFlow's C++ start-up chatter hides our own progress output.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA_OF.get(top, "full")
        target = "edgecnn" if extra is None else f"'edgecnn[{extra}]'"
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{top}', which is not installed "
            f"({exc}). Install it with: pip install {target}"
        ) from exc
