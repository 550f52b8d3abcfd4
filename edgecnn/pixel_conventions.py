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
# Better than the default by this much (percentage points, on SAMPLE images whose binomial noise
# is about 1.6 pp) before the default is called wrong.
CLEARLY_BETTER_PP = 5.0
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
    """Keras accuracy under each convention on SAMPLE training images drawn with a fixed seed."""
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
    default, *_ = accuracy
    top = max(accuracy.values())
    best = next(name for name, acc in accuracy.items() if (top - acc) * 100 < SAME_PP)
    words = ", ".join(f"{name} {acc:.1%}" for name, acc in accuracy.items())
    if (accuracy[best] - accuracy[default]) * 100 >= CLEARLY_BETTER_PP:
        pre = conventions(data)[best]
        raise EdgeCNNError(
            f"{source} looks trained on {best}, not the default {default}: Keras scores "
            f"{accuracy[best]:.1%} with it and {accuracy[default]:.1%} with the default on "
            f"{SAMPLE} training images ({words}). Pass --scale {pre.scale:.10g} --offset "
            f"{pre.offset:.10g} (or --scale {1 / 255:.10g} to keep the default)."
        )
    return f"measured on {SAMPLE} training images: {words}"
