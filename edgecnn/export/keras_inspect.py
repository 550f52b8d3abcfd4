"""What a user's Keras model says about itself: its head and whether it rescales its own input.

Read from the layers, so that nothing about a model brought by its user is guessed silently:
the export states each finding, and asks when the model does not say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError

HEADS = ("softmax", "sigmoid", "logits")
# Layers that only pass images through unchanged at inference (augmentation is off then).
_TRANSPARENT = ("InputLayer", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                "RandomContrast", "RandomBrightness", "RandomCrop")


def is_subclassed(model: Any) -> bool:
    """A model whose ``call`` is Python code: its layers are not a graph, and their order says
    nothing about which runs last."""
    return type(model).__name__ not in ("Sequential", "Functional")


def input_shape(model: Any) -> tuple:
    """The model's input shape with the batch dimension: its own, or for a subclassed model the
    one it was built with (recorded in the file)."""
    shape = getattr(model, "input_shape", None)
    if shape is None and hasattr(model, "get_build_config"):
        shape = (model.get_build_config() or {}).get("input_shape")
    if shape is None:
        raise EdgeCNNError(f"{type(model).__name__}: cannot tell its input shape (never built).")
    return tuple(shape)


@dataclass(frozen=True)
class Output:
    """One output of a model: its name, its width and its head (None where the layers do not
    say: a subclassed model, a SavedModel)."""

    name: str
    units: int
    head: str | None


def outputs(model: Any, shape: tuple[int, ...]) -> list[Output]:
    """Every output of ``model`` for images of ``shape`` (H, W, C), read once here for every
    reader (export, validation, bench, the SavedModel path): a single tensor, a list or a dict.

    A functional model's outputs are named by their layers; a subclassed model or a SavedModel
    runs once on a blank image, and its list or dict entries are named by index or key.
    """
    if not is_subclassed(model):
        names = output_names(model)
        if len(names) < 2:
            return [Output(names[0], int(model.output_shape[-1]), head(model))]
        singles = {name: single(model, name) for name in names}
        return [Output(name, int(one.output_shape[-1]), head(one)) for name, one in singles.items()]
    import numpy as np

    result = model(np.zeros((1, *shape), np.float32), training=False)
    if isinstance(result, dict):
        return [Output(str(k), _width(v), None) for k, v in sorted(result.items())]
    if isinstance(result, (list, tuple)):
        return [Output(str(i), _width(v), None) for i, v in enumerate(result)]
    return [Output(getattr(model, "name", "output"), _width(result), None)]


def _width(tensor: Any) -> int:
    return int(tensor.shape[-1]) if len(tensor.shape) else 1


def output_names(model: Any) -> list[str]:
    """The names of a functional model's outputs (a one-output or subclassed model: its own name)."""
    outputs = getattr(model, "outputs", None) if not is_subclassed(model) else None
    if not outputs or len(outputs) < 2:
        return [getattr(model, "name", "output")]
    return [t._keras_history.operation.name for t in outputs]


def class_output(found: list[Output], wanted: str | None, path: Any) -> Output:
    """The output to export: the only one; else ``wanted`` when named, else the one softmax head
    of 2+ units. Anything else is one line asking for ``--output-name``."""
    if len(found) < 2:
        if wanted is not None and wanted != found[0].name:
            raise EdgeCNNError(f"{path} has one output; --output-name {wanted} names none of it.")
        return found[0]
    listed = ", ".join(f"'{o.name}' ({o.head or 'unknown head'}, {o.units} units)" for o in found)
    if wanted is not None:
        named = [o for o in found if o.name == wanted]
        if not named:
            raise EdgeCNNError(f"{path} has no output named '{wanted}'; its outputs: {listed}.")
        return named[0]
    softmax = [o for o in found if o.head == "softmax" and o.units >= 2]
    if len(softmax) != 1:
        raise EdgeCNNError(f"{path} has {len(found)} outputs ({listed}); name the class head to "
                           "export with --output-name.")
    return softmax[0]


def single(model: Any, name: str | None) -> Any:
    """The model with only its output ``name`` (the model itself when None): what every reader
    of a several-output model runs, so that each reads the same head."""
    if name is None:
        return model
    if is_subclassed(model):
        return _Picked(model, name)
    keras = require("keras", "Loading a Keras model")
    index = output_names(model).index(name)
    return keras.Model(model.inputs, model.outputs[index], name=model.name)


