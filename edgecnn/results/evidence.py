"""Earlier evidence that a narrower validation did not measure again.

``edgecnn validate`` measures this machine's class unless told more, while the export before it
may have measured five emulated classes, one of them failing. Writing the narrower report over
the broader one would erase that failure. Instead the rows it did not measure are carried over,
each with the time it was measured and whether it still describes these files: the same file
(sha256), the same Keras model and the same test data. Rows that still hold count in the
verdict as if measured now; rows about other files are shown as outdated and judge nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.results.report import REPORT_JSON, Report, read_report
from edgecnn.store.files import sha256_file

log = logging.getLogger(__name__)


def read_previous(folder: Path) -> Report | None:
    """The report about to be replaced, or None when there is none or it cannot be read."""
    if not (folder / REPORT_JSON).is_file():
        return None
    try:
        return read_report(folder)
    except EdgeCNNError as exc:
        log.warning(f"  its rows are not carried over: {exc}")
        return None


def carry_earlier_rows(report: Report, previous: Report | None) -> None:
    """Add to ``report`` the rows of ``previous`` for classes it did not measure.

    Each carried cell gets ``carried``, its ``measured_at`` and ``still_valid``: true when file,
    Keras model and test data are the same, false when any differs, None when the earlier
    report predates file hashes (its failures still count: a failure is never dropped for want
    of proof that it still applies). A carried failure that is not known to be outdated marks
    the variant failed on that class.
    """
    if previous is None:
        return
    same_data = (previous.keras_sha256, previous.dataset, previous.test_images) == (
        report.keras_sha256, report.dataset, report.test_images)
    earlier = {v.file: v for v in previous.variants}
    carried: list[str] = []
    for variant in report.variants:
        before = earlier.get(variant.file)
        if before is None:
            continue
        same_file = None if not before.sha256 else before.sha256 == variant.sha256
        valid = False if not same_data or same_file is False else same_file
        for row, cell in before.by_isa.items():
            if row in variant.by_isa:
                continue
            variant.by_isa[row] = replace(cell, carried=True, still_valid=valid,
                                          measured_at=cell.measured_at or previous.validated_at)
            if row not in carried:
                carried.append(row)
            if valid is not False and not cell.passed:
                variant.failed_on.append(row)
                variant.passed = False
                variant.gate += f" (broken on {row} when measured earlier)"
    report.isa_rows += [r for r in carried if r not in report.isa_rows]
    report.isa_not_measured = {k: v for k, v in report.isa_not_measured.items() if k not in carried}
    if carried:
        log.info(f"  kept the earlier rows of {', '.join(carried)} (not measured in this run)")


def changed_files(folder: Path, report: Report) -> list[str]:
    """The variant files of ``report`` that are no longer the files it measured: missing, or
    another sha256 (an export interrupted after writing new variants and before its new
    report). Empty when the report still describes the folder, or predates file hashes."""
    changed = []
    for variant in report.variants:
        if not variant.sha256:
            continue
        path = folder / variant.file
        if not path.is_file() or sha256_file(path) != variant.sha256:
            changed.append(path.name)
    return changed


def check_current(folder: Path, report: Report) -> None:
    """Refuse, in one line, a report that describes other files than those beside it."""
    changed = changed_files(folder, report)
    if changed:
        raise EdgeCNNError(
            f"{folder / REPORT_JSON} is stale: {', '.join(changed)} changed since it was "
            "validated; run edgecnn validate (or re-run the export) before reading it."
        )
