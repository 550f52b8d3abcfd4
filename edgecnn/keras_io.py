"""Loading ``.keras`` files safely: the one door through which edgecnn reads a Keras model."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError, one_line


def load_keras(path: str | Path, unsafe: bool = False) -> Any:
    """Load a ``.keras`` file with Keras's safe mode on unless ``unsafe``.

    Safe mode refuses Lambda layers, which can run arbitrary code stored in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeCNNError(f"Keras model not found: {path}")
    if not zipfile.is_zipfile(path):
        raise EdgeCNNError(
            f"{path} is not a .keras file (not a zip archive: truncated, or another format)."
        )
    keras = require("keras", "Loading a Keras model")
    try:
        return keras.saving.load_model(path, safe_mode=not unsafe, compile=False)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise EdgeCNNError(
                f"{path} contains a Lambda layer, which can execute arbitrary code when loaded; "
                "Keras's safe mode refused it. Load it only if you trust the file "
                "(edgecnn export --unsafe)."
            ) from exc
        raise EdgeCNNError(f"Could not load {path} as a Keras model: {exc}") from exc
    except Exception as exc:  # Keras raises KeyError, TypeError, AttributeError... for bad files
        raise EdgeCNNError(
            f"Could not load {path} as a Keras model: {one_line(exc, first=True)}"
        ) from exc