class _Picked:
    """One entry of a subclassed model's or a SavedModel's list or dict of outputs, called as
    the model is: ``net(x, training=False)`` and ``net.predict(x)``."""

    layers: list[Any] = []

    def __init__(self, model: Any, key: str) -> None:
        self._model, self._key = model, key

    def __getattr__(self, name: str) -> Any:  # input_shape, name, get_build_config...
        return getattr(self._model, name)

    def __call__(self, x: Any, training: bool = False) -> Any:
        result = self._model(x, training=training)
        key = int(self._key) if isinstance(result, (list, tuple)) and self._key.isdigit() else self._key
        try:
            return result[key]
        except (KeyError, IndexError, TypeError):
            raise EdgeCNNError(f"{type(self._model).__name__} has no output '{self._key}', which the "
                               "export recorded: not the model it was exported from.") from None

    def predict(self, x: Any, batch_size: int = 256, verbose: int = 0) -> Any:
        import numpy as np

        return np.concatenate([np.asarray(self(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


def head(model: Any) -> str | None:
    """``softmax``, ``sigmoid`` or ``logits`` from the last layer's activation; None if unknown
    (always for a subclassed model). A model wrapped in another (a fixed ``Input`` around a
    variable-size net) is looked into, as for the rescaling."""
    if is_subclassed(model):
        return None
    last = _flat_layers(model)[-1]
    kind = type(last).__name__
    if kind == "Softmax":
        return "softmax"
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else None)
    if kind == "Activation" or activation is not None:
        return {"softmax": "softmax", "sigmoid": "sigmoid", "linear": "logits"}.get(name)
    return None


def input_dtype(model: Any) -> str:
    """``uint8`` for a model whose input layer takes bytes (``Input(dtype="uint8")``, or a
    SavedModel signature of uint8), which converts them itself; else ``float32``. A subclassed
    model does not say: float32."""
    own = getattr(model, "signature_dtype", None)
    if own is None and not is_subclassed(model):
        own = model.inputs[0].dtype
    return "uint8" if str(own) == "uint8" else "float32"


def compute_dtype(model: Any) -> str:
    """``float16`` when any layer computes in half precision (a mixed-precision policy), else
    ``float32``."""
    layers = [model] if is_subclassed(model) else _flat_layers(model)
    halves = [getattr(layer, "compute_dtype", None) == "float16" for layer in layers]
    return "float16" if any(halves) else "float32"


def own_rescaling(model: Any) -> str | None:
    """The name of the Rescaling / Normalization layer the model applies to its raw input, if any.

    Such a model wants raw pixel values: edgecnn's own preprocessing must then be scale 1.
    A subclassed model's layers do not say what it applies first: None.
    """
    if is_subclassed(model):
        return None
    for layer in _flat_layers(model):
        kind = type(layer).__name__
        if kind in ("Rescaling", "Normalization"):
            return f"{kind} layer '{layer.name}'"
        if kind not in _TRANSPARENT:
            return None
    return None


def _flat_layers(model: Any) -> list[Any]:
    """Layers in order, with nested Sequential/functional models (e.g. an augmentation block)
    opened up."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in ("Sequential", "Functional"):
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def check_head(found: str | None, declared: str | None, units: int, path: Any) -> str:
    """The head to export with: the declared one, else the one found; an unknown one is asked for."""
    if declared is not None and declared not in HEADS:
        raise EdgeCNNError(f"Unknown output kind '{declared}'; use one of {', '.join(HEADS)}.")
    kind = declared or found
    if kind is None:
        raise EdgeCNNError(
            f"{path}: cannot tell from its last layer whether it outputs softmax probabilities, "
            "a sigmoid or logits; say which (output=..., CLI --output)."
        )
    if kind == "softmax" and units < 2:
        raise EdgeCNNError(f"{path}: a softmax head needs 2 or more units, this one has {units}.")
    if kind == "sigmoid" and units != 1:
        raise EdgeCNNError(
            f"{path}: {units} sigmoid units are multi-label outputs, which edgecnn does not "
            "classify; a binary classifier has one sigmoid unit."
        )
    return kind
