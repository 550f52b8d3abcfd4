"""edgecnn's metadata inside an ONNX file: the one place that reads and writes it with ``onnx``.

The runtime reads the same key through onnxruntime (``runtime.metadata``) and never needs this
module; export, quantization and validation use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.runtime.metadata import METADATA_KEY, ModelInfo


def set_metadata(proto: Any, info: ModelInfo) -> None:
    """Store ``info`` in ``proto`` under the edgecnn key, replacing an earlier value."""
    for i, prop in enumerate(proto.metadata_props):
        if prop.key == METADATA_KEY:
            del proto.metadata_props[i]
            break
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()


def metadata_of(proto: Any) -> ModelInfo | None:
    """The edgecnn metadata of a loaded ModelProto, or None without any."""
    stored = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY)
    return ModelInfo.from_json(stored) if stored else None


def load_proto(path: str | Path) -> Any:
    """The ModelProto of ``path`` without its external weights (enough for metadata and opsets)."""
    onnx = require("onnx", "Reading ONNX metadata")
    return onnx.load(str(path), load_external_data=False)


def read_metadata(path: str | Path) -> ModelInfo | None:
    """The edgecnn metadata of an ONNX file on disk, or None without any."""
    return metadata_of(load_proto(path))
