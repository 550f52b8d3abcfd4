"""Typed records to and from JSON: one converter, which checks every field's type on read.

A record is a dataclass whose fields are JSON-shaped: ``str``, ``int``, ``float``, ``bool``,
``Any``, ``X | None``, ``list[X]``, ``dict[str, X]`` and other records. Reading builds the
record field by field and names the first field that is missing or of the wrong type, so a file
edited by hand, truncated or written by another program is one line, never a ``KeyError``
three modules later. Unknown keys are ignored (a newer minor writer may add one); missing keys
take the field's default, which is how an older file reads as the current record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from edgecnn.errors import EdgeCNNError

R = TypeVar("R")


class RecordError(EdgeCNNError):
    """A JSON file that is not the record it should be: names the file and the field."""


def from_json(cls: type[R], data: Any, source: str = "") -> R:
    """``data`` (parsed JSON) as a ``cls`` record; :class:`RecordError` naming ``source`` (the
    file) and the field if not."""
    try:
        return _convert(cls, data, "")
    except _FieldError as exc:
        field, message = exc.args
        where = field.lstrip(".") or "the top level"
        raise RecordError(f"{source or cls.__name__}: {where} {message}.") from None


def to_json(record: Any) -> dict[str, Any]:
    """A record as plain JSON-ready data (every field written, defaults included)."""
    return dataclasses.asdict(record)


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON of ``path``, or one line saying why ``what`` could not be read."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RecordError(f"Cannot read {what} {path}: {reason}.") from None


def finite(value: float, name: str, *, positive: bool = False) -> None:
    """Refuse a NaN, an infinity or (with ``positive``) a value <= 0 where a measurement goes."""
    if not math.isfinite(value) or (positive and value <= 0):
        raise _FieldError(f".{name}", f"must be a finite{' positive' if positive else ''} number, not {value!r}")


class _FieldError(ValueError):
    """(field path, what is wrong with it)."""


def _describe(value: Any) -> str:
    text = json.dumps(value)[:40] if isinstance(value, (str, int, float, bool, type(None))) else ""
    return f"{type(value).__name__} {text}".strip()


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, where)
            except _FieldError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        return _record(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise _FieldError(where, f"should be a list, got {_describe(value)}")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _FieldError(where, f"should be an object, got {_describe(value)}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _FieldError(where, f"should be a number, got {_describe(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(where, f"should be an integer, got {_describe(value)}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise _FieldError(where, f"should be a {tp.__name__}, got {_describe(value)}")
        return value
    raise TypeError(f"no JSON conversion for {tp!r}")  # a record declared with another type


def _record(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _FieldError(where, f"should be an object, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in value:
            kwargs[field.name] = _convert(hints[field.name], value[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _FieldError(where, f"has no '{field.name}'")
    try:
        return cls(**kwargs)
    except _FieldError as exc:  # a record's own check (__post_init__) of a value's range
        raise _FieldError(where + exc.args[0], exc.args[1]) from None
