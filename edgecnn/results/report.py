"""The validation report: typed records, its schema version, one read and one write.

``report.json`` is what every later reader trusts -- ``edgecnn report``, ``edgecnn zoo``, the
report page, a narrower ``validate`` carrying rows forward -- so it has one shape, declared here.
Reports written before the schema had a version (``edgecnn.report/0``: no ``schema`` key, no
hashes, flips or verdict) still read: their missing fields take the defaults below, which mean
"not recorded", and their verdict is the ``passed`` they recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.accuracy.agreement import Flips
from edgecnn.names import Name
from edgecnn.results.bench import BenchMachine
from edgecnn.results.schema import RecordError, from_json, read_json, to_json
from edgecnn.store.files import write_json

REPORT_SCHEMA = "edgecnn.report/1"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


class Place(Name):
    """How a cell's outputs were obtained: on this machine's own CPU, under qemu-user, or on a
    device reached over SSH (natively there). A ``str``, so reports hold the plain word."""

    NATIVE = "native"
    EMULATED = "emulated"
    DEVICE = "device"


@dataclass
class Cell:
    """One variant on one row (a CPU class, or a device): how it compares with Keras there, and
    whether it passed.

    ``how`` is native, emulated or device, ``where`` where in words, ``isa`` the CPU class the
    process that ran it saw (None in reports written before they were recorded). ``carried``
    cells come from an earlier report (a narrower run did not measure the row again);
    ``still_valid`` says whether they describe these files (None: the earlier report predates
    file hashes, so its failures still count).
    """

    accuracy: float
    accuracy_delta: float
    agreement: float
    max_abs_diff: float
    images: int
    emulated: bool
    passed: bool
    breaches: list[str] = field(default_factory=list)
    flips: Flips | None = None
    measured_at: str | None = None
    carried: bool = False
    still_valid: bool | None = True
    how: str | None = None
    where: str | None = None
    isa: str | None = None
    # How the cell was decided, in words: measured on its own images, or the outputs of row
    # ``same_as``, which it computed the same as on a probe (edgecnn.accuracy.same_outputs).
    decided: str | None = None
    same_as: str | None = None

    @property
    def counts(self) -> bool:
        """Whether the cell is evidence about these files (measured now, or carried and not outdated)."""
        return self.still_valid is not False


@dataclass
class Drift:
    """A tensor of a quantized variant against fp32's, by signal-to-quantization-noise ratio."""

    tensor: str
    sqnr_db: float


@dataclass
class VariantRow:
    """One variant file: its numbers on this machine's row, every class it was measured on, and
    its verdict."""

    file: str
    variant: str
    size_bytes: int
    compression: float
    images: int
    accuracy: float
    accuracy_delta: float
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    per_class_accuracy: dict[str, float | None]
    per_class_delta: dict[str, float | None]
    classes_called_out: list[str]
    by_isa: dict[str, Cell]
    gate: str
    passed: bool
    sha256: str | None = None
    quantization: dict[str, Any] | None = None
    confusion_delta: list[list[int]] | None = None
    breaches: list[str] = field(default_factory=list)
    flips: Flips | None = None
    failed_on: list[str] = field(default_factory=list)
    stale: bool = False
    mismatch: list[str] = field(default_factory=list)
    layer_drift: list[Drift] | None = None


@dataclass
class Machine:
    """Where the report was measured: the host's class and the runtime that measured it."""

    host_isa: str
    onnxruntime: str
    native_row: str
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class DeviceRecord:
    """A device a row was measured on (``validate --device``): where, what it is, and what its
    onnxruntime warned of there (a CPU it could not read runs other kernels than its class's)."""

    address: str
    isa: str
    machine: BenchMachine | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Every variant of one export against its Keras model, on every class measured."""

    model: str
    dataset: str
    test_images: int
    keras_file: str
    keras_accuracy: float
    gates: dict[str, float]
    machine: Machine
    isa_rows: list[str]
    variants: list[VariantRow]
    passed: bool
    schema: str = REPORT_SCHEMA
    dataset_provenance: str | None = None
    keras_sha256: str | None = None
    warnings: list[str] = field(default_factory=list)
    tutorial_result: str | None = None
    tutorial_dataset: str | None = None
    isa_not_measured: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    validated_at: str | None = None
    failures: list[str] = field(default_factory=list)
    not_for: dict[str, list[str]] = field(default_factory=dict)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    # {path: sha256} of the Python files imported (--import-module) to load the Keras model
    user_code: dict[str, str] = field(default_factory=dict)
    # the reference was loaded with --unsafe: its own code (Lambda layers, a SavedModel's graph) ran
    unsafe: bool = False

    def variant(self, kind: str) -> VariantRow | None:
        """The row of variant ``kind`` (fp32, int8, dynint8, fp16), if the export has one."""
        return next((v for v in self.variants if v.variant == kind), None)


def read_report(path: str | Path) -> Report:
    """The report at ``path`` (a ``report.json`` or the export folder holding it), or one line
    saying why it cannot be read: missing, not JSON, a field missing or of the wrong type, or a
    schema this edgecnn does not know."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    data = read_json(path, "the validation report")
    # (not an object at all: the record's reading says so)
    schema = data.get("schema", "edgecnn.report/0") if isinstance(data, dict) else REPORT_SCHEMA
    if schema not in ("edgecnn.report/0", REPORT_SCHEMA):
        raise RecordError(
            f"{path} is not a validation report this edgecnn reads (schema {str(schema)[:40]!r}; "
            f"it reads {REPORT_SCHEMA} and older); re-run edgecnn validate, or upgrade edgecnn.")
    report = from_json(Report, data, str(path))
    if schema == "edgecnn.report/0":
        _upgrade_v0(report)
    return report


def write_report(folder: str | Path, report: Report) -> Path:
    """Write ``folder/report.json`` atomically."""
    return write_json(Path(folder) / REPORT_JSON, to_json(report))


def _upgrade_v0(report: Report) -> None:
    """An unversioned report recorded each cell's pass and the overall one, nothing more."""
    report.schema = REPORT_SCHEMA
    for variant in report.variants:
        variant.failed_on = [row for row, cell in variant.by_isa.items() if not cell.passed]
    if not report.passed:
        report.failures = ["validated before edgecnn recorded the reasons; re-run edgecnn validate"]
