"""The Fashion-MNIST CNN of 혼자 공부하는 머신러닝+딥러닝, ch. 8."""

from typing import Any

from edgecnn._optional import require
from edgecnn.zoo.registry import Recipe, register_model


@register_model(
    name="fashion-cnn",
    dataset="fashion_mnist",
    input_shape=(28, 28, 1),
    recipe=Recipe(
        "adam", "sparse", epochs=20, batch_size=32, validation_split=0.2, split_seed=42,
        early_stopping_patience=2,
    ),
    params=333_526,
    description="Conv32 same-Pool-Conv64 same-Pool, Dense100, Dropout 0.4, Dense10 softmax",
    tutorial_result="val 0.9156, test 0.9094",
    source="혼자 공부하는 머신러닝+딥러닝, ch. 8",
)
def fashion_cnn() -> Any:
    keras = require("keras", "Building a zoo model")
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(100, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(10, activation="softmax"),
        ],
        name="fashion_cnn",
    )
