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
