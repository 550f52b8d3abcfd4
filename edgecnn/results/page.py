"""One self-contained page per export: which file to ship to which CPU, and why.

Built from the validation report (accuracy per variant and instruction-set class) and, when
there is one, the benchmark result of the same model (latency per target). Plain HTML with
inline CSS and SVG: no script, no network, so it opens anywhere, from a file.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from edgecnn.display import visible
from edgecnn.results.bench import BenchResult, EngineName, is_keras_target, read_bench
from edgecnn.results.evidence import check_current
from edgecnn.results.matrix import (
    Column,
    columns,
    entries,
    how_decided,
    one_thread_latency,
    recommendation,
)
from edgecnn.results.report import REPORT_HTML, Place, Report, read_report
from edgecnn.runtime.isa import ISA_CLASSES
from edgecnn.store.files import write_text, writes_into
from edgecnn.store.locations import bench_result_path, device_bench_paths

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.pass{background:#e6f4e6}.fail{background:#f8d7d7;font-weight:bold}
.emu{color:#666;font-size:.85em}.rec{background:#eef3fb;padding:.6em 1em;margin:.4em 0;border-left:4px solid #4a78c2}
.note{color:#555;font-size:.9em}.outdated{color:#888;background:#f2f2f2}svg text{font:11px system-ui,sans-serif}
"""


@writes_into(lambda model_dir: model_dir)
def write_report_page(model_dir: str | Path, bench_json: str | Path | None = None) -> Path:
    """Write ``model_dir/report.html`` from its report and a bench result of these files, if any
    (default: the export's own ``bench.json``, which ``edgecnn bench`` writes)."""
    model_dir = Path(model_dir)
    report = read_report(model_dir)
    check_current(model_dir, report)  # never a page of old numbers for new files
    return write_page(model_dir, report, bench_json)


@writes_into(lambda model_dir: model_dir)
def write_page(model_dir: str | Path, report: Report, bench_json: str | Path | None = None) -> Path:
    """Write ``model_dir/report.html`` for ``report``, which must describe the files there
    (validation, which has just measured them, calls this directly)."""
    model_dir = Path(model_dir)
    bench_path = Path(bench_json) if bench_json else bench_result_path(model_dir)
    bench = read_bench(bench_path) if bench_path.is_file() else None
    # Only a benchmark of these very files: another export of the same model is another model.
    if bench is not None and not bench.measured(model_dir):
        bench = None
    on_devices = {name: b for name, path in device_bench_paths(model_dir).items()
                  if (b := read_bench(path)).measured(model_dir)}
    return write_text(model_dir / REPORT_HTML, render(report, bench, on_devices))


def render(report: Report, bench: BenchResult | None,
           on_devices: dict[str, BenchResult] | None = None) -> str:
    """The page as a string; ``on_devices`` holds the bench results of devices, by name."""
    on_devices = on_devices or {}
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>{_esc(report.model)}: which file for which CPU</title><style>{_CSS}</style></head><body>",
             f"<h1>{_esc(report.model)}: which file for which CPU</h1>",
             f'<p>Keras accuracy <b id="keras-accuracy">{report.keras_accuracy:.4f}</b> on '
             f"{report.test_images:,} test images of <code>{_esc(report.dataset)}</code>."]
    parts += [f"<p class=fail>Warning: {_esc(w)}</p>" for w in report.warnings]
    parts += [f"<p class=fail>Validation failed: {_esc(f)}</p>" for f in report.failures]
    parts += [f"<p class=note>The Keras model was loaded after importing <code>{_esc(path)}</code> "
              f"(sha256 {_esc(digest[:12])}…, --import-module).</p>" for path, digest in report.user_code.items()]
    if report.unsafe:
        parts.append("<p class=note>The reference was loaded with --unsafe: its own code (Lambda layers, a "
                     "SavedModel's graph) ran.</p>")
    parts += _recommendations(report, bench, on_devices)
    parts += _matrix(report)
    parts += _class_bars(report)
    parts += _confusion(report)
    if bench is not None:
        parts += _latency_charts(report, bench, report.machine.native_row, "this machine")
    for name, timed in on_devices.items():
        parts += _latency_charts(report, timed, name, f"the device {name}")
    parts += _provenance(report, bench, on_devices)
    parts.append("</body></html>")
    return "\n".join(parts)


def _esc(text: Any) -> str:
    """Untrusted text (a model's names, a device's words) as HTML text, its control characters
    written as escapes: neither markup nor a terminal sequence for whoever cats the page."""
    return html.escape(visible(text))


