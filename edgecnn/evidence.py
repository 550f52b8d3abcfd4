"""Earlier evidence that a narrower validation did not measure again.

``edgecnn validate`` measures this machine's class unless told more, while the export before it
may have measured five emulated classes, one of them failing. Writing the narrower report over
the broader one would erase that failure. Instead the rows it did not measure are carried over,
each with the time it was measured and whether it still describes these files: the same file
(sha256), the same Keras model and the same test data. Rows that still hold count in the
verdict as if measured now; rows about other files are shown as outdated and judge nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError

log = logging.getLogger(__name__)


def read_previous(path: Path) -> dict[str, Any] | None:
    """The report about to be replaced, or None when there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning(f"  {path} could not be read; its rows are not carried over")
        return None
    return previous if isinstance(previous, dict) else None


def carry_earlier_rows(report: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Add to ``report`` the rows of ``previous`` for classes it did not measure.

    Each carried cell gets ``carried: true``, its ``measured_at`` and ``still_valid``: true
    when file, Keras model and test data are the same, false when any differs, None when the
    earlier report predates file hashes (its failures still count: a failure is never dropped
    for want of proof that it still applies). A carried failure that is not known to be outdated
    marks the variant failed on that class.
    """
    if not previous or not isinstance(previous.get("variants"), list):
        return
    same_data = all(previous.get(k) == report[k] for k in ("keras_sha256", "dataset", "test_images"))
    earlier = {v.get("file"): v for v in previous["variants"] if isinstance(v, dict)}
    carried: list[str] = []
    for variant in report["variants"]:
        before = earlier.get(variant["file"])
        if not before or not isinstance(before.get("by_isa"), dict):
            continue
        same_file = None if not before.get("sha256") else before["sha256"] == variant["sha256"]
        valid = False if not same_data or same_file is False else same_file
        for row, cell in before["by_isa"].items():
            if row in variant["by_isa"] or not isinstance(cell, dict) or "passed" not in cell:
                continue
            variant["by_isa"][row] = {**cell, "carried": True, "still_valid": valid,
                                      "measured_at": cell.get("measured_at") or previous.get("validated_at")}
            if row not in carried:
                carried.append(row)
            if valid is not False and not cell["passed"]:
                variant["failed_on"].append(row)
                variant["passed"] = False
                variant["gate"] += f" (broken on {row} when measured earlier)"
    report["isa_rows"] += [r for r in carried if r not in report["isa_rows"]]
    report["isa_not_measured"] = {k: v for k, v in report["isa_not_measured"].items() if k not in carried}
    if carried:
        log.info(f"  kept the earlier rows of {', '.join(carried)} (not measured in this run)")


def counts(cell: dict[str, Any] | None) -> bool:
    """Whether a cell is evidence about these files (measured now, or carried and not outdated)."""
    return cell is not None and cell.get("still_valid", True) is not False


def changed_files(folder: Path, report: dict[str, Any]) -> list[str]:
    """The variant files of ``report`` that are no longer the files it measured: missing, or
    another sha256 (an export interrupted after writing new variants and before its new
    report). Empty when the report still describes the folder, or predates file hashes."""
    from edgecnn.files import sha256_file

    changed = []
    for variant in report.get("variants", []):
        recorded = variant.get("sha256") if isinstance(variant, dict) else None
        if not recorded:
            continue
        path = folder / str(variant.get("file"))
        if not path.is_file() or sha256_file(path) != recorded:
            changed.append(path.name)
    return changed


def check_current(folder: Path, report: dict[str, Any]) -> None:
    """Refuse, in one line, a report that describes other files than those beside it."""
    changed = changed_files(folder, report)
    if changed:
        raise EdgeCNNError(
            f"{folder / 'report.json'} is stale: {', '.join(changed)} changed since it was "
            "validated; run edgecnn validate (or re-run the export) before reading it."
        )
