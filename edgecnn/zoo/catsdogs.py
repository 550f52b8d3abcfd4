"""Cats vs dogs with augmentation and dropout (Deep Learning with Python, 2nd ed., ch. 8)."""

from typing import Any

from edgecnn._optional import require
from edgecnn.runtime.metadata import Preprocessing
from edgecnn.zoo.registry import Recipe, register_model


@register_model(
    name="catsdogs-aug",
    dataset="catsdogs",
    input_shape=(180, 180, 3),
    recipe=Recipe("rmsprop", "binary", epochs=100, batch_size=32),
    params=991_041,
    description="RandomFlip/Rotation/Zoom, Rescaling, Conv32-64-128-256-256, Dropout 0.5, "
    "Dense1 sigmoid",
    tutorial_result="val 0.80-0.85",
    source="Deep Learning with Python, 2nd ed., ch. 8",
    # The model rescales inside (Rescaling(1/255)), so it reads raw 0-255 floats.
    preprocessing=Preprocessing(scale=1.0, offset=0.0),
    output="sigmoid",
)
def catsdogs_aug() -> Any:
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.2)],
        name="augmentation",
    )
    inputs = keras.Input(shape=(180, 180, 3))
    x = augmentation(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    for filters in (32, 64, 128, 256):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(256, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="catsdogs_aug")