def _latency_source(report: Report, col: Column, bench: BenchResult | None,
                    on_devices: dict[str, BenchResult]) -> tuple[BenchResult | None, str]:
    """The bench result measured on a CPU of this column, and where: this machine for its own
    class, the device for a device's column, else a device of that class (named)."""
    if col.how == Place.DEVICE:
        return on_devices.get(col.row), f"the device {col.row}"
    if col.row == report.machine.native_row and bench is not None:
        return bench, "this machine"
    for name, timed in on_devices.items():
        device = report.devices.get(name)
        if (device.isa if device else timed.machine.isa) == col.row:
            return timed, f"the device {name}"
    return None, ""


def _recommendations(report: Report, bench: BenchResult | None,
                     on_devices: dict[str, BenchResult]) -> list[str]:
    """Per class and device: the fastest variant that passes every gate there, and why."""
    out = ["<h2>Which file to ship</h2>"]
    for col in columns(report):
        row = col.row
        timed, where = _latency_source(report, col, bench, on_devices)
        target, p50 = one_thread_latency(report, timed)
        p50_64 = one_thread_latency(report, timed, 64)[1]
        best, ms = recommendation(report, row, p50, p50_64)
        if best is None:
            out.append(f'<div class=rec id="rec-{_esc(row)}"><b>{_esc(row)}</b>: no variant passes '
                       "every gate here; ship none of these files to such a CPU.</div>")
            continue
        if ms is not None:
            why = (f"fastest that passes every gate on this CPU: {ms:.3f} ms per image at batch 1 on "
                   f"one thread ({target}, measured on {where}"
                   f"{', and not slower than fp32 at batch 64' if p50_64 else ''}), "
                   f"{best.size_bytes / 1024:.0f} KiB")
        elif best.variant == "int8":
            why = (f"passes every gate here ({best.by_isa[row].accuracy_delta * 100:+.2f} pp vs "
                   f"Keras); smallest int8 file ({best.size_bytes / 1024:.0f} KiB). Its speed on "
                   "this class was not measured (no device of this class was reached; emulation "
                   "gives no latency)")
        else:
            why = "passes every gate here"
        description = (f"device {report.devices[row].address}, {col.isa}" if row in report.devices
                       else ISA_CLASSES.get(row, row))
        out.append(f'<div class=rec id="rec-{_esc(row)}"><b>{_esc(row)}</b> <span class=note>'
                   f'({_esc(description)})</span>: <code class="file">{_esc(best.file)}</code> — {_esc(why)}.</div>')
    return out


def _matrix(report: Report) -> list[str]:
    cols = columns(report)
    out = ["<h2>Accuracy per variant and CPU class</h2>",
           "<p class=note>Δ against Keras on the same images; green passes every gate of its kind, "
           "red breaks one. <span class=emu>emulated</span> columns ran under qemu-user; a "
           "<span class=emu>device</span> column ran on that machine, natively.</p>",
           "<table id=matrix><tr><th>variant</th><th>file</th><th>size</th>"
           + "".join(f"<th>{_esc(c.row)}{_column_note(c)}</th>" for c in cols) + "</tr>"]
    for v, row in entries(report):
        cells = []
        for c, entry in zip(cols, row):
            m = entry.cell
            if m is None:
                cells.append("<td>—</td>")
                continue
            when = (f"<br><span class=note>{_esc(str(m.measured_at)[:10] if m.measured_at else 'earlier run')}"
                    f"{'' if m.counts else ', other files'}</span>" if m.carried else "")
            cells.append(f'<td class="{entry.state}" data-variant="{_esc(v.variant)}" data-isa="{_esc(c.row)}" '
                         f'data-accuracy="{m.accuracy!r}">'
                         f"{m.accuracy:.4f}<br><span class=note>{m.accuracy_delta * 100:+.2f} pp"
                         f"</span>{when}</td>")
        out.append(f"<tr><td>{_esc(v.variant)}</td><td><code>{_esc(v.file)}</code></td>"
                   f"<td>{v.size_bytes / 1024:.0f} KiB</td>{''.join(cells)}</tr>")
    out.append("</table>")
    for row, decided in how_decided(report):
        out.append(f"<p class=note>How <b>{_esc(row)}</b> was decided: "
                   + "; ".join(f"{_esc(v)} {_esc(w)}" for v, w in decided) + ".</p>")
    for name, reason in report.isa_not_measured.items():
        out.append(f"<p class=note>{_esc(name)}: not measured ({_esc(reason)}).</p>")
    for variant, rows in report.not_for.items():
        out.append(f"<p class=note><b>{_esc(variant)}</b> is not for {_esc(', '.join(rows))}: it "
                   "breaks a gate there, so no recommendation names it for those classes.</p>")
    return out


