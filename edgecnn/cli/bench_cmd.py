"""``edgecnn bench``: latency per hardware target, side by side with Keras."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from edgecnn.cli.options import ImportModules, TargetsFile, int_list, provider_name
from edgecnn.defaults import DEFAULT_MODEL, SOAK_CALLS, SOAK_THREADS
from edgecnn.display import visible
from edgecnn.store.locations import default_folder


class Baseline(str, Enum):
    keras = "keras"
    none = "none"


def bench(
    model: Annotated[str, typer.Argument(
        help="Zoo name (exported/NAME), export folder or one .onnx file.")] = DEFAULT_MODEL,
    provider: Annotated[Optional[str], typer.Option(
        callback=provider_name, help="Run on this provider (cpu, cuda, tensorrt, openvino, ...): shorthand for the "
        "built-in target of that name. Unavailable providers are an error.")] = None,
    target: Annotated[Optional[list[str]], typer.Option(
        help="Target name(s): cpu-1t, cpu, cuda, tensorrt, openvino or one from --targets-file. "
        "Default: cpu-1t and cpu.")] = None,
    targets_file: TargetsFile = None,
    device: Annotated[Optional[str], typer.Option(
        help="Time onnxruntime on this SSH device instead of here: a \\[devices.NAME] of "
        "--targets-file, or user@host[:port] (edgecnn device setup prepares it). Keras and "
        "LiteRT stay here, and say so.")] = None,
    # The callbacks turn "1,8,64" into [1, 8, 64], or a usage error (exit 2).
    batch: Annotated[str, typer.Option(
        callback=int_list, help="Comma-separated batch sizes.")] = "1,8,64",
    threads: Annotated[Optional[str], typer.Option(
        callback=int_list,
        help="Comma-separated intra-op thread counts; each target is run with each.")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs first.")] = 20,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs at most.")] = 300,
    duration: Annotated[float, typer.Option(
        min=0.0, help="Seconds of timed runs at most per configuration.")] = 3.0,
    rounds: Annotated[int, typer.Option(
        min=1, help="Round-robin rounds the runs are split into (spreads machine noise).")] = 3,
    baseline: Annotated[Baseline, typer.Option(help="Reference timed in the same run.")] = Baseline.keras,
    other_engines: Annotated[bool, typer.Option(
        "--engines/--no-engines", help="Also time LiteRT and OpenVINO when installed.")] = True,
    cold: Annotated[bool, typer.Option("--cold/--no-cold", help="Measure cold start.")] = True,
    profile: Annotated[bool, typer.Option(
        "--profile", help="Also record per-operator times (onnxruntime's profiler, in separate "
        "sessions) of every variant on each CPU target.")] = False,
    dataset: Annotated[Optional[str], typer.Option(help="Input images (default: the model's).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for JSON, Markdown and PNG.")] = Path("bench/results"),
    name: Annotated[Optional[str], typer.Option(help="File name stem (default: model name).")] = None,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write the PNG plot.")] = True,
    import_module: ImportModules = None,
) -> None:
    """Benchmark every variant x batch x target with the Keras baseline in the same run."""
    from edgecnn.benchmark.run import run_benchmark
    from edgecnn.export.keras_io import import_user_code
    from edgecnn.store.files import ensure_folder
    from edgecnn.timing.measure import Budget
    from edgecnn.timing.targets import resolve_targets

    ensure_folder(out)  # before minutes of timing, not after
    import_user_code(import_module)
    names = list(target or [])
    if provider:
        names.append(provider)
    targets = resolve_targets(names or ["cpu-1t", "cpu"], targets_file, threads)
    remote = None
    if device:
        from edgecnn.runners.devices import resolve_device
        from edgecnn.runners.ssh import SshDevice

        remote = SshDevice(resolve_device(device, targets_file))
    batches = batch
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=None)

        def step(description: str) -> None:
            progress.update(task, advance=1, description=description)

        result = run_benchmark(model, targets=targets, batches=batches,
                               budget=Budget(warmup, runs, duration, rounds=rounds), keras_baseline=baseline is Baseline.keras,
                               other_engines=other_engines, dataset=dataset, cold=cold, profile=profile,
                               device=remote, on_step=step)
    from edgecnn.benchmark.report import save

    stem = name or (f"{result.model}@{remote.row}" if remote else None)
    written = save(result, out, stem, png=plot)
    written += _into_export(result)
    _print_result(result)
    typer.echo("Saved " + ", ".join(str(p) for p in written))


def _into_export(result) -> list:
    """An export's own copy of its latest result, and its page rebuilt with this latency."""
    from edgecnn.results.bench import write_bench
    from edgecnn.results.page import write_report_page
    from edgecnn.results.report import REPORT_JSON
    from edgecnn.store.files import folder_lock
    from edgecnn.store.locations import bench_result_path

    folder = Path(result.files[0]).parent
    if not (folder / REPORT_JSON).is_file():  # ONNX files, not an export: nothing to update
        return []
    with folder_lock(folder):
        device = result.device.name if result.device else None
        return [write_bench(bench_result_path(folder, device), result), write_report_page(folder)]


