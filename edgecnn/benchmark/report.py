"""Bench results on disk: versioned JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

from pathlib import Path

from edgecnn._optional import require
from edgecnn.results.bench import (
    BenchResult,
    BenchRow,
    EngineName,
    Profiles,
    is_keras,
    write_bench,
)
from edgecnn.results.markdown import md_code, md_text
from edgecnn.store.files import atomic_path, write_text
from edgecnn.store.locations import file_stem
from edgecnn.timing.profile import PROFILE_RUNS


def markdown(result: BenchResult) -> str:
    """The results as Markdown: machine, checks, then one row per configuration. What a model
    file or a device said (names, CPU, OS, notes) is text, never markup or escapes."""
    m, settings = result.machine, result.settings
    md = md_text
    lines = [
        f"# Benchmark: {md(result.model)}",
        "",
        f"{md(result.created)} on {md(m.cpu)} ({m.cores} cores; "
        f"{md(', '.join(m.cpu_flags) or 'no SIMD flags read')}), "
        f"{'GPUs: ' + md(', '.join(m.gpus)) if m.gpus else 'no GPU'}, {md(m.os)}, "
        + md(", ".join(f"{k} {v}" for k, v in m.versions.items())) + ".",
        "",
    ]
    if result.device:
        host = result.host_machine
        lines += [f"onnxruntime rows timed on the device **{md(result.device.name)}** "
                  f"({md(result.device.address)}, class {md(m.isa)}); rows marked (host) ran on this machine"
                  + (f", {md(host.cpu)} ({host.cores} cores)" if host else "") + ".", ""]
    lines += [
        f"Inputs: {settings.inputs}. Per configuration: {settings.warmup} warm-up runs, then up to "
        f"{settings.runs} timed runs or {settings.duration_s} s.",
        "",
    ]
    if result.checks:
        lines += ["## Checks", "", "Goals edgecnn holds itself to; a goal not met is a finding "
                  "to read, not a failed run.", "",
                  "| check | measured | goal | holds | detail |", "|---|---:|---|---|---|"]
        for c in result.checks:
            value = "—" if c.value is None else f"{c.value:.3g}"
            holds = {True: "yes", False: "**no**", None: "—"}[c.passed]
            lines.append(f"| {md(c.check)} | {value} | {md(c.goal)} | {holds} | {md(c.detail)} |")
        lines.append("")
    lines += [
        "## Latency (ms) and throughput",
        "",
        "| target | engine | variant | batch | p50 | p90 | p99 | mean | max | images/s "
        "| × Keras | session s | first ms | RSS MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.results:
        speed = "—" if r.speedup_vs_keras is None else f"{r.speedup_vs_keras:.1f}"
        lines.append(
            f"| {md(r.target)} | {r.engine}{f' ({r.ran_on})' if r.ran_on else ''} | {md(r.variant)} | {r.batch} | {r.p50_ms:.4f} "
            f"| {r.p90_ms:.4f} | {r.p99_ms:.4f} | {r.mean_ms:.4f} | {r.max_ms:.3f} "
            f"| {r.throughput_ips:.0f} | {speed} | {r.session_s:.3f} | {r.first_run_ms:.2f} "
            f"| {r.rss_mb:.0f} |"
        )
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {md(n)}" for n in result.notes]]
    lines += profile_markdown(result.profiles or {})
    lines.append("")
    return "\n".join(lines)


def profile_markdown(profiles: Profiles, top: int = 8) -> list[str]:
    """Per-operator tables: the slowest nodes of each variant, per target and batch."""
    lines = []
    for target, by_variant in profiles.items():
        for variant, by_batch in by_variant.items():
            for batch, rows in by_batch.items():
                total = sum(r.us for r in rows)
                lines += ["", f"### Per-operator time: {md_text(variant)}, {md_text(target)}, batch {batch} "
                          f"(nodes sum to {total:.0f} µs, median of {PROFILE_RUNS} calls)", "",
                          "| op | node | share | µs |", "|---|---|---:|---:|"]
                lines += [f"| {md_text(r.op)} | {md_code(r.node)} | {r.share:.1%} | {r.us:.0f} |"
                          for r in rows[:top]]
    return (["", "## Per-operator profiles (separate profiling sessions)"] + lines) if lines else []


def plot(result: BenchResult, path: Path) -> Path:
    """One panel per target: latency *per image* against batch for each onnxruntime variant, the
    fastest Keras path and LiteRT's best (at most 6 series); then labelled speed-up bars."""
    matplotlib = require("matplotlib", "Benchmark plots")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "Benchmark plots")
    rows = result.results
    targets = [t.name for t in result.targets]
    fig, axes = plt.subplots(1, len(targets) + 1, figsize=(5.2 * (len(targets) + 1), 4.6))
    for ax, target in zip(axes, targets):
        for label, points, style in _per_image_series(rows, target):
            ax.plot([b for b, _ in points], [ms for _, ms in points], style, marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch", ylabel="p50 latency per image, ms",
               title=f"{result.model} on {target}")
        ax.legend(fontsize=7)
    right = axes[-1]
    best = [r for r in rows if r.speedup_vs_keras and r.engine == EngineName.ONNXRUNTIME
            and r.variant in ("fp32", "int8")]
    labels = list(dict.fromkeys((r.target, r.variant) for r in best))
    batches = sorted({r.batch for r in best})
    width = 0.8 / max(1, len(labels))
    for i, (target, variant) in enumerate(labels):
        values = [next((r.speedup_vs_keras for r in best if r.target == target
                        and r.variant == variant and r.batch == b), 0) for b in batches]
        bars = right.bar([j + i * width for j in range(len(batches))], values, width,
                         label=f"{target} {variant}")
        right.bar_label(bars, fmt="%.1f×", fontsize=7)
    right.set_xticks([j + 0.4 - width / 2 for j in range(len(batches))], [str(b) for b in batches])
    right.axhline(1.0, color="gray", linewidth=0.8)
    right.set(xlabel="batch", ylabel="× fastest Keras path (p50)", title="onnxruntime vs Keras")
    if labels:
        right.legend(fontsize=7)
    else:
        right.text(0.5, 0.5, "no Keras baseline in this run", ha="center", transform=right.transAxes)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _per_image_series(rows: list[BenchRow], target: str) -> list[tuple[str, list, str]]:
    """(label, [(batch, ms per image)], line style) for one target's panel."""
    def per_image(selected: list[BenchRow]) -> list[tuple[int, float]]:
        fastest: dict[int, float] = {}
        for r in selected:
            fastest[r.batch] = min(fastest.get(r.batch, float("inf")), r.p50_ms / r.batch)
        return sorted(fastest.items())

    series = []
    for variant in ("fp32", "int8", "dynint8", "fp16"):
        selected = [r for r in rows if r.engine == EngineName.ONNXRUNTIME and r.target == target
                    and r.variant == variant]
        if selected:
            series.append((f"onnxruntime {variant}", per_image(selected), "-"))
    keras = [r for r in rows if is_keras(r.engine)]
    if keras:
        series.append(("Keras, fastest path", per_image(keras), "--"))
    litert = [r for r in rows if r.engine == EngineName.LITERT and r.target == target]
    if litert:
        series.append(("LiteRT, best", per_image(litert), ":"))
    return series


def save(result: BenchResult, out_dir: Path, stem: str | None = None, png: bool = True) -> list[Path]:
    """Write ``STEM.json``, ``STEM.md`` and (with matplotlib) ``STEM.png`` into ``out_dir``."""
    stem = file_stem(stem or result.model)
    out_dir = Path(out_dir)
    written = [write_bench(out_dir / f"{stem}.json", result),
               write_text(out_dir / f"{stem}.md", markdown(result))]
    if png:
        written.append(plot(result, out_dir / f"{stem}.png"))
    return written
