"""What one failed cell of the variant x CPU-class matrix means for the whole run.

Kept apart from validation so that the CLI can check ``--require`` without importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgecnn.errors import EdgeCNNError
from edgecnn.variants import VARIANT_KINDS

if TYPE_CHECKING:  # the CLI imports this module to check --require; the records stay unloaded
    from edgecnn.results.report import Report


def check_required(require: str | Sequence[str]) -> tuple[str, ...]:
    """The required variant kinds from a list or a comma-separated string; unknown names are an
    error."""
    names = [n.strip() for n in (require.split(",") if isinstance(require, str) else require)]
    unknown = [n for n in names if n not in VARIANT_KINDS]
    if unknown or not all(names):
        raise EdgeCNNError(f"Unknown variant {unknown or names} to require; use any of "
                           f"{', '.join(VARIANT_KINDS)}.")
    return tuple(dict.fromkeys(names))


def verdict(report: Report) -> tuple[list[str], dict[str, list[str]]]:
    """(failures, not_for): what one failed cell means for the whole run.

    A variant that breaks a gate on a class is *not for that class*: the report and the page
    show it, and no recommendation names it there. The run fails -- ``edgecnn validate`` and
    ``export`` exit 3 -- only for something a user must act on: a required variant (fp32 and
    int8 by default, ``--require``) fails on any class; a measured class has no passing variant
    left; a variant is stale (made from another Keras model); or a variant's class names,
    preprocessing or input differ from the export's record (its answers would be mislabelled).
    """
    failures, not_for = [], {}
    for v in report.variants:
        if v.mismatch:
            failures.append(f"{v.file}: {v.gate}")
        elif v.stale:
            failures.append(f"{v.file} is stale ({v.gate})")
        elif v.failed_on and v.variant in report.required:
            failures.append(f"{v.file} (required) fails on {', '.join(v.failed_on)}")
        elif v.failed_on:
            not_for[v.variant] = list(v.failed_on)
    for row in report.isa_rows:
        cells = [c for v in report.variants if (c := v.by_isa.get(row)) is not None and c.counts]
        if cells and not any(c.passed for c in cells):
            failures.append(f"no variant passes on {row}")
    return failures, not_for