def _console() -> Console:
    probe = Console()
    # Piped output defaults to 80 columns, which truncates engine names; files get room.
    return probe if probe.is_terminal else Console(width=160)


def _print_result(result) -> None:
    console = _console()
    on = f"device {result.device.name}: " if result.device else ""
    table = Table(title=escape(visible(f"{result.model} on {on}{result.machine.cpu} ({result.machine.cores} cores, "
                               f"{result.machine.isa})")))
    for col in ("target", "engine", "variant", "batch", "p50 ms", "p99 ms", "images/s", "× Keras"):
        table.add_column(col, justify="right" if col not in ("target", "engine", "variant") else "left")
    for r in result.results:
        engine = r.engine + (f" ({r.ran_on})" if r.ran_on else "")
        table.add_row(escape(r.target), escape(engine), escape(r.variant), str(r.batch), f"{r.p50_ms:.4f}",
                      f"{r.p99_ms:.4f}", f"{r.throughput_ips:.0f}",
                      "—" if r.speedup_vs_keras is None else f"{r.speedup_vs_keras:.1f}")
    console.print(table)
    if result.checks:
        console.print("Goals (a goal not met is a finding, not a failed run; the exit code stays 0):")
    for c in result.checks:
        mark = {True: "[green]met[/]", False: "[yellow]not met[/]", None: "—"}[c.passed]
        value = "—" if c.value is None else f"{c.value:.3g}"
        console.print(f"  {escape(c.check)}: {value} (goal {escape(c.goal)}) {mark} — {escape(c.detail)}")
    for note in result.notes:
        console.print(f"note: {escape(visible(note))}")
    for target, by_variant in (result.profiles or {}).items():
        for variant, by_batch in by_variant.items():
            for batch, rows in by_batch.items():
                slowest = ", ".join(f"{r.op} {r.share:.0%}" for r in rows[:4])
                console.print(f"profile {variant} {target} batch {batch}: {escape(slowest)}")


def bench_compare(
    first: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Result JSON A.")],
    second: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Result JSON B.")],
) -> None:
    """Print the B/A latency and throughput ratios of two saved benchmark results."""
    from edgecnn.benchmark.diff import diff_results, where
    from edgecnn.results.bench import read_bench

    ratios = diff_results(first, second)
    for label, path in (("A", first), ("B", second)):
        typer.echo(visible(f"{label}: {where(read_bench(path))}"))
    table = Table(title=escape(visible(f"B = {second} vs A = {first}")))
    for col in ("target", "engine", "variant", "batch", "A p50 ms", "B p50 ms", "B/A p50", "B/A images/s"):
        table.add_column(col)
    for r in ratios:
        table.add_row(*(escape(visible(x)) for x in (r.target, r.engine, r.variant)), str(r.batch),
                      f"{r.a_p50_ms:.4f}", f"{r.b_p50_ms:.4f}", f"{r.p50_ratio:.2f}", f"{r.throughput_ratio:.2f}")
    _console().print(table)


def soak(
    model: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The .onnx model.")] =
        default_folder(DEFAULT_MODEL) / "model.int8.onnx",
    calls: Annotated[int, typer.Option(min=1, help="Calls in all, spread over the threads.")] =
        SOAK_CALLS,
    threads: Annotated[int, typer.Option(min=1, help="Threads sharing one Predictor.")] = SOAK_THREADS,
    out: Annotated[Path, typer.Option(help="Folder for the JSON result.")] = Path("bench/results"),
) -> None:
    """Endurance: one Predictor shared by many threads; identical results, flat memory."""
    import json

    from edgecnn.benchmark.soak import soak_export

    result, path = soak_export(model, out, calls=calls, threads=threads)
    summary = {k: result[k] for k in ("threads", "calls", "mismatches", "seconds", "calls_per_s",
                                      "rss_baseline_mb", "rss_growth_mb", "rss_max_growth_mb",
                                      "rss_growth_second_half_mb")}
    typer.echo(json.dumps(summary, indent=2))
    typer.echo(f"Saved {path}")
