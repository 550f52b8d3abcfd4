"""Loading ``.keras`` files safely: the one door through which edgecnn reads a Keras model."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError, one_line

# What a .keras archive may inflate to before anything is read from it: Keras reads config.json
# and metadata.json whole into memory (a 311 KB file whose config inflated to 300 MB cost 0.9 GB),
# and the weights of the convnets edgecnn is for are megabytes, not gigabytes.
MAX_CONFIG_BYTES = 16 * 2**20
MAX_ENTRY_BYTES = 2 * 2**30
MAX_ARCHIVE_BYTES = 4 * 2**30
_JSON_ENTRIES = ("config.json", "metadata.json")


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
    _check_sizes(path)
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


def _check_sizes(path: Path) -> None:
    """Refuse an archive whose entries would inflate past the limits, from its directory alone
    (nothing is decompressed). A zip's directory can lie about sizes; Keras reads through
    zipfile, which stops at the declared size, so the declared sizes bound what is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise EdgeCNNError(f"{path} is not a readable .keras archive: {exc}") from exc
    total = 0
    for entry in entries:
        limit = MAX_CONFIG_BYTES if entry.filename in _JSON_ENTRIES else MAX_ENTRY_BYTES
        if entry.file_size > limit:
            raise EdgeCNNError(
                f"{path}: its entry {entry.filename!r} inflates to {entry.file_size:,} bytes, more "
                f"than the {limit:,} edgecnn reads from a .keras file."
            )
        total += entry.file_size
    if total > MAX_ARCHIVE_BYTES:
        raise EdgeCNNError(
            f"{path} inflates to {total:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} edgecnn "
            "reads from a .keras file."
        )
