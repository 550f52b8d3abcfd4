"""``edgecnn bench``: every variant x batch x target, Keras and optional engines in the same run.

All ratios a user reads (Predictor overhead, speed-up over Keras, int8 over fp32) come from
numbers measured in this one process, on the same inputs: real test images.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.data import load_dataset
from edgecnn.errors import EdgeCNNError
from edgecnn.export.keras_io import load_keras, reference_file
from edgecnn.results.bench import (
    BenchDevice,
    BenchMachine,
    BenchResult,
    BenchRow,
    BenchSettings,
    BenchTarget,
    Check,
    ColdStart,
    ColdStartRun,
    EngineName,
    KerasSettings,
    PredictorOverhead,
    Profiles,
    is_keras,
    keras_target,
)
from edgecnn.runners.ssh import SshDevice
from edgecnn.runtime import Predictor
from edgecnn.runtime import providers as _providers
from edgecnn.store.files import sha256_file
from edgecnn.store.locations import export_folder
from edgecnn.timing.coldstart import cold_start
from edgecnn.timing.engines import (
    keras_engines,
    litert_engines,
    litert_models,
    litert_workdir,
    openvino_engines,
)
from edgecnn.timing.machine import machine_info
from edgecnn.timing.measure import Budget
from edgecnn.timing.profile import profile_ops
from edgecnn.timing.rounds import (
    INPUT_BATCHES,
    Job,
    onnxruntime_jobs,
    predictor_overhead,
    run_rounds,
    target_info,
)
from edgecnn.timing.targets import Target
from edgecnn.variants import variant_files


def resolve_models(model: str | Path) -> tuple[list[Path], Path | None]:
    """The ONNX files to time and the Keras model beside them (None when absent).

    ``model`` is a zoo name (``exported/NAME``), a folder or one ``.onnx`` file.
    """
    path = Path(model) if Path(model).exists() else export_folder(model)
    if path.is_file() and path.suffix == ".onnx":
        files = [path]
    elif path.is_dir():
        files = variant_files(path)
    else:
        raise EdgeCNNError(
            f"Nothing to benchmark at '{model}': give a zoo name with an export under exported/, "
            "a folder of model*.onnx files, or one .onnx file."
        )
    keras = reference_file(files[0].parent)
    return files, keras if keras.exists() else None


def _inputs(info, dataset: str | None, count: int, seed: int) -> np.ndarray:
    name = dataset or info.dataset
    if not name:
        raise EdgeCNNError("The model does not name its dataset; name one for real inputs.")
    data = load_dataset(name, image_size=info.input_shape[:2])
    if len(data.x_test) < count:
        reps = -(-count // len(data.x_test))
        return np.concatenate([data.x_test] * reps)[:count]
    idx = np.random.default_rng(seed).choice(len(data.x_test), count, replace=False)
    return data.x_test[np.sort(idx)]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_benchmark(
    model: str | Path,
    *,
    targets: Sequence[Target],
    batches: Sequence[int] = (1, 8, 64),
    budget: Budget = Budget(),
    keras_baseline: bool = True,
    other_engines: bool = True,
    dataset: str | None = None,
    cold: bool = True,
    profile: bool = False,
    seed: int = 0,
    device: SshDevice | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> BenchResult:
    """Benchmark the variants of ``model``; returns the result (:class:`BenchResult`).

    Args:
        model: zoo name, export folder or ``.onnx`` file.
        targets: hardware targets to run onnxruntime on.
        batches: batch sizes.
        budget: warm-up and timed-run limits per configuration.
        keras_baseline: time Keras on the same inputs (needs the ``.keras`` file and TensorFlow).
        other_engines: also time LiteRT and OpenVINO when installed.
        dataset: input images (default: the model's dataset, test split).
        cold: measure runtime cold start in fresh processes.
        profile: also record per-operator times of every variant on each CPU target, at the
            smallest and largest batch, in separate profiling sessions.
        device: time the onnxruntime engines on this SSH device (:class:`SshDevice`) with its
            own onnxruntime, on the same inputs; Keras and LiteRT stay here, marked ``ran_on``
            "host".
        on_step: called before each configuration with a short description.
    """
    _check_request(targets, batches, device)
    files, keras_path = resolve_models(model)
    if device is not None:  # unreachable, or no runtime there: one line before any timing here
        device.check_ready()
    variants = {path: Predictor(path, providers="cpu").info for path in files}
    info = variants[files[0]]
    pixels = _inputs(info, dataset, max(batches) * INPUT_BATCHES, seed)
    floats = info.preprocessing.apply(pixels)  # Keras's input; the files read info.feed
    notes: list[str] = []
    # Here, onnxruntime's rows join the same rounds as the other engines; a device times its own
    jobs, overhead = ([], {}) if device is not None else _onnxruntime_here(
        files, variants, targets, pixels, budget, other_engines, notes, on_step)
    with contextlib.ExitStack() as stack:
        keras_info, keras_jobs = _keras_baseline(keras_path, info.keras_output, targets, keras_baseline,
                                                  other_engines, notes, stack)
        rows = run_rounds(jobs + keras_jobs, batches, pixels, floats, budget, on_step) if jobs or keras_jobs else []
    timed = _Timed(rows, overhead, BenchMachine(**machine_info()))
    if device is not None:
        timed = _on_device(device, timed, files, pixels, targets, batches, budget, bool(keras_info), notes, on_step)
    result = BenchResult(
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        model=info.name, files=[str(p) for p in files], file_sha256=[sha256_file(p) for p in files],
        machine=timed.machine,
        settings=BenchSettings(
            batches=list(batches), warmup=budget.warmup, runs=budget.runs,
            duration_s=budget.duration, min_runs=budget.min_runs, rounds=budget.rounds,
            inputs=f"{INPUT_BATCHES} distinct batches of real test images of "
                   f"{dataset or info.dataset}, cycled", keras=keras_info),
        targets=[BenchTarget(**t.to_dict(), threads=t.intra_op_threads or timed.machine.cores) for t in targets],
        results=timed.rows, predictor_overhead=timed.overhead, notes=list(dict.fromkeys(notes)),  # once each
        device=timed.device, host_machine=timed.host_machine)
    if device is not None and (profile or cold):
        result.notes.append("Per-op profile and cold start are measured on this machine only; "
                            "skipped for a device run.")
    elif profile:
        result.profiles = _profiles(files, variants, targets, pixels, batches, on_step)
    if cold and device is None:
        on_step("cold start (fresh processes)")
        result.cold_start = cold_start(files[0], tensorflow=_has("tensorflow"))
    add_speedups(result)
    result.checks = checks(result)
    return result


def _check_request(targets: Sequence[Target], batches: Sequence[int], device: SshDevice | None) -> None:
    """One line before any work: no target, a batch below 1, a provider this onnxruntime lacks
    (a device checks its own providers, before timing)."""
    if not targets:
        raise EdgeCNNError("No target to benchmark.")
    if not batches or min(batches) < 1:
        raise EdgeCNNError(f"Batch sizes must be >= 1, got {list(batches)}.")
    ort = require("onnxruntime", "Benchmarking")
    for target in targets if device is None else ():
        _providers.resolve(target.provider, ort.get_available_providers())


@dataclass
class _Timed:
    """The onnxruntime side of a run: its rows (with every other engine's), the Predictor's
    overhead per target, and the machine that timed them (a device, with this one as host)."""

    rows: list[BenchRow]
    overhead: dict[str, PredictorOverhead]
    machine: BenchMachine
    host_machine: BenchMachine | None = None
    device: BenchDevice | None = None


def _onnxruntime_here(files, variants, targets, pixels, budget, other_engines, notes,
                      on_step) -> tuple[list[Job], dict[str, PredictorOverhead]]:
    """This machine's onnxruntime (and OpenVINO) jobs, and the Predictor's overhead per target."""
    overhead = {}
    for target in targets:
        on_step(f"Predictor vs bare session, interleaved, {target.name}")
        overhead[target.name] = predictor_overhead(files[0], target, variants[files[0]], pixels, budget)
    jobs = onnxruntime_jobs(files, [variants[p] for p in files], targets)
    if other_engines and any(t.provider == "cpu" for t in targets):
        jobs += _openvino_jobs(files, variants, targets, notes)
    return jobs, overhead


def _on_device(device: SshDevice, here: _Timed, files, pixels, targets, batches, budget, keras_ran: bool,
               notes: list[str], on_step) -> _Timed:
    """The onnxruntime rows timed on ``device``, before this machine's (Keras, LiteRT) rows,
    which are marked as run on the host."""
    name, address = device.device.name, device.device.address
    on_step(f"onnxruntime on {name} ({address})")
    device_rows, overhead, device_machine = device.bench(files, pixels, targets, batches, budget)
    notes += [f"onnxruntime on {name} warned: {warning}" for warning in device.warnings]
    for row in here.rows:
        row.ran_on = "host"
    if keras_ran:
        notes.append(f"Keras and LiteRT ran on this machine ({here.machine.cpu}), onnxruntime on "
                     f"{name}: their latencies are not a ratio of one machine.")
    return _Timed(device_rows + here.rows, overhead, device_machine, here.machine,
                  BenchDevice(name, address))


def _keras_baseline(keras_path, output: str | None, targets, wanted: bool, other_engines: bool,
                    notes: list[str], stack: contextlib.ExitStack) -> tuple[KerasSettings | None, list[Job]]:
    """Keras's jobs (and LiteRT's, converted from it) on the most threads a CPU target uses, or
    a note saying why there are none. ``output``: the exported one of a model with several."""
    if not wanted:
        return None, []
    if keras_path is None:
        notes.append("Keras baseline skipped: no model.keras beside the ONNX files.")
        return None, []
    if not _has("tensorflow"):
        notes.append("Keras baseline skipped: TensorFlow not installed (pip install 'edgecnn[export]').")
        return None, []
    cpu = [t.threads for t in targets if t.provider == "cpu"]
    return _keras_jobs(keras_path, output, max(cpu) if cpu else os.cpu_count(), targets, other_engines, notes,
                       stack)


def _profiles(files, variants, targets, pixels, batches, on_step) -> Profiles:
    """Per-operator times of every variant on each CPU target, at the smallest and largest batch."""
    profiles: Profiles = {}
    for target in (t for t in targets if t.provider == "cpu"):
        for path in files:
            on_step(f"profiling {variants[path].variant} on {target.name}")
            feed = variants[path].feed(pixels)
            profiles.setdefault(target.name, {})[variants[path].variant] = {
                str(b): profile_ops(path, target, [feed[i * b:(i + 1) * b] for i in range(INPUT_BATCHES)])
                for b in sorted({min(batches), max(batches)})
            }
    return profiles


def _openvino_jobs(files, variants, targets, notes: list[str]) -> list[Job]:
    if not _has("openvino"):
        notes.append("OpenVINO skipped: not installed (pip install 'edgecnn[engines]').")
        return []
    return [(e, target_info(target), path.stat().st_size)
            for target in targets if target.provider == "cpu"
            for path in files[:2]
            for e in openvino_engines(path, variants[path].variant, target.threads, variants[path].reads_pixels)]


def _keras_jobs(keras_path, output, threads, targets, other_engines, notes, stack: contextlib.ExitStack):
    """Keras's inference paths (and LiteRT converted from the same model) as benchmark jobs."""
    tf = require("tensorflow", "The Keras baseline")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its setting
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()

    if keras_path.is_dir():  # a SavedModel: its signature is no Keras model to time
        notes.append("Keras baseline skipped: the reference is a TensorFlow SavedModel, not a Keras model.")
        return None, []
    model = load_keras(keras_path, output=output)
    tinfo = {"name": keras_target(threads), "provider": "tensorflow", "threads": threads}
    size = keras_path.stat().st_size
    jobs = [(e, tinfo, size) for e in keras_engines(model)]
    if other_engines:
        if _has("ai_edge_litert"):
            converted = litert_models(model, Path(stack.enter_context(litert_workdir())))
            for target in targets:
                if target.provider != "cpu":
                    continue
                lt = {"name": target.name, "provider": "litert", "threads": target.threads}
                jobs += [(e, lt, None) for e in litert_engines(converted, target.threads)]
        else:
            notes.append("LiteRT skipped: ai-edge-litert not installed (pip install 'edgecnn[engines]').")
    return KerasSettings(str(keras_path), threads, tf.__version__), jobs


def add_speedups(result: BenchResult) -> None:
    """Each row's speed-up over Keras's fastest path at the same batch (p50 ratio)."""
    keras_best: dict[int, BenchRow] = {}
    for r in result.results:
        if is_keras(r.engine):
            best = keras_best.get(r.batch)
            if best is None or r.p50_ms < best.p50_ms:
                keras_best[r.batch] = r
    for r in result.results:
        best = keras_best.get(r.batch)
        # a ratio of two machines' latencies is no speed-up: only rows timed where Keras ran
        r.speedup_vs_keras = best.p50_ms / r.p50_ms if best and best.ran_on == r.ran_on else None
    result.keras_fastest = {str(b): r.engine for b, r in keras_best.items()}


@dataclass(frozen=True)
class Goals:
    """What the benchmark holds edgecnn to (ratios measured in one run; seconds for cold start)."""

    max_predictor_overhead: float = 1.10
    min_int8_throughput_gain: float = 2.0
    min_speedup_vs_keras: float = 10.0
    max_cold_start_s: float = 0.1


def checks(result: BenchResult, goals: Goals = Goals()) -> list[Check]:
    """Each goal with the measured value and whether it holds."""
    out: list[Check] = []
    for target in result.targets:
        t = target.name
        pair = result.predictor_overhead.get(t)
        if pair:
            out.append(Check(
                f"predictor overhead ({t})", f"<= {goals.max_predictor_overhead:.2f}x bare session, batch 1",
                f"interleaved, {pair.runs} runs each on uint8 frames: Predictor p50 "
                f"{pair.p50_ms['predictor']:.4f} ms vs numpy preprocessing + "
                f"InferenceSession.run {pair.p50_ms['session']:.4f} ms; vs run on floats "
                f"prepared in advance {pair.p50_ms['session_prepared']:.4f} ms "
                f"({pair.ratio_strict:.2f}x)", pair.ratio, pair.ratio <= goals.max_predictor_overhead))
        largest = max(result.settings.batches)
        fp32 = result.rows(engine=EngineName.ONNXRUNTIME, variant="fp32", target=t, batch=largest)
        int8 = result.rows(engine=EngineName.ONNXRUNTIME, variant="int8", target=t, batch=largest)
        if fp32 and int8 and target.threads == 1:
            ratio = int8[0].throughput_ips / fp32[0].throughput_ips
            out.append(Check(f"int8 throughput ({t}, batch {largest})", f">= {goals.min_int8_throughput_gain:g}x fp32",
                             f"{int8[0].throughput_ips:.0f} vs {fp32[0].throughput_ips:.0f} images/s",
                             ratio, ratio >= goals.min_int8_throughput_gain))
    keras = result.settings.keras if result.device is None else None  # Keras ran elsewhere
    if keras:
        k_best = result.p50(target=keras_target(keras.threads), batch=1)
        # At equal threads: Keras is timed once, on the most threads a CPU target uses
        # (TensorFlow's thread pools are fixed per process).
        for target in (t for t in result.targets if t.threads == keras.threads):
            onnx = result.p50(engine=EngineName.ONNXRUNTIME, variant="fp32", target=target.name, batch=1)
            if k_best and onnx:
                out.append(Check(
                    f"ONNX fp32 ({target.name}) vs fastest Keras ({keras.threads} threads), batch 1",
                    f">= {goals.min_speedup_vs_keras:g}x",
                    f"Keras {result.keras_fastest.get('1')} {k_best:.3f} ms vs ONNX {onnx:.4f} ms",
                    k_best / onnx, k_best / onnx >= goals.min_speedup_vs_keras))
    cold = result.cold_start or ColdStart()
    runtime = cold.runtime or ColdStartRun()
    if runtime.total_s is not None:
        libraries, tensorflow = (run.import_s if run and run.import_s is not None else float("nan")
                                 for run in (cold.libraries_import, cold.tensorflow_import))
        out.append(Check(
            "runtime cold start", f"<= {goals.max_cold_start_s:g} s",
            f"import {runtime.import_s:.3f} s + session {runtime.session_s:.3f} s + first "
            f"result {runtime.first_result_s:.3f} s; importing numpy + onnxruntime alone "
            f"{libraries:.3f} s; TensorFlow import alone {tensorflow:.2f} s",
            runtime.total_s, runtime.total_s <= goals.max_cold_start_s))
    return out + litert_verdicts(result)


def litert_verdicts(result: BenchResult) -> list[Check]:
    """Whether edgecnn's best onnxruntime variant beats LiteRT's best, per thread count and batch."""
    out = []
    for target in result.targets:
        for batch in result.settings.batches:
            ours = result.rows(target=target.name, batch=batch, engine=EngineName.ONNXRUNTIME)
            theirs = [r for r in result.rows(target=target.name, batch=batch, engine="litert")
                      if ours and r.ran_on == ours[0].ran_on]  # timed on the same machine
            if not ours or not theirs:
                continue
            a = min(ours, key=lambda r: r.p50_ms)
            b = min(theirs, key=lambda r: r.p50_ms)
            out.append(Check(
                f"edgecnn best vs LiteRT best ({target.name}, batch {batch})",
                "> 1 means edgecnn is faster",
                f"edgecnn {a.variant} {a.p50_ms:.4f} ms vs {b.variant} {b.p50_ms:.4f} ms",
                b.p50_ms / a.p50_ms, a.p50_ms < b.p50_ms))
    return out
