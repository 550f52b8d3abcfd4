"""The model zoo registry: each tutorial convnet with its recipe and its published result.

Builders import Keras only when called, so listing the zoo never loads TensorFlow.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.metadata import Preprocessing


@dataclass(frozen=True)
class Recipe:
    """How the tutorial trained the model.

    ``loss`` is ``sparse`` (integer labels), ``categorical`` (one-hot) or ``binary``;
    ``validation_split`` holds out that fraction of the training images (seeded).
    """

    optimizer: str
    loss: str
    epochs: int
    batch_size: int = 32
    validation_split: float | None = None
    split_seed: int = 42
    early_stopping_patience: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registered zoo model."""

    name: str
    build: Callable[[], Any]
    dataset: str
    input_shape: tuple[int, int, int]
    recipe: Recipe
    params: int
    description: str
    tutorial_result: str
    source: str
    preprocessing: Preprocessing = Preprocessing()
    output: str = "softmax"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(**fields: Any) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator: register the decorated builder under ``fields['name']`` with its spec."""

    def decorate(build: Callable[[], Any]) -> Callable[[], Any]:
        spec = ModelSpec(build=build, **fields)
        if spec.name in _REGISTRY:
            raise ValueError(f"zoo model {spec.name!r} registered twice")
        _REGISTRY[spec.name] = spec
        return build

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The spec of a zoo model; an unknown name lists what exists."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise EdgeCNNError(
            f"Unknown model '{name}'.{hint} Available: {', '.join(sorted(_REGISTRY))} "
            "(or a path to a .keras file)."
        )
    return _REGISTRY[name]


def create_model(name: str) -> Any:
    """A fresh, untrained Keras model of the named zoo architecture."""
    return get_spec(name).build()
