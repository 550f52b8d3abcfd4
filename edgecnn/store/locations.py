"""Where an export is, and where the things about it live.

The one convention tied to the current folder is the default home of exports, ``exported/NAME``
(as ``git`` works in the folder it is run in); it is written here only. Everything about an
export -- variants, report, page and its latest benchmark result -- lives inside its folder, so
library code finds it from the folder alone, wherever the command runs.
"""

from __future__ import annotations

import re
from pathlib import Path

EXPORTS = Path("exported")
BENCH_JSON = "bench.json"


def file_stem(name: str) -> str:
    """``name`` (a model's name, from its metadata: untrusted) as one file name in a folder: any
    character but letters, digits and ``._@-`` becomes ``-``, so that no name leaves the folder
    (``../x``) or carries a control character."""
    stem = re.sub(r"[^A-Za-z0-9._@-]", "-", name).lstrip(".")
    return stem or "model"


def default_folder(name: str) -> Path:
    """Where the export of ``name`` (a zoo name, or a user model's file stem) goes by default."""
    return EXPORTS / name


def export_folder(model: str | Path) -> Path:
    """The export folder ``model`` means: an existing folder as given, else ``exported/MODEL``."""
    path = Path(model)
    return path if path.is_dir() else default_folder(str(model))


def bench_result_path(folder: str | Path, device: str | None = None) -> Path:
    """The export's own copy of its latest ``edgecnn bench`` result, which its page shows: of
    this machine (``bench.json``), or of a device (``bench@NAME.json``)."""
    return Path(folder) / (BENCH_JSON if device is None else f"bench@{device}.json")


def device_bench_paths(folder: str | Path) -> dict[str, Path]:
    """{device name: its bench result} of every device the export was timed on."""
    return {p.stem.partition("@")[2]: p for p in sorted(Path(folder).glob("bench@*.json"))}
