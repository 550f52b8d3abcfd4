"""The benchmark result: typed records, its schema version, one read and one write.

Written by ``edgecnn bench``; read by ``bench-compare``, the report page and the Markdown/plot
renderers. A latency that is not a finite positive number is refused on read as well as on
write: a ratio of it would be a number that means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.names import Name
from edgecnn.results.schema import RecordError, finite, from_json, read_json, to_json
from edgecnn.store.files import sha256_file, write_json

BENCH_SCHEMA = "edgecnn.bench/1"


class EngineName(Name):
    """What a bench row timed: onnxruntime's bare session (with IO binding on a device), the
    Predictor, one of Keras's four ways to run a model, LiteRT or OpenVINO. A ``str``, so the
    result file holds the plain name."""

    ONNXRUNTIME = "onnxruntime"
    ONNXRUNTIME_IOBINDING = "onnxruntime-iobinding"
    PREDICTOR = "predictor"
    KERAS_EAGER = "keras-eager"
    KERAS_PREDICT = "keras-predict"
    KERAS_PREDICT_ON_BATCH = "keras-predict_on_batch"
    KERAS_TF_FUNCTION = "keras-tf.function"
    LITERT = "litert"
    OPENVINO = "openvino"

    @property
    def is_keras(self) -> bool:
        return self.value.startswith("keras-")


def is_keras(engine: str) -> bool:
    """Whether a row's engine is one of Keras's paths (rows read back hold plain strings)."""
    return engine in _KERAS_ENGINES


_KERAS_ENGINES = frozenset(e.value for e in EngineName if e.is_keras)


def keras_target(threads: int) -> str:
    """The target name of the Keras rows: TensorFlow's thread pools are fixed per process, so
    Keras runs on one thread count, named in its target."""
    return f"keras@{threads}t"


def is_keras_target(name: str) -> bool:
    return name.startswith("keras@")


@dataclass
class BenchMachine:
    """The machine the latencies were measured on."""

    cpu: str
    cores: int
    os: str
    versions: dict[str, str]
    cpu_flags: list[str] = field(default_factory=list)
    isa: str | None = None
    gpus: list[str] = field(default_factory=list)
    python: str | None = None
    arch: str | None = None  # platform.machine(): x86_64, aarch64
    board: str | None = None  # the board or machine Linux names (device tree or DMI)


@dataclass(frozen=True)
class TargetSettings:
    """A hardware target's session configuration: everything besides the model that changes
    latency. Declared here, where results record it; :class:`edgecnn.timing.targets.Target`
    adds the checks and the session it makes."""

    name: str
    provider: str = "cpu"
    provider_options: dict[str, Any] = field(default_factory=dict)
    intra_op_threads: int = 0  # 0: onnxruntime's default, every core
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    execution_mode: str = "sequential"
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class BenchTarget(TargetSettings):
    """A target as run: its settings and the intra-op threads it really used."""

    threads: int


@dataclass
class OpTime:
    """One node of the optimised graph in a profiling session: its op type and name, the median
    µs per call, and its share of the summed node time."""

    op: str
    node: str
    us: float
    share: float


# target -> variant -> batch (as a string, a JSON key) -> the nodes, slowest first
Profiles = dict[str, dict[str, dict[str, list[OpTime]]]]


@dataclass
class KerasSettings:
    """The Keras file the baseline timed, on how many threads, with which TensorFlow."""

    file: str
    threads: int
    tensorflow: str


@dataclass
class BenchSettings:
    """How every configuration was timed."""

    batches: list[int]
    warmup: int
    runs: int
    duration_s: float
    inputs: str
    min_runs: int = 10
    rounds: int = 1
    keras: KerasSettings | None = None


@dataclass
class BenchRow:
    """One (engine, variant, target, batch) configuration: latency percentiles, throughput and
    memory over every timed run of every round."""

    engine: str
    variant: str
    target: str
    provider: str
    threads: int
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    throughput_ips: float
    session_s: float
    first_run_ms: float
    rss_mb: float
    runs: int
    size_bytes: int | None = None
    copies_included: bool | None = None
    rounds: int = 1
    rss_delta_mb: float = 0.0
    peak_rss_mb: float | None = None
    round_p50_ms: list[float] = field(default_factory=list)
    min_ms: float | None = None
    std_ms: float | None = None
    speedup_vs_keras: float | None = None
    # "host" for a Keras/LiteRT row of a device run; None: it ran on the result's ``machine``
    ran_on: str | None = None

    def __post_init__(self) -> None:
        for name in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "throughput_ips"):
            finite(getattr(self, name), name, positive=True)


@dataclass
class BenchDevice:
    """The SSH device the onnxruntime rows were timed on (``edgecnn bench --device``)."""

    name: str
    address: str


@dataclass
class Check:
    """One goal of the benchmark, the value measured for it and whether it holds."""

    check: str
    goal: str
    detail: str
    value: float | None = None
    passed: bool | None = None


@dataclass
class PredictorOverhead:
    """The batch-1 Predictor against bare sessions on the same frames, timed in alternation:
    p50 of ``session`` (numpy preprocessing + ``run``, what an app writes without edgecnn),
    ``session_prepared`` (floats prepared before the call) and ``predictor``; ``ratio`` is
    predictor over session, ``ratio_strict`` over session_prepared."""

    file: str
    batch: int
    p50_ms: dict[str, float]
    runs: int
    ratio: float
    ratio_strict: float


@dataclass
class DeviceBench:
    """What a device answers ``edgecnn bench --device`` with (read through its schema: a
    device's answer is data to check)."""

    rows: list[BenchRow]
    overhead: dict[str, PredictorOverhead]
    machine: BenchMachine


@dataclass
class ColdStartRun:
    """The median of ``repeats`` fresh processes, each timing one step in seconds (only the
    steps it has), or the ``error`` a process printed."""

    repeats: int | None = None
    import_s: float | None = None
    session_s: float | None = None
    first_result_s: float | None = None
    total_s: float | None = None
    tensorflow_loaded: bool | None = None
    error: str | None = None


@dataclass
class ColdStart:
    """How long an app waits for its first answer: the runtime's import + session + first
    result, and beside it the floor of importing numpy + onnxruntime and TensorFlow's import."""

    runtime: ColdStartRun | None = None
    libraries_import: ColdStartRun | None = None
    tensorflow_import: ColdStartRun | None = None


@dataclass
class BenchResult:
    """Every configuration of one ``edgecnn bench`` run, with the machine and settings.

    ``machine`` is where the onnxruntime rows ran: this machine, or the ``device``. A device run
    records this machine as ``host_machine``, where its Keras and LiteRT rows ran.
    """

    created: str
    model: str
    files: list[str]
    machine: BenchMachine
    settings: BenchSettings
    targets: list[BenchTarget]
    results: list[BenchRow]
    schema: str = BENCH_SCHEMA
    # sha256 per file, in the order of ``files``: the page shows latency only for these files
    file_sha256: list[str] = field(default_factory=list)
    predictor_overhead: dict[str, PredictorOverhead] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profiles: Profiles | None = None
    cold_start: ColdStart | None = None
    keras_fastest: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    device: BenchDevice | None = None
    host_machine: BenchMachine | None = None

    def rows(self, **match: Any) -> list[BenchRow]:
        """The rows whose fields equal ``match``, e.g. ``rows(engine="onnxruntime", batch=1)``."""
        return [r for r in self.results if all(getattr(r, k) == v for k, v in match.items())]

    def measured(self, folder: str | Path) -> bool:
        """Whether these results are of the files now in ``folder``: by sha256 where they were
        recorded, else by the folder the files were in (results that predate the hashes)."""
        folder = Path(folder).resolve()
        if self.file_sha256:
            return len(self.file_sha256) == len(self.files) and all(
                (folder / Path(f).name).is_file() and sha256_file(folder / Path(f).name) == digest
                for f, digest in zip(self.files, self.file_sha256))
        return bool(self.files) and all(Path(f).resolve().parent == folder for f in self.files)

    def p50(self, **match: Any) -> float | None:
        """The lowest p50 of the rows matching ``match``; None when there is none."""
        found = [r.p50_ms for r in self.rows(**match)]
        return min(found) if found else None


def read_bench(path: str | Path) -> BenchResult:
    """The bench result at ``path``, or one line saying why it is not one this edgecnn reads."""
    data = read_json(path, "the bench result")
    schema = data.get("schema") if isinstance(data, dict) else BENCH_SCHEMA
    if schema != BENCH_SCHEMA:
        raise RecordError(f"{path} is not an edgecnn bench result ({BENCH_SCHEMA}); its schema is "
                          f"{str(schema)[:40]!r}.")
    return from_json(BenchResult, data, str(path))


def write_bench(path: str | Path, result: BenchResult) -> Path:
    """Write the result as JSON, atomically."""
    return write_json(path, to_json(result))
