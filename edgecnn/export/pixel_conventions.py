"""Which pixel preprocessing a user's model was trained with, measured rather than assumed.

A model without its own Rescaling/Normalization layer says nothing about what it expects: the
default ``pixels / 255`` may be wrong, and every gate then passes, because every variant agrees
with a Keras reference that is itself fed wrong pixels (a model trained on ``x / 127.5 - 1``
measured 0.507 instead of 0.831). So the Keras model is measured under the common conventions on
held-out *training* images (never the test set, which validation judges with); when another
convention is clearly better than the default, the export stops and names the flags for it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edgecnn.data import Dataset
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.metadata import Preprocessing
from edgecnn.runtime.outputs import activate, to_probabilities

log = logging.getLogger(__name__)
SAMPLE = 1000
# Better than the default by this much before the default is called wrong: at least 5 pp, and
# far beyond chance for the images there are (two conventions scored on n images differ by up to
# sqrt(2 * 0.25 / n) = 71/sqrt(n) pp by chance alone; 300/sqrt(n) is over 4 of those: 9.5 pp on
# 1,000 images, 39 pp on 60). A model trained on [-1, 1] loses about 30 pp under / 255.
CLEARLY_BETTER_PP = 5.0
NOISE_PP = 300.0
# Conventions this close to the best are as good as it, as far as SAMPLE images can tell: the
# first of them in the order of ``conventions`` (the simpler one) is named.
SAME_PP = 2.0


def conventions(data: Dataset) -> dict[str, Preprocessing]:
    """The conventions tried, by name: the default first."""
    pixels = data.x_train.astype(np.float64)
    mean, std = float(pixels.mean()), float(pixels.std()) or 1.0
    return {
        "pixels / 255": Preprocessing(),
        "[-1, 1] (pixels / 127.5 - 1)": Preprocessing(scale=1 / 127.5, offset=-1.0),
        "raw 0-255": Preprocessing(scale=1.0, offset=0.0),
        f"the dataset's mean/std ((pixels - {mean:.1f}) / {std:.1f})":
            Preprocessing(scale=1 / std, offset=-mean / std),
    }


def measure(model: Any, data: Dataset, head: str, output: str) -> dict[str, float]:
    """Keras accuracy under each convention on SAMPLE training images (or all there are) drawn
    with a fixed seed."""
    picked = data.subset(train=SAMPLE, seed=0)
    out = {}
    for name, pre in conventions(data).items():
        raw = model.predict(pre.apply(picked.x_train), batch_size=256, verbose=0)
        probs = to_probabilities(activate(raw, output) if head == "logits" else raw, output)
        out[name] = float((probs.argmax(1) == picked.y_train).mean())
    return out


def check_default(model: Any, data: Dataset, head: str, output: str, source: str) -> str:
    """Refuse the default ``pixels / 255`` when another convention is clearly better; else the
    measurements in words, for the export's log."""
    accuracy = measure(model, data, head, output)
    images = min(SAMPLE, len(data.y_train))
    needed = max(CLEARLY_BETTER_PP, NOISE_PP / images ** 0.5)
    default, *_ = accuracy
    top = max(accuracy.values())
    best = next(name for name, acc in accuracy.items() if (top - acc) * 100 < SAME_PP)
    words = ", ".join(f"{name} {acc:.1%}" for name, acc in accuracy.items())
    if (accuracy[best] - accuracy[default]) * 100 >= needed:
        pre = conventions(data)[best]
        raise EdgeCNNError(
            f"{source} looks trained on {best}, not the default {default}: Keras scores "
            f"{accuracy[best]:.1%} with it and {accuracy[default]:.1%} with the default on "
            f"{images} training images ({words}). Pass --scale {pre.scale:.10g} --offset "
            f"{pre.offset:.10g} (or --scale {1 / 255:.10g} to keep the default)."
        )
    return f"measured on {images} training images: {words}"
