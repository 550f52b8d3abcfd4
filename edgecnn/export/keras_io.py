"""Loading Keras files safely: the one door through which edgecnn reads a Keras model.

Keras 3's ``.keras`` archives and the legacy HDF5 files (``.h5``) of Keras 2 both load, with
Keras's safe mode on. An export keeps the user's file as it is (``model.keras`` or ``model.h5``
in the export folder): re-saving it would give other bytes on every run, and its sha256 is what
ties each variant to the model it came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import zipfile
from pathlib import Path
from typing import Any

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError, one_line
from edgecnn.export import keras_inspect
from edgecnn.export.saved_model import SavedModelNet, is_saved_model, tree_sha256
from edgecnn.store.files import sha256_file

# What a .keras archive may inflate to before anything is read from it: Keras reads config.json
# and metadata.json whole into memory (a 311 KB file whose config inflated to 300 MB cost 0.9 GB),
# and the weights of the convnets edgecnn is for are megabytes, not gigabytes.
MAX_CONFIG_BYTES = 16 * 2**20
MAX_ENTRY_BYTES = 2 * 2**30
MAX_ARCHIVE_BYTES = 4 * 2**30
_JSON_ENTRIES = ("config.json", "metadata.json")
HDF5_SUFFIXES = (".h5", ".hdf5")
KERAS_SUFFIXES = (".keras", *HDF5_SUFFIXES)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
log = logging.getLogger(__name__)
# Classes of the Python files the user asked to import (--import-module), by name: Keras finds
# a subclassed model's class here when it loads the file. Never filled implicitly.
_USER_OBJECTS: dict[str, Any] = {}
_IMPORTED: dict[str, str] = {}  # path -> sha256 of what was imported
# The reference model's name in an export folder, by format.
REFERENCE_NAMES = ("model.keras", "model.h5", "model.savedmodel")


def reference_name(source: str | Path) -> str:
    """The name the model ``source`` gets in an export folder (its format kept)."""
    if is_saved_model(source):
        return REFERENCE_NAMES[2]
    return REFERENCE_NAMES[1] if Path(source).suffix.lower() in HDF5_SUFFIXES else REFERENCE_NAMES[0]


def reference_file(folder: str | Path) -> Path:
    """The export's reference model: ``model.keras``, ``model.h5`` for a legacy model, or the
    ``model.savedmodel`` folder."""
    found = [Path(folder) / name for name in REFERENCE_NAMES if (Path(folder) / name).exists()]
    return found[0] if found else Path(folder) / REFERENCE_NAMES[0]


def reference_sha256(path: str | Path) -> str:
    """The reference's identity: a file's sha256, or a SavedModel folder's digest of its files."""
    return tree_sha256(path) if Path(path).is_dir() else sha256_file(path)


def import_user_code(paths: list[str | Path] | None) -> dict[str, str]:
    """Import the Python files the user named (``--import-module``), so that Keras can build the
    subclassed models and custom layers they define. Their code runs in this process: only on
    the user's explicit request, said in the output and recorded in the report. Returns
    {path: sha256} of everything imported so far."""
    for path in map(Path, paths or []):
        key = str(path.resolve())
        if key in _IMPORTED:
            continue
        if not path.is_file() or path.suffix != ".py":
            raise EdgeCNNError(f"--import-module {path}: not a Python file (.py) that exists.")
        if _installed(path.stem, path):
            raise EdgeCNNError(f"--import-module {path}: its name is the installed module '{path.stem}', which "
                               "edgecnn or its packages may import; rename the file.")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        log.warning(f"Importing {path} (--import-module): its code runs in this process; only for "
                    "files you trust.")
        name = f"edgecnn_user_{path.stem}_{digest[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.modules.setdefault(path.stem, module)  # a class saved as module.Class finds it
        try:
            spec.loader.exec_module(module)
        except SystemExit as exc:  # a training script's sys.exit: not edgecnn's exit status
            del sys.modules[name]
            raise EdgeCNNError(f"--import-module {path} exited (sys.exit({exc.code!r})) while it was imported: "
                               "name a file that defines the model's classes, not a script that runs.") from None
        except Exception as exc:
            del sys.modules[name]
            raise EdgeCNNError(f"--import-module {path} failed: {one_line(exc, first=True)}") from exc
        _USER_OBJECTS.update({k: v for k, v in vars(module).items()
                              if isinstance(v, type) and v.__module__ == name})
        _IMPORTED[key] = digest
    return dict(_IMPORTED)


