"""Untrusted text made safe to print on a terminal.

Class names come from model files and dataset folders, file names from the user's disk: printed
raw, an escape sequence in one can clear the screen, move the cursor or forge a line of output.
Every such string goes through :func:`visible` on its way to a terminal (JSON output escapes
control characters by itself).
"""

from __future__ import annotations


def visible(text: object) -> str:
    """``text`` with every non-printable character (control codes, escape, line breaks, DEL,
    the C1 range, invisible separators) written as its Python escape; printable text, accents
    and other scripts included, is kept as it is."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
