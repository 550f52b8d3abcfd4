"""Names declared once, as enums whose members are their plain string value everywhere: in
JSON, in comparisons with the strings files hold, and printed (``enum.StrEnum``, which Python
3.10 lacks; a ``(str, Enum)`` member prints as ``Class.MEMBER`` in an f-string on 3.11)."""

from __future__ import annotations

from enum import Enum


class Name(str, Enum):
    """A name: ``str(member)``, ``f"{member}"`` and ``json.dumps(member)`` all give its value."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)
