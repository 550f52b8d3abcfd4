"""Reading the targets TOML file, which declares targets and devices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's tables, or one line saying why it cannot be read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgeCNNError(f"Could not read targets file {path}: {exc}") from exc
