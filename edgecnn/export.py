"""Keras -> ONNX with tf2onnx, with edgecnn's metadata stored in the file.

tf2onnx's ``from_keras`` fails on Keras 3 and ``model.export(format="onnx")`` traces
augmentation layers in training mode, so the model is wrapped in a ``tf.function`` that calls
it with ``training=False`` explicitly and converted with ``from_function``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn import __version__
from edgecnn._optional import require
from edgecnn.defaults import DEFAULT_MODEL, DEFAULT_OPSET
from edgecnn.errors import EdgeCNNError
from edgecnn.files import check_overwrite, sha256_file, write_bytes
from edgecnn.graph import check_inference_graph, fold_batch_reshapes
from edgecnn.keras_io import load_keras
from edgecnn.onnx_metadata import load_proto, metadata_of, set_metadata
from edgecnn.runtime.metadata import ModelInfo, Preprocessing
from edgecnn.runtime.outputs import class_count, output_kind
from edgecnn.train import KERAS_FILE, read_train_info, train
from edgecnn.variants import ONNX_FILE
from edgecnn.zoo import get_spec, list_models

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what it holds."""

    onnx_path: Path
    keras_path: Path
    info: ModelInfo
    written: bool
    trained: bool


def keras_to_onnx(model: Any, info: ModelInfo, opset: int = DEFAULT_OPSET) -> Any:
    """Convert a Keras model to a checked ONNX ModelProto carrying ``info`` as metadata."""
    tf = require("tensorflow", "Exporting to ONNX")
    tf2onnx = require("tf2onnx", "Exporting to ONNX")
    onnx = require("onnx", "Exporting to ONNX")
    signature = (tf.TensorSpec((None, *info.input_shape), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(x):
        return {OUTPUT_NAME: model(x, training=False)}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    fold_batch_reshapes(proto)
    proto.producer_name = "edgecnn"
    proto.producer_version = __version__
    set_metadata(proto, info)
    onnx.checker.check_model(proto)
    check_inference_graph(proto)
    return proto


def _user_model_info(
    model: Any, path: Path, class_names: list[str] | None, preprocessing: Preprocessing | None
) -> ModelInfo:
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or not all(isinstance(d, int) for d in shape):
        raise EdgeCNNError(
            f"{path}: expected one NHWC image input with fixed size, got input shape "
            f"{model.input_shape}."
        )
    units = model.output_shape[-1]
    n_classes = class_count(units)
    names = tuple(class_names) if class_names else tuple(str(i) for i in range(n_classes))
    if len(names) != n_classes:
        raise EdgeCNNError(
            f"{path} predicts {n_classes} classes but {len(names)} class names were given."
        )
    return ModelInfo(
        name=path.stem, class_names=names, input_shape=shape,
        preprocessing=preprocessing or Preprocessing(), output=output_kind(units),
    )


def export(
    model: str = DEFAULT_MODEL,
    *,
    out_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    retrain: bool = False,
    unsafe: bool = False,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    train_options: dict[str, Any] | None = None,
) -> ExportResult:
    """Export a zoo model (training it first when needed) or a user's ``.keras`` file.

    Args:
        model: a zoo name, or a path to a ``.keras`` file.
        out_dir: destination folder (default ``exported/<name>``).
        opset: ONNX opset.
        force: replace an existing ONNX file (and, with ``retrain``, ``model.keras``) that differs.
        retrain: train a zoo model again even if ``out_dir/model.keras`` exists.
        unsafe: load a ``.keras`` file with Keras's safe mode off (runs code stored in it).
        class_names, preprocessing: for a user's model without an edgecnn training record.
        train_options: keyword arguments for :func:`edgecnn.train.train`.
    """
    path = Path(model)
    is_file = _is_keras_file(model)
    out_dir = output_folder(model, out_dir)
    trained = False
    if is_file:
        keras_path = path
    else:
        keras_path = out_dir / KERAS_FILE
        if retrain or not keras_path.exists():
            log.info(f"Retraining {model}..." if retrain
                     else f"Training {model} (no trained model at {keras_path})...")
            train(model, out_dir=out_dir, force=force, **(train_options or {}))
            trained = True
    # A training record describes only the model.keras written beside it.
    info = read_train_info(keras_path.parent) if keras_path.name == KERAS_FILE else None
    net = load_keras(keras_path, unsafe=unsafe)
    if info is None:
        info = _user_model_info(net, keras_path, class_names, preprocessing)
    elif class_names or preprocessing:
        info = info.replace(
            **({"class_names": tuple(class_names)} if class_names else {}),
            **({"preprocessing": preprocessing} if preprocessing else {}),
        )
    info = info.replace(keras_sha256=sha256_file(keras_path), edgecnn_version=__version__)
    onnx_path = out_dir / ONNX_FILE
    if onnx_path.exists() and not force and _same_export(onnx_path, info, opset):
        return ExportResult(onnx_path, keras_path, info, written=False, trained=trained)
    proto = keras_to_onnx(net, info, opset)
    data = proto.SerializeToString()
    written = check_overwrite(onnx_path, data, force)
    if written:
        write_bytes(onnx_path, data)
    return ExportResult(onnx_path, keras_path, info, written=written, trained=trained)


def _is_keras_file(model: str) -> bool:
    path = Path(model)
    return path.suffix == ".keras" or path.exists()


def output_folder(model: str, out_dir: str | Path | None = None) -> Path:
    """Where the export of ``model`` goes, checked before any work (training takes minutes)."""
    if not _is_keras_file(model) and model not in list_models():
        get_spec(model)  # raises the "unknown model" error with suggestions
    folder = Path(out_dir or Path("exported") / (Path(model).stem if _is_keras_file(model) else model))
    if folder.exists() and not folder.is_dir():
        raise EdgeCNNError(f"Output folder {folder} exists and is not a folder.")
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not os.access(probe, os.W_OK):
        raise EdgeCNNError(f"Cannot write to {folder}: {probe} is not writable.")
    return folder


def _same_export(onnx_path: Path, info: ModelInfo, opset: int) -> bool:
    """True when ``onnx_path`` was exported from the same Keras file, with the same settings and
    opset, by this edgecnn version."""
    try:
        proto = load_proto(onnx_path)
        existing = metadata_of(proto)
    except Exception:  # an unreadable or damaged file is simply not the same export
        return False
    versions = {o.domain: o.version for o in proto.opset_import}
    return existing == info and versions.get("", versions.get("ai.onnx")) == opset