def _column_note(col: Column) -> str:
    if col.how == Place.NATIVE:
        return ""
    if col.how == Place.DEVICE:
        return f" <span class=emu>device, {_esc(col.isa)}</span>"
    return " <span class=emu>emulated</span>" if col.how == Place.EMULATED else " <span class=emu>earlier</span>"


def _class_bars(report: Report) -> list[str]:
    """Per-class accuracy change of each quantized variant against Keras, as horizontal bars."""
    out = ["<h2>Per-class accuracy change vs Keras (native row)</h2>"]
    for v in report.variants:
        if v.variant == "fp32":
            continue
        deltas = [(c, d) for c, d in v.per_class_delta.items() if d is not None]
        scale = max([0.01, *(abs(d) for _, d in deltas)])
        height = 18 * len(deltas) + 10
        bars = []
        for i, (name, d) in enumerate(deltas):
            width = abs(d) / scale * 150
            x = 300 if d >= 0 else 300 - width
            colour = "#5a9" if d >= 0 else "#c55"
            bars.append(f"<text x=0 y={18 * i + 14}>{_esc(name)}</text>"
                        f"<rect x={x:.1f} y={18 * i + 4} width={max(width, 0.5):.1f} height=12 fill='{colour}'/>"
                        f"<text x=460 y={18 * i + 14}>{d * 100:+.1f} pp</text>")
        out.append(f"<p><b>{_esc(v.variant)}</b></p><svg width=520 height={height} role=img>"
                   f"<line x1=300 y1=0 x2=300 y2={height} stroke='#999'/>{''.join(bars)}</svg>")
    return out


