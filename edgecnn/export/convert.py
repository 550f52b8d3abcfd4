"""Keras -> ONNX with tf2onnx, with edgecnn's metadata stored in the file.

tf2onnx's ``from_keras`` fails on Keras 3 and ``model.export(format="onnx")`` traces
augmentation layers in training mode, so the model is wrapped in a ``tf.function`` that calls
it with ``training=False`` explicitly and converted with ``from_function``.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn import __version__
from edgecnn._optional import require
from edgecnn.data import Dataset, load_dataset
from edgecnn.data.fashion_mnist import FASHION_CLASSES
from edgecnn.defaults import DEFAULT_MODEL, DEFAULT_OPSET
from edgecnn.errors import EdgeCNNError
from edgecnn.export import keras_inspect, pixel_conventions
from edgecnn.export.graph import (
    check_inference_graph,
    fold_batch_reshapes,
    fold_conv_affine,
    fold_input_scale,
    fuse_hard_activations,
)
from edgecnn.export.keras_io import (
    KERAS_SUFFIXES,
    REFERENCE_NAMES,
    load_keras,
    reference_name,
    reference_sha256,
)
from edgecnn.export.onnx_metadata import load_proto, metadata_of, set_metadata
from edgecnn.export.saved_model import tree_sha256
from edgecnn.runtime.metadata import ModelInfo, Preprocessing
from edgecnn.runtime.outputs import class_count, output_kind
from edgecnn.store.files import check_overwrite, write_bytes
from edgecnn.store.locations import default_folder
from edgecnn.train import KERAS_FILE, read_train_info, train
from edgecnn.variants import ONNX_FILE
from edgecnn.zoo import get_spec, list_models

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
log = logging.getLogger(__name__)
# A user's model of Fashion-MNIST's shape and class count is assumed to be for it, and told so.
DEFAULT_DATASET, DEFAULT_DATASET_SHAPE = "fashion_mnist", (28, 28, 1)


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
    pixels = info.reads_pixels
    signature = (tf.TensorSpec((None, *info.input_shape), tf.uint8 if pixels else tf.float32, name=INPUT_NAME),)
    head = {"softmax": tf.nn.softmax, "sigmoid": tf.math.sigmoid}[info.output]
    pre = info.preprocessing
    # a model that takes bytes itself is fed them as they are; any other gets the preprocessing
    # the Predictor would apply, here in the graph (its scale is folded into the first conv)
    as_given = keras_inspect.input_dtype(model) == "uint8" and (pre.scale, pre.offset) == (1.0, 0.0)

    @tf.function(input_signature=signature)
    def serve(x):
        if pixels and not as_given:
            x = tf.cast(x, tf.float32) * pre.scale + pre.offset
        y = model(x, training=False)
        return {OUTPUT_NAME: head(y) if info.keras_logits else y}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    _inline_captured_constants(proto, serve.get_concrete_function(), tf)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    fold_batch_reshapes(proto)
    fold_conv_affine(proto)
    fold_input_scale(proto)
    fuse_hard_activations(proto)
    proto.producer_name = "edgecnn"
    proto.producer_version = __version__
    set_metadata(proto, info)
    onnx.checker.check_model(proto)
    check_inference_graph(proto)
    return proto


def _inline_captured_constants(proto: Any, concrete: Any, tf: Any) -> None:
    """Write into the graph the constants tf2onnx left as graph inputs.

    Keras 3 keeps some layer constants -- a ``Normalization``'s mean and variance -- as tensors
    that the traced function captures, not as variables, and tf2onnx turns each into an input
    of the graph; quantization and the Predictor then meet a model with three inputs. Their
    values are known: they become initializers. Any other extra input is an error, so that no
    unusable file is written.
    """
    from onnx import numpy_helper

    captured = {inner.name: outer for outer, inner in concrete.graph.captures
                if outer.dtype != tf.resource}
    for value in list(proto.graph.input):
        if value.name != INPUT_NAME and value.name in captured:
            proto.graph.initializer.append(numpy_helper.from_array(captured[value.name].numpy(), value.name))
            proto.graph.input.remove(value)
    extra = [v.name for v in proto.graph.input if v.name != INPUT_NAME]
    if extra:
        raise EdgeCNNError(f"The exported graph needs inputs besides the image ({', '.join(extra)}); "
                           "edgecnn exports models of one image input.")


def _input_shape(model: Any, path: Path, given: tuple[int, ...] | None) -> tuple[int, int, int]:
    """The (H, W, C) the export is for: the model's own, or ``given`` for a model of variable
    size (``(None, None, 1)`` with global pooling), which an ONNX file for the edge fixes."""
    full = keras_inspect.input_shape(model)
    own = tuple(full[1:])
    if len(own) != 3:
        raise EdgeCNNError(f"{path}: expected one NHWC image input, got input shape {full}.")
    if given is None:
        if not all(isinstance(d, int) for d in own):
            raise EdgeCNNError(f"{path} reads images of variable size {full}; name the "
                               "size to export for with --input-shape H,W,C (e.g. 28,28,1).")
        return own
    if len(given) != 3 or min(given) < 1:
        raise EdgeCNNError(f"--input-shape must be H,W,C (three positive integers), got {list(given)}.")
    clash = [i for i, (a, b) in enumerate(zip(own, given)) if a is not None and a != b]
    if clash:
        raise EdgeCNNError(f"{path} reads images of shape {own}; --input-shape {','.join(map(str, given))} "
                           "does not fit it (it is for models of variable size).")
    return tuple(given)


def _user_model_info(
    model: Any, path: Path, *, shape: tuple[int, int, int], exported: keras_inspect.Output,
    class_names: list[str] | None, preprocessing: Preprocessing | None, dataset: Dataset | None,
    output: str | None, uint8_input: bool | None,
) -> ModelInfo:
    """Metadata for a user's .keras file: each fact read from the model or the dataset, asked
    for when neither says, and logged so that nothing is guessed silently."""
    units = exported.units
    kind = keras_inspect.check_head(exported.head, output, units, path)
    n_classes = class_count(units)
    if class_names:
        names, origin = tuple(class_names), "given"
    elif dataset is not None:
        names, origin = dataset.class_names, f"from dataset '{dataset.name}'"
    else:
        names, origin = tuple(str(i) for i in range(n_classes)), "numbered: none given"
    if len(names) != n_classes:
        raise EdgeCNNError(
            f"{path} predicts {n_classes} classes but {len(names)} class names were {origin}."
        )
    if dataset is not None and dataset.image_shape[2] != shape[2]:
        raise EdgeCNNError(
            f"{path} reads {shape[2]}-channel images, dataset '{dataset.name}' has "
            f"{dataset.image_shape[2]}."
        )
    rescaling = keras_inspect.own_rescaling(model)
    if preprocessing is not None:
        pre_origin = f"given: pixel * {preprocessing.scale:.10g} + {preprocessing.offset:.10g}"
    elif rescaling:
        preprocessing, pre_origin = Preprocessing(scale=1.0), f"scale 1: the model has a {rescaling}"
    elif dataset is not None:
        # refuses the default when the model clearly wants another convention
        measured = pixel_conventions.check_default(model, dataset, kind, output_kind(units), path.name)
        preprocessing, pre_origin = Preprocessing(), f"the default pixels / 255 ({measured}; give --scale otherwise)"
    else:
        preprocessing, pre_origin = Preprocessing(), "the default pixels / 255 (give --scale otherwise)"
    compute = keras_inspect.compute_dtype(model)
    if compute == "float16":
        log.info(f"{path.name}: its layers compute in float16 (mixed precision): model.onnx is its "
                 "exact export and is judged by the fp16 gates, as half-precision rounding sets "
                 "how close any file can come to Keras's answers.")
    takes_bytes = keras_inspect.input_dtype(model) == "uint8"
    pixels = takes_bytes if uint8_input is None else uint8_input
    log.info(f"{path.name}: {kind} head"
             + (f", {'sigmoid' if units == 1 else 'softmax'} appended to its logits" if kind == "logits" else "")
             + f"; {n_classes} classes {origin}; preprocessing {pre_origin}"
             + (f"; {_pixels_note(takes_bytes, uint8_input)}" if pixels or takes_bytes else "") + ".")
    return ModelInfo(
        name=path.stem, class_names=names, input_shape=shape, preprocessing=preprocessing,
        output=output_kind(units), keras_logits=kind == "logits",
        dataset=dataset.name if dataset is not None else None, keras_source=str(path.resolve()),
        compute=compute, input_dtype="uint8" if pixels else "float32",
    )


def _pixels_note(takes_bytes: bool, uint8_input: bool | None) -> str:
    """What the log says of the file's input type, and why."""
    if uint8_input is None:
        return "its input is uint8: model.onnx reads uint8 pixels as they are (--float-input for float)"
    if uint8_input:
        return "model.onnx reads uint8 pixels, its preprocessing in the graph (--uint8-input)"
    return "its input is uint8, model.onnx reads preprocessed float32 (--float-input)"


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
    dataset: str | Dataset | None = None,
    output: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    train_options: dict[str, Any] | None = None,
    needs_data: bool = False,
    output_name: str | None = None,
    uint8_input: bool | None = None,
) -> ExportResult:
    """Export a zoo model (training it first when needed) or a user's ``.keras`` / ``.h5`` file.

    A user's file is copied beside the variants as ``model.keras`` (``model.h5``), the reference
    validation and the benchmark use, and what the export needs is read from it: its head (softmax,
    sigmoid, or logits, which get the activation appended), whether it rescales its own input,
    and the class names of ``dataset``, which is recorded in the model for later commands.

    Args:
        model: a zoo name, or a path to a ``.keras`` file.
        out_dir: destination folder (default ``exported/<name>``).
        opset: ONNX opset.
        force: replace existing files that differ (the ONNX file, ``model.keras``).
        retrain: train a zoo model again even if ``out_dir/model.keras`` exists.
        unsafe: load a ``.keras`` file with Keras's safe mode off (runs code stored in it).
        class_names, preprocessing: override what the model or the dataset says.
        dataset: the data a user's model is for (a name or a path); zoo models are trained on
            it when given.
        output: a user's model's head when its last layer does not say: softmax, sigmoid, logits.
        input_shape: (H, W, C) to export a user's model of variable input size for.
        train_options: keyword arguments for :func:`edgecnn.train.train`.
        needs_data: the steps after export (calibration, validation) need the model's data: a
            user's model for which none is named or implied is refused before anything is written.
        output_name: of a user's model with several outputs, the class head to export (default:
            its one softmax output, when exactly one is).
        uint8_input: the file reads uint8 pixels, its preprocessing in the graph (an app feeds
            camera bytes as they are); False: preprocessed float32. Default: uint8 for a model
            whose own input is uint8.
    """
    out_dir = output_folder(model, out_dir)
    trained = False
    if _is_keras_file(model):
        net, info, keras_path = _user_model(Path(model), out_dir, unsafe=unsafe, input_shape=input_shape,
                                            dataset=dataset, needs_data=needs_data, class_names=class_names,
                                            preprocessing=preprocessing, output=output, force=force,
                                            output_name=output_name, uint8_input=uint8_input)
    else:
        keras_path = out_dir / KERAS_FILE
        if retrain or not keras_path.exists():
            log.info(f"Retraining {model}..." if retrain
                     else f"Training {model} (no trained model at {keras_path})...")
            train(model, out_dir=out_dir, force=force,
                  **{"dataset": dataset, **(train_options or {})})
            trained = True
        net, info = _zoo_model(out_dir, keras_path, unsafe, class_names, preprocessing)
        if uint8_input:
            info = info.replace(input_dtype="uint8")
    info = info.replace(keras_sha256=reference_sha256(keras_path), edgecnn_version=__version__)
    onnx_path = out_dir / ONNX_FILE
    if onnx_path.exists() and not force and _same_export(onnx_path, info, opset):
        return ExportResult(onnx_path, keras_path, info, written=False, trained=trained)
    proto = keras_to_onnx(net, info, opset)
    data = proto.SerializeToString()
    written = check_overwrite(onnx_path, data, force)
    if written:
        write_bytes(onnx_path, data)
    return ExportResult(onnx_path, keras_path, info, written=written, trained=trained)


