"""The files of an exported model folder: one fp32 model and its quantized variants."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.names import Name

ONNX_FILE = "model.onnx"


class Variant(Name):
    """Each variant has one name -- in reports, gates, --require, quantize and its metadata's
    ``variant`` -- and its file is named after it; the order is the order reports list them in.
    A ``str``, so files and reports hold the plain name."""

    FP32 = "fp32"
    INT8 = "int8"
    DYNINT8 = "dynint8"
    FP16 = "fp16"

    @property
    def file(self) -> str:
        return ONNX_FILE if self is Variant.FP32 else f"model.{self.value}.onnx"


VARIANT_FILE = {v.value: v.file for v in Variant if v is not Variant.FP32}  # the quantized ones
VARIANT_KINDS = tuple(v.value for v in Variant)
_ORDER = (ONNX_FILE, *VARIANT_FILE.values())
# onnxruntime's names for how the two int8 variants are made (static QDQ calibration, dynamic
# activation scales); accepted wherever a variant to make is named.
METHOD_ALIASES = {"static": "int8", "dynamic": "dynint8"}


def variant_names(names: Iterable[str]) -> list[str]:
    """The quantized variants ``names`` asks for (aliases resolved, each once), or one line."""
    resolved = list(dict.fromkeys(METHOD_ALIASES.get(n, n) for n in names))
    unknown = [n for n in resolved if n not in VARIANT_FILE]
    if unknown or not resolved:
        raise EdgeCNNError(f"Unknown variant {unknown or resolved} to make; use {', '.join(VARIANT_FILE)} "
                           f"(or onnxruntime's names: static for int8, dynamic for dynint8).")
    return resolved


def variant_files(folder: str | Path) -> list[Path]:
    """The ``model*.onnx`` files in ``folder``, fp32 first, then int8, dynint8, fp16, others."""
    folder = Path(folder)
    files = sorted(
        folder.glob("model*.onnx"),
        key=lambda p: (_ORDER.index(p.name) if p.name in _ORDER else len(_ORDER), p.name),
    )
    if not files:
        raise EdgeCNNError(f"No exported model (model*.onnx) in {folder}; run edgecnn export.")
    return files
