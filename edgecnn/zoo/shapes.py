"""The 8x8 triangle/square/circle toy net from a study note on Keras Conv2D."""

from typing import Any

from edgecnn._optional import require
from edgecnn.zoo.registry import Recipe, register_model


@register_model(
    name="shapes-toy",
    dataset="shapes",
    input_shape=(8, 8, 1),
    recipe=Recipe("adam", "sparse", epochs=30, batch_size=32),
    params=178,
    description="8x8 input, Conv2 3x3-Pool-Conv3 2x2-Pool, Dense8, Dense3 softmax",
    tutorial_result="—",
    source="a study note on Keras Conv2D",
)
def shapes_toy() -> Any:
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(2, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Conv2D(3, 2, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(8, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ],
        name="shapes_toy",
    )
