"""Train a zoo model with its tutorial recipe and save it, with what the export needs to know."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.data import Dataset, load_dataset
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.metadata import ModelInfo
from edgecnn.runtime.outputs import to_probabilities
from edgecnn.store.files import atomic_path, check_overwrite, write_json
from edgecnn.store.locations import default_folder
from edgecnn.zoo import ModelSpec, get_spec

KERAS_FILE = "model.keras"
TRAIN_FILE = "train.json"
_LOSSES = {
    "sparse": "sparse_categorical_crossentropy",
    "categorical": "categorical_crossentropy",
    "binary": "binary_crossentropy",
}


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    keras_path: Path
    info: ModelInfo
    test_accuracy: float
    val_accuracy: float | None
    epochs_run: int
    seconds: float
    history: dict[str, list[float]]


def model_info_for(spec: ModelSpec, data: Dataset) -> ModelInfo:
    """The metadata a model trained from ``spec`` on ``data`` carries into its exports."""
    return ModelInfo(
        name=spec.name,
        class_names=data.class_names,
        input_shape=spec.input_shape,
        preprocessing=spec.preprocessing,
        output=spec.output,
        dataset=data.name,
    )


def check_compatible(spec: ModelSpec, data: Dataset, net: Any) -> None:
    """Refuse data whose image shape or class count does not fit the architecture."""
    if data.image_shape != spec.input_shape:
        raise EdgeCNNError(
            f"{spec.name} expects images of shape {spec.input_shape}, but dataset "
            f"'{data.name}' has {data.image_shape}."
        )
    units = net.output_shape[-1]
    n_classes = len(data.class_names)
    if units != (1 if spec.output == "sigmoid" else n_classes) or n_classes < 2:
        raise EdgeCNNError(
            f"{spec.name} has a {units}-unit {spec.output} head, which does not fit dataset "
            f"'{data.name}' with {n_classes} classes."
        )


def _split_validation(x, y, fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def train(
    model: str,
    *,
    dataset: str | Dataset | None = None,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    force: bool = False,
    verbose: int = 1,
) -> TrainResult:
    """Train a zoo model with its tutorial recipe.

    Args:
        model: zoo model name.
        dataset: dataset name/path or a loaded Dataset; defaults to the model's own.
        out_dir: where ``model.keras`` and ``train.json`` go (default ``exported/<model>``).
        epochs, batch_size: override the recipe.
        limit: train on a seeded random subset of this many training images.
        seed: seeds weights, shuffling and subsets, so runs repeat.
        force: replace an existing ``model.keras``.
        verbose: Keras's progress output (0 silent, 1 bars, 2 a line per epoch).
    """
    spec = get_spec(model)
    out_dir = Path(out_dir or default_folder(spec.name))
    keras_path = out_dir / KERAS_FILE
    check_overwrite(keras_path, None, force)
    if isinstance(dataset, Dataset):
        data = dataset
    else:
        image_size = spec.input_shape[:2]
        data = load_dataset(dataset or spec.dataset, image_size=image_size)
    if limit is not None:
        data = data.subset(train=limit, seed=seed)
    recipe = spec.recipe
    epochs = epochs or recipe.epochs
    batch_size = batch_size or recipe.batch_size
    if epochs < 1 or batch_size < 1:
        raise EdgeCNNError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}.")

    keras = require("keras", "Training")
    keras.utils.set_random_seed(seed)
    net = spec.build()
    check_compatible(spec, data, net)
    net.compile(optimizer=recipe.optimizer, loss=_LOSSES[recipe.loss], metrics=["accuracy"])
    started = time.perf_counter()
    history = _fit(keras, net, spec, data, epochs, batch_size, verbose)
    seconds = time.perf_counter() - started

    info = model_info_for(spec, data)
    test_probs = to_probabilities(
        net.predict(spec.preprocessing.apply(data.x_test), batch_size=256, verbose=0), spec.output
    )
    test_accuracy = float((test_probs.argmax(1) == data.y_test).mean())
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    val_acc = hist.get("val_accuracy")
    best_val = max(val_acc) if val_acc else None

    with atomic_path(keras_path) as tmp:
        net.save(tmp)
    write_json(out_dir / TRAIN_FILE, {
        "model": spec.name, "info": json.loads(info.to_json()), "recipe": asdict(recipe),
        "epochs_requested": epochs, "epochs_run": len(hist.get("loss", [])), "batch_size": batch_size,
        "seed": seed, "train_images": int(len(data.x_train)), "test_images": int(len(data.x_test)),
        "test_accuracy": test_accuracy, "best_val_accuracy": best_val,
        "tutorial_result": spec.tutorial_result, "seconds": round(seconds, 1), "history": hist,
    })
    return TrainResult(
        keras_path, info, test_accuracy, best_val, len(hist.get("loss", [])), seconds, hist
    )


def _fit(keras: Any, net: Any, spec: ModelSpec, data: Dataset, epochs: int, batch_size: int, verbose: int) -> Any:
    """The tutorial's fit: its validation split and early stopping where it has them. Returns
    Keras's History."""
    recipe = spec.recipe
    x = spec.preprocessing.apply(data.x_train)
    y = _targets(data.y_train, recipe.loss, len(data.class_names))
    fit_args: dict[str, Any] = {}
    if recipe.validation_split:
        (x, y), (x_val, y_val) = _split_validation(x, y, recipe.validation_split, recipe.split_seed)
        fit_args["validation_data"] = (x_val, y_val)
        if recipe.early_stopping_patience:
            fit_args["callbacks"] = [
                keras.callbacks.EarlyStopping(
                    patience=recipe.early_stopping_patience, restore_best_weights=True
                )
            ]
    return net.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose, **fit_args)


def _targets(labels: np.ndarray, loss: str, n_classes: int) -> np.ndarray:
    if loss == "categorical":
        return np.eye(n_classes, dtype=np.float32)[labels]
    if loss == "binary":
        return labels.astype(np.float32)
    return labels


def read_train_info(out_dir: str | Path) -> ModelInfo | None:
    """The ModelInfo saved by ``train`` next to ``model.keras``, if there is one."""
    path = Path(out_dir) / TRAIN_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())["info"]
    except (ValueError, KeyError) as exc:
        raise EdgeCNNError(f"{path} is not a valid edgecnn training record: {exc}") from exc
    return ModelInfo.from_json(json.dumps(info))