def _confusion(report: Report) -> list[str]:
    """Where int8's answers moved against Keras's: (true, predicted) counts, int8 minus Keras."""
    int8 = report.variant("int8")
    if int8 is None or int8.confusion_delta is None:
        return []
    names = list(int8.per_class_accuracy)
    delta = int8.confusion_delta
    moved = sum(abs(x) for row in delta for x in row) // 2
    out = ["<h2>int8 against Keras: where answers moved</h2>",
           f"<p class=note>Test images per (true class, predicted class), int8 minus Keras; {moved} "
           "answers moved. Blank: no change.</p><table id=confusion><tr><th>true \\ predicted</th>"
           + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>"]
    for i, (name, row) in enumerate(zip(names, delta)):
        cells = []
        for j, x in enumerate(row):
            worse = x < 0 if i == j else x > 0  # fewer right answers, or more of this mistake
            cells.append(f"<td class={'fail' if worse else 'pass'}>{x:+d}</td>" if x else "<td></td>")
        out.append(f"<tr><td>{_esc(name)}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return out


def _latency_charts(report: Report, bench: BenchResult, row: str, where: str) -> list[str]:
    """Per CPU target: accuracy (of ``row``) against batch-1 latency, each variant a point, the
    Pareto front drawn, Keras's fastest path and LiteRT as reference points when they ran on
    the same machine."""
    host = row
    cls = bench.machine.isa or "?"
    out = [f"<h2 id=\"latency-{_esc(row)}\">Accuracy against latency on {_esc(where)} ({_esc(cls)})</h2>",
           "<p class=note>Batch 1, p50. Up and left is better; the line joins the variants no other "
           "beats on both.</p>"]
    keras = [r for r in bench.results if is_keras_target(r.target) and r.batch == 1 and r.ran_on is None]
    for target in (t for t in bench.targets if t.provider == "cpu"):
        points = []
        for v in report.variants:
            ms = bench.p50(engine=EngineName.ONNXRUNTIME, variant=v.variant, target=target.name, batch=1)
            if ms is not None and host in v.by_isa:
                points.append((v.variant, ms, v.by_isa[host].accuracy))
        refs = []
        if keras:
            fastest = min(keras, key=lambda r: r.p50_ms)
            refs.append(f"Keras's fastest path ({fastest.engine}, {fastest.target}) "
                        f"{fastest.p50_ms:.3f} ms at accuracy {report.keras_accuracy:.4f}")
        refs += [f"{r.variant} {r.p50_ms:.3f} ms (accuracy not measured)"
                 for r in bench.rows(engine="litert", target=target.name, batch=1, ran_on=None)]
        if points:
            out.append(f"<p><b>{_esc(target.name)}</b> ({target.threads} thread(s))</p>")
            out.append(_scatter(points))
            if refs:
                out.append(f"<p class=note>For reference on the same target: {_esc('; '.join(refs))}.</p>")
    total = bench.cold_start.runtime.total_s if bench.cold_start and bench.cold_start.runtime else None
    if total is not None:
        out.append(f"<p>Runtime cold start (import + session + first result): {total:.3f} s.</p>")
    return out


def _scatter(points: list[tuple[str, float, float]]) -> str:
    ms_all, accs = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = 0.0, max(ms_all) * 1.15
    y0, y1 = min(accs) - 0.002, max(accs) + 0.002
    w, h, pad = 620, 240, 50

    def xy(ms: float, acc: float) -> tuple[float, float]:
        return pad + (ms - x0) / (x1 - x0) * (w - 2 * pad), h - pad - (acc - y0) / (y1 - y0) * (h - 2 * pad)

    front, best = [], -1.0
    for name, ms, acc in sorted(points, key=lambda p: (p[1], -p[2])):
        if acc > best:
            front.append((ms, acc))
            best = acc
    svg = [f"<svg width={w} height={h} role=img>",
           f"<line x1={pad} y1={h - pad} x2={w - pad} y2={h - pad} stroke='#333'/>",
           f"<line x1={pad} y1={pad} x2={pad} y2={h - pad} stroke='#333'/>",
           f"<text x={w / 2 - 60} y={h - 15}>latency per call, ms (0 – {x1:.3f})</text>",
           f"<text x=5 y={pad - 10}>accuracy ({y0:.4f} – {y1:.4f})</text>"]
    if len(front) > 1:
        svg.append("<polyline fill=none stroke='#4a78c2' stroke-width=2 stroke-dasharray='5 3' points='"
                   + " ".join(f"{xy(ms, acc)[0]:.1f},{xy(ms, acc)[1]:.1f}" for ms, acc in front) + "'/>")
    for i, (name, ms, acc) in enumerate(sorted(points, key=lambda p: p[1])):
        x, y = xy(ms, acc)
        dy = -8 if i % 2 == 0 else 16  # alternate above and below: neighbours do not overlap
        svg.append(f"<circle cx={x:.1f} cy={y:.1f} r=5 fill='#4a78c2'/>"
                   f"<text x={x + 7:.1f} y={y + dy:.1f}>{_esc(name)} {ms:.3f} ms</text>")
    svg.append("</svg>")
    return "".join(svg)


def _provenance(report: Report, bench: BenchResult | None, on_devices: dict[str, BenchResult]) -> list[str]:
    machine = report.machine
    out = ["<h2>Where these numbers come from</h2><ul>",
           f"<li>Accuracy: onnxruntime {_esc(machine.onnxruntime)} on a {_esc(machine.host_isa)} host; "
           f"gates {_esc(json.dumps(report.gates))}.</li>"]
    for name, device in report.devices.items():
        m = device.machine
        described = (f"{_esc(m.cpu)}, {m.cores} cores, class {_esc(device.isa)}, {_esc(m.os)}, Python "
                     f"{_esc(m.python or '?')}, onnxruntime {_esc(m.versions.get('onnxruntime', '?'))}"
                     if m else f"class {_esc(device.isa)}")
        warned = (" Its onnxruntime warned there (the kernels that ran may not be its class's): "
                  + "; ".join(f"<code>{_esc(w)}</code>" for w in device.warnings) + "." if device.warnings else "")
        out.append(f"<li>Device {_esc(name)} ({_esc(device.address)}): {described}.{warned}</li>")
    timed = ([("this machine", bench)] if bench is not None else []) + [
        (f"device {name}", b) for name, b in on_devices.items()]
    for where, result in timed:
        m = result.machine
        out.append(f"<li>Latency on {_esc(where)}: {_esc(result.created)}, {_esc(m.cpu)} ({m.cores} cores, "
                   f"class {_esc(m.isa or '?')}), {_esc(', '.join(f'{k} {v}' for k, v in m.versions.items()))}.</li>")
    if not timed:
        out.append("<li>Latency: no benchmark of this model yet (<code>edgecnn bench</code>).</li>")
    out.append("</ul>")
    return out
