"""The 10-filter CNN of Do it! 딥러닝 입문, with and without dropout."""

from typing import Any

from edgecnn._optional import require
from edgecnn.zoo.registry import Recipe, register_model

_RECIPE = Recipe("adam", "sparse", epochs=20, batch_size=32, validation_split=0.2, split_seed=42)
_COMMON = dict(
    dataset="mnist",
    input_shape=(28, 28, 1),
    recipe=_RECIPE,
    params=197_210,
    tutorial_result="val ≈ 0.985",
    source="Do it! 딥러닝 입문",
)


def _build(dropout: float | None, name: str):
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    stack = [
        keras.Input((28, 28, 1)),
        layers.Conv2D(10, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
    ]
    if dropout:
        stack.append(layers.Dropout(dropout))
    stack += [layers.Dense(100, activation="relu"), layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack, name=name)


@register_model(
    name="doit-cnn", description="Conv10 same-Pool, Dense100, Dense10 softmax", **_COMMON
)
def doit_cnn() -> Any:
    return _build(None, "doit_cnn")


@register_model(
    name="doit-cnn-dropout",
    description="Conv10 same-Pool, Dropout 0.5, Dense100, Dense10 softmax",
    **_COMMON,
)
def doit_cnn_dropout() -> Any:
    return _build(0.5, "doit_cnn_dropout")