def _installed(name: str, path: Path) -> bool:
    """Whether ``name`` is a module Python finds (imported already, or installed) other than the
    user's file ``path`` itself (found when the command runs in its folder)."""
    try:
        module = sys.modules.get(name)
        spec = importlib.util.find_spec(name) if module is None else None
    except (ImportError, ValueError):
        return False
    origin = getattr(module, "__file__", None) if module is not None else (spec.origin if spec else None)
    if module is None and spec is None:
        return False
    return origin is None or Path(origin).resolve() != path.resolve()


def imported_code() -> dict[str, str]:
    """{path: sha256} of the files imported with :func:`import_user_code` in this process."""
    return dict(_IMPORTED)


def load_keras(path: str | Path, unsafe: bool = False, output: str | None = None) -> Any:
    """Load a ``.keras`` or legacy ``.h5`` file with Keras's safe mode on unless ``unsafe``, or,
    only when ``unsafe``, a TensorFlow SavedModel folder's serving signature
    (:class:`edgecnn.export.saved_model.SavedModelNet`).
    ``output``: of a model with several outputs, the one exported (the model's ``keras_output``).

    Safe mode refuses Lambda layers, which can run arbitrary code stored in the file.
    """
    net = _load(Path(path), unsafe)
    if output is not None:
        # a subclassed model's or a SavedModel's outputs show only when run: checked at its call
        if not keras_inspect.is_subclassed(net) and output not in keras_inspect.output_names(net):
            raise EdgeCNNError(f"{path} has no output named '{output}', which the export recorded: "
                               "not the model it was exported from.")
        net = keras_inspect.single(net, output)
    return net


def _load(path: Path, unsafe: bool) -> Any:
    path = Path(path)
    if is_saved_model(path):
        return SavedModelNet(path, trusted=unsafe)
    if path.is_dir():
        raise EdgeCNNError(f"{path} is a folder with no saved_model.pb: name a .keras or .h5 file, or "
                           "a TensorFlow SavedModel folder.")
    if not path.is_file():
        raise EdgeCNNError(f"Keras model not found: {path}")
    hdf5 = _is_hdf5(path)
    if hdf5 and path.suffix.lower() not in HDF5_SUFFIXES:
        raise EdgeCNNError(f"{path} is an HDF5 file: name it .h5 (Keras reads the legacy format by "
                           "that suffix).")
    if not hdf5 and not zipfile.is_zipfile(path):
        raise EdgeCNNError(
            f"{path} is not a .keras or .h5 file (not a zip archive nor HDF5: truncated, or another "
            "format)."
        )
    if not hdf5:
        _check_sizes(path)
    keras = require("keras", "Loading a Keras model")
    try:
        return keras.saving.load_model(path, safe_mode=not unsafe, compile=False,
                                       custom_objects=dict(_USER_OBJECTS) or None)
    except Exception as exc:  # Keras raises ValueError, KeyError, TypeError... for bad files
        raise _load_error(path, exc) from exc


def _load_error(path: Path, exc: Exception) -> EdgeCNNError:
    """Keras's failure to load ``path`` as one line that says what to do."""
    text = str(exc)
    if isinstance(exc, (TypeError, ValueError)) and ("Could not locate class" in text or "custom_objects" in text):
        return EdgeCNNError(
            f"{path} uses a class Keras does not know ({_class_named(exc)}): a subclassed model "
            "or custom layer. Name the Python file that defines it with --import-module "
            "FILE.py (its code then runs here; only for files you trust).")
    if isinstance(exc, ValueError) and ("safe_mode" in text or "Lambda" in text):
        return EdgeCNNError(
            f"{path} contains a Lambda layer, which can execute arbitrary code when loaded; "
            "Keras's safe mode refused it. Load it only if you trust the file "
            "(edgecnn export --unsafe).")
    return EdgeCNNError(f"Could not load {path} as a Keras model: {one_line(exc, first=True)}")


def _class_named(exc: Exception) -> str:
    import re

    found = re.search(r"locate class '([^']+)'", str(exc))
    return found.group(1) if found else one_line(exc, first=True)[:80]


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE


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
