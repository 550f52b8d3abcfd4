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
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgeCNNError(f"Could not read targets file {path}: {exc}") from exc
    _no_nul(data, path, "")
    return data


def _no_nul(value: Any, path: str | Path, where: str) -> None:
    """Refuse a NUL character in any string of the file: no host, path or interpreter has one,
    and passed on to ssh or the OS it ends the string early or raises."""
    if isinstance(value, str) and "\x00" in value:
        raise EdgeCNNError(f"{path}: {where.lstrip('.') or 'a value'} holds a NUL character.")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _no_nul(item, path, f"{where}.{key}")