def _user_model(path: Path, out_dir: Path, *, unsafe: bool, input_shape: tuple[int, ...] | None,
                dataset: str | Dataset | None, needs_data: bool, class_names: list[str] | None,
                preprocessing: Preprocessing | None, output: str | None, force: bool,
                output_name: str | None = None, uint8_input: bool | None = None) -> tuple[Any, ModelInfo, Path]:
    """A user's model loaded, what it says of itself read (and said), and the file copied into
    the export as its reference: (model, info, reference path)."""
    net = load_keras(path, unsafe=unsafe)
    shape = _input_shape(net, path, input_shape)
    found = keras_inspect.outputs(net, shape)  # a subclassed model or a SavedModel runs once for it
    exported = keras_inspect.class_output(found, output_name, path)
    head_name = exported.name if len(found) > 1 else None
    if head_name is not None:
        others = [o.name for o in found if o is not exported]
        log.info(f"{path.name}: exporting its output '{head_name}'"
                 + (" (named)" if output_name else " (its one softmax head)")
                 + f"; left out: {', '.join(others)} (--output-name picks another).")
        net = keras_inspect.single(net, head_name)
    if dataset is None and shape == DEFAULT_DATASET_SHAPE and exported.units == len(FASHION_CLASSES):
        dataset = DEFAULT_DATASET
        log.info(f"{path.name}: no dataset named; using the default '{DEFAULT_DATASET}', which "
                 "fits its 28x28x1 input and 10 classes (name another with --dataset).")
    if dataset is None and needs_data:
        raise EdgeCNNError(
            f"{path.name} does not say what data it was trained on, and calibration and "
            "validation need its images; name the dataset with --dataset (a name, a .npz or an "
            "image folder)."
        )
    data = dataset if isinstance(dataset, Dataset) or dataset is None else load_dataset(
        dataset, image_size=shape[:2])
    info = _user_model_info(net, path, shape=shape, exported=exported, class_names=class_names,
                            preprocessing=preprocessing, dataset=data, output=output,
                            uint8_input=uint8_input)
    info = info.replace(keras_output=head_name)
    keras_path = out_dir / reference_name(path)
    if path.resolve() != keras_path.resolve():
        # a reference of another format (model.keras, model.h5, model.savedmodel) is another model
        other = [out_dir / n for n in REFERENCE_NAMES if n != keras_path.name and (out_dir / n).exists()]
        for stale in other:
            if check_overwrite(stale, None, force):
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        _copy_reference(path, keras_path, force)
    return net, info, keras_path


