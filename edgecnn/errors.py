"""The one exception type for problems a user can fix (bad input, missing data, bad options).

The CLI prints these as one line and exits non-zero; any other exception is a bug and keeps
its traceback.
"""


class EdgeCNNError(Exception):
    """A user-facing error: the message says what failed, what was received and what is valid."""


class MissingDependencyError(EdgeCNNError, ImportError):
    """An optional dependency is not installed; the message names the pip command that fixes it."""


class GateFailedError(EdgeCNNError):
    """A model variant broke an accuracy tolerance."""


class OverwriteRefusedError(EdgeCNNError):
    """A file exists and differs from what would be written; replacing it needs ``force``."""


def last_line(output: str | None, default: str = "no output") -> str:
    """What a child process said last: the last non-empty line of its output (where Python's
    traceback and most tools put the cause), at most 300 characters; ``default`` when silent."""
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else default


def one_line(exc: BaseException, *, first: bool = False) -> str:
    """A library exception's message as one line of at most 300 characters, for an error that
    wraps it: its last line (where onnxruntime and numpy put the cause), or its first with
    ``first`` (Keras), or the exception's type when it has no message."""
    if not first:
        return last_line(str(exc), type(exc).__name__)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
