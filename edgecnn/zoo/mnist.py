"""MNIST convnets from Deep Learning with Python (1st ed. §5.1, 2nd ed. ch. 8)."""

from typing import Any

from edgecnn._optional import require
from edgecnn.zoo.registry import Recipe, register_model


@register_model(
    name="mnist-convnet",
    dataset="mnist",
    input_shape=(28, 28, 1),
    recipe=Recipe("rmsprop", "categorical", epochs=5, batch_size=64),
    params=65_642,
    description="Sequential Conv32-Pool-Conv32-Pool-Conv64, Dense64, Dense10 softmax",
    tutorial_result="test acc 0.993",
    source="Deep Learning with Python, 1st ed., §5.1",
)
def mnist_convnet() -> Any:
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_convnet",
    )


@register_model(
    name="mnist-functional",
    dataset="mnist",
    input_shape=(28, 28, 1),
    recipe=Recipe("rmsprop", "sparse", epochs=5, batch_size=64),
    params=104_202,
    description="Functional Conv32-Pool-Conv64-Pool-Conv128, Dense10 softmax",
    tutorial_result="test acc 0.992",
    source="Deep Learning with Python, 2nd ed., ch. 8",
)
def mnist_functional() -> Any:
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mnist_functional")
