"""``edgecnn bench``: latency per hardware target, side by side with Keras."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgecnn.errors import EdgeCNNError


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EdgeCNNError(f"{what} must be comma-separated integers, got '{text}'.") from None
    if not values or min(values) < 1:
        raise EdgeCNNError(f"{what} must be integers >= 1, got '{text}'.")
    return values


def bench(
    model: Annotated[str, typer.Argument(
        help="Zoo name (exported/NAME), export folder or one .onnx file.")] = "fashion-cnn",
    provider: Annotated[Optional[str], typer.Option(
        help="Run on this provider (cpu, cuda, tensorrt, openvino, ...): shorthand for the "
        "built-in target of that name. Unavailable providers are an error.")] = None,
    target: Annotated[Optional[list[str]], typer.Option(
        help="Target name(s): cpu-1t, cpu, cuda, tensorrt, openvino or one from --targets-file. "
        "Default: cpu-1t and cpu.")] = None,
    targets_file: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False, help="TOML file with [targets.NAME] tables.")] = None,
    batch: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,64",
    threads: Annotated[Optional[str], typer.Option(
        help="Comma-separated intra-op thread counts; each target is run with each.")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs first.")] = 20,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs at most.")] = 300,
    duration: Annotated[float, typer.Option(
        min=0.0, help="Seconds of timed runs at most per configuration.")] = 3.0,
    rounds: Annotated[int, typer.Option(
        min=1, help="Round-robin rounds the runs are split into (spreads machine noise).")] = 3,
    baseline: Annotated[str, typer.Option(help="'keras' or 'none'.")] = "keras",
    compare_engines: Annotated[bool, typer.Option(
        "--engines/--no-engines", help="Also time LiteRT and OpenVINO when installed.")] = True,
    cold: Annotated[bool, typer.Option("--cold/--no-cold", help="Measure cold start.")] = True,
    dataset: Annotated[Optional[str], typer.Option(help="Input images (default: the model's).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for JSON, Markdown and PNG.")] = Path("bench/results"),
    name: Annotated[Optional[str], typer.Option(help="File name stem (default: model name).")] = None,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write the PNG plot.")] = True,
    compare: Annotated[Optional[tuple[Path, Path]], typer.Option(
        help="Two result JSON files A B: print the B/A ratios and exit.")] = None,
) -> None:
    """Benchmark every variant x batch x target with the Keras baseline in the same run."""
    if compare:
        _print_comparison(compare)
        return
    from edgecnn.bench.run import run_benchmark
    from edgecnn.bench.targets import resolve_targets
    from edgecnn.bench.timing import Budget

    if baseline not in ("keras", "none"):
        raise EdgeCNNError(f"--baseline must be 'keras' or 'none', got '{baseline}'.")
    names = list(target or [])
    if provider:
        names.append(provider)
    targets = resolve_targets(names or ["cpu-1t", "cpu"], targets_file, _ints(threads, "--threads"))
    batches = _ints(batch, "--batch")
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=None)

        def step(description: str) -> None:
            progress.update(task, advance=1, description=description)

        result = run_benchmark(model, targets=targets, batches=batches,
                               budget=Budget(warmup, runs, duration, rounds=rounds), keras_baseline=baseline == "keras",
                               compare=compare_engines, dataset=dataset, cold=cold, on_step=step)
    from edgecnn.bench.report import save

    written = save(result, out, name, png=plot)
    _print_result(result)
    typer.echo("Saved " + ", ".join(str(p) for p in written))


def _console() -> Console:
    probe = Console()
    # Piped output defaults to 80 columns, which truncates engine names; files get room.
    return probe if probe.is_terminal else Console(width=160)


def _print_result(result: dict) -> None:
    console = _console()
    table = Table(title=f"{result['model']} on {result['machine']['cpu']} "
                  f"({result['machine']['cores']} cores)")
    for col in ("target", "engine", "variant", "batch", "p50 ms", "p99 ms", "images/s", "× Keras"):
        table.add_column(col, justify="right" if col not in ("target", "engine", "variant") else "left")
    for r in result["results"]:
        speed = r.get("speedup_vs_keras")
        table.add_row(r["target"], r["engine"], r["variant"], str(r["batch"]), f"{r['p50_ms']:.4f}",
                      f"{r['p99_ms']:.4f}", f"{r['throughput_ips']:.0f}",
                      "—" if speed is None else f"{speed:.1f}")
    console.print(table)
    for c in result.get("checks", []):
        mark = {True: "[green]yes[/]", False: "[red]no[/]", None: "—"}[c["passed"]]
        console.print(f"{escape(c['check'])}: {c['value']:.3g} (goal {escape(c['goal'])}) {mark} — "
                      f"{escape(c['detail'])}")
    for note in result.get("notes", []):
        console.print(f"note: {escape(note)}")


def _print_comparison(paths: tuple[Path, Path]) -> None:
    from edgecnn.bench.compare import compare

    table = Table(title=f"B = {paths[1]} vs A = {paths[0]}")
    for col in ("target", "engine", "variant", "batch", "A p50 ms", "B p50 ms", "B/A p50", "B/A images/s"):
        table.add_column(col)
    for r in compare(*paths):
        table.add_row(r["target"], r["engine"], r["variant"], str(r["batch"]), f"{r['a_p50_ms']:.4f}",
                      f"{r['b_p50_ms']:.4f}", f"{r['p50_ratio']:.2f}", f"{r['throughput_ratio']:.2f}")
    _console().print(table)