def _zoo_model(out_dir: Path, keras_path: Path, unsafe: bool, class_names: list[str] | None,
               preprocessing: Preprocessing | None) -> tuple[Any, ModelInfo]:
    """A trained zoo model and what its training recorded, with the overrides asked for."""
    info = read_train_info(out_dir)
    if info is None:
        raise EdgeCNNError(f"{out_dir} has {KERAS_FILE} but no training record; retrain it.")
    net = load_keras(keras_path, unsafe=unsafe)
    if class_names or preprocessing:
        info = info.replace(
            **({"class_names": tuple(class_names)} if class_names else {}),
            **({"preprocessing": preprocessing} if preprocessing else {}),
        )
    return net, info


def _copy_reference(source: Path, dest: Path, force: bool) -> None:
    """The user's model, byte for byte, as the export's reference (a SavedModel folder whole:
    copied beside, then renamed into place)."""
    if not source.is_dir():
        content = source.read_bytes()
        if check_overwrite(dest, content, force):
            write_bytes(dest, content)
        return
    if dest.exists() and tree_sha256(dest) == tree_sha256(source):
        return
    check_overwrite(dest, None, force)  # another folder there: refused unless force
    part = dest.with_name(f".{dest.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(source, part)
    shutil.rmtree(dest, ignore_errors=True)
    part.rename(dest)


def _is_keras_file(model: str) -> bool:
    path = Path(model)
    return path.suffix.lower() in KERAS_SUFFIXES or path.exists()


def output_folder(model: str, out_dir: str | Path | None = None) -> Path:
    """Where the export of ``model`` goes, checked before any work (training takes minutes)."""
    if not _is_keras_file(model) and model not in list_models():
        get_spec(model)  # raises the "unknown model" error with suggestions
    folder = Path(out_dir or default_folder(Path(model).stem if _is_keras_file(model) else model))
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
