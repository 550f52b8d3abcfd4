"""The files of an exported model folder: one fp32 model and its quantized variants."""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import EdgeCNNError

ONNX_FILE = "model.onnx"
# Quantization mode -> file name; the order is the order reports and benchmarks list them in.
VARIANT_FILE = {"static": "model.int8.onnx", "dynamic": "model.dynint8.onnx", "fp16": "model.fp16.onnx"}
_ORDER = (ONNX_FILE, *VARIANT_FILE.values())
# What each file is called in reports, gates and --require (its metadata's ``variant``).
VARIANT_KINDS = ("fp32", "int8", "dynint8", "fp16")


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
