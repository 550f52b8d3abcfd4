"""``report.md``: the validation report as Markdown, for reading in a repository."""

from __future__ import annotations

import re

from edgecnn.accuracy.metrics import CLASS_CALLOUT_PP
from edgecnn.display import visible
from edgecnn.results.matrix import columns, emulated_images, entries, how_decided
from edgecnn.results.report import Report, VariantRow

# Markdown's and HTML's active characters: a class or file name from a model file or a folder
# is text, never markup (a <script> in a class name, a | that ends a table cell).
_ACTIVE = re.compile(r"([\\`*_\[\]<>|~])")


def md_text(text: object) -> str:
    """Untrusted text as Markdown text: control characters written as escapes (an ESC in a
    class name must not reach a terminal that cats the file), markup characters escaped."""
    return _ACTIVE.sub(r"\\\1", visible(text)).replace("&", "&amp;")


def md_code(text: object) -> str:
    """Untrusted text as a code span: control characters escaped, no backtick to end it."""
    return "`" + visible(text).replace("`", "'") + "`"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _status(variant: VariantRow, report: Report) -> str:
    if variant.passed:
        return "pass"
    if variant.variant in report.not_for:
        return f"not for {', '.join(map(md_text, variant.failed_on))}"
    return "**FAIL**"


def isa_matrix(report: Report) -> list[str]:
    """Accuracy (Δ vs Keras) of every variant on every measured class; empty for one row."""
    cols = columns(report)
    if len(cols) < 2 and not report.isa_not_measured:
        return []
    machine, emulated, decided = report.machine, emulated_images(report), how_decided(report)
    lines = ["", "## Accuracy per instruction-set class", "",
             f"Measured with onnxruntime {machine.onnxruntime} on a {machine.host_isa} host."
             + (" *Emulated* rows ran under qemu-user (accuracy only: no latency is ever taken "
                "from an emulated run). Each variant ran first on a probe of the test images: one "
                f"that computed the same outputs as {md_text(machine.native_row)} there takes its "
                f"outputs on every test image, the others were measured on the first "
                f"{emulated or 0:,}, with Δ against Keras on the same images." if decided else
                f" *Emulated* rows ran under qemu-user on the first {emulated:,} test images, "
                "with Δ against Keras on the same images (accuracy only: no latency is ever "
                "taken from an emulated run)." if emulated else ""), "",
             "| variant | " + " | ".join(md_text(c.label) for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for variant, row in entries(report):
        cells = []
        for entry in row:
            m = entry.cell
            if m is None:
                cells.append("—")
                continue
            mark = ("" if m.passed else " **FAIL**") + ("" if m.counts else " (outdated: other files)")
            cells.append(f"{_pct(m.accuracy)} ({m.accuracy_delta * 100:+.2f} pp){mark}")
        lines.append(f"| {variant.variant} | " + " | ".join(cells) + " |")
    if decided:
        lines += ["", "How each emulated cell was decided:", ""]
        lines += [f"- {md_text(row)}: " + "; ".join(f"{md_text(variant)} {md_text(words)}" for variant, words in cells)
                  for row, cells in decided]
    for isa_name, reason in report.isa_not_measured.items():
        lines.append(f"\n{md_text(isa_name)}: not measured ({md_text(reason)}).")
    for name, device in report.devices.items():
        if device.warnings:
            lines.append(f"\n{md_text(name)}: its onnxruntime warned there, so the kernels that ran may not be "
                         f"its class's: " + "; ".join(map(md_code, device.warnings)) + ".")
    return lines


def render_markdown(report: Report) -> str:
    """A readable report: one row per variant, then the class matrix and per-class accuracy."""
    tutorial = ""
    if report.tutorial_result:
        elsewhere = (f", measured on full {md_code(report.tutorial_dataset)}, not on {md_code(report.dataset)}"
                     if report.tutorial_dataset not in (None, report.dataset) else "")
        tutorial = f" (tutorial: {report.tutorial_result}{elsewhere})"
    provenance = f" ({md_text(report.dataset_provenance)})" if report.dataset_provenance else ""
    lines = [
        f"# Validation report: {md_text(report.model)}", "",
        f"Dataset {md_code(report.dataset)}, {report.test_images} test images{provenance}. "
        f"Keras accuracy **{_pct(report.keras_accuracy)}**{tutorial}.", "",
        "| variant | file | size | compression | accuracy | Δ vs Keras | agreement | max abs Δp "
        "| gate | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for v in report.variants:
        lines.append(
            f"| {v.variant} | {md_code(v.file)} | {v.size_bytes / 1024:.0f} KiB | {v.compression:.2f}× "
            f"| {_pct(v.accuracy)} | {v.accuracy_delta * 100:+.2f} pp | {_pct(v.agreement)} "
            f"| {v.max_abs_diff:.2e} | {md_text(v.gate)} | {_status(v, report)} |")
    lines += [f"**Warning:** {md_text(w)}" for w in report.warnings]
    lines += [f"**User code:** the Keras model was loaded after importing {md_code(path)} (sha256 "
              f"{digest[:12]}…, --import-module)." for path, digest in report.user_code.items()]
    if report.unsafe:
        lines.append("**Unsafe load:** the reference was loaded with --unsafe; its own code (Lambda layers, "
                     "a SavedModel's graph) ran.")
    changed = [f"- {md_code(v.file)}: {v.flips.total} of {v.images:,}, {v.flips.near_tie} near-ties "
               f"(tie margin {v.flips.tie_margin:.2g}), {v.flips.confident} confident."
               for v in report.variants if v.flips and v.flips.total]
    if changed:
        lines += ["", "Changed answers (top-1 differs from Keras) on this machine's row; a near-tie "
                  "is a flip between classes Keras itself separates by less than the tie margin:",
                  "", *changed]
    lines += isa_matrix(report)
    lines += _per_class(report)
    lines += _notes(report)
    lines += ["", "## Verdict", "",
              f"Required on every class: {', '.join(report.required) or '(not recorded)'}. A variant "
              "that breaks a gate on a class is *not for* that class; the run fails when a required "
              "variant breaks one, a class has no passing variant, or a variant is stale.", ""]
    lines += [f"- FAIL: {md_text(f)}" for f in report.failures]
    lines += [f"- {md_code(v)} is not for {', '.join(map(md_text, rows))}." for v, rows in report.not_for.items()]
    lines += ["", f"Overall: {'PASS' if report.passed else 'FAIL'}.", ""]
    return "\n".join(lines)


def _per_class(report: Report) -> list[str]:
    first = report.variants[0]
    lines = ["", "## Per-class accuracy", "",
             "| class | Keras | " + " | ".join(v.variant for v in report.variants) + " |",
             "|---|---:|" + "---:|" * len(report.variants)]
    for name, accuracy in first.per_class_accuracy.items():
        delta = first.per_class_delta.get(name)
        ref = None if accuracy is None or delta is None else accuracy - delta
        cells = [_pct(v.per_class_accuracy.get(name)) for v in report.variants]
        lines.append(f"| {md_text(name)} | {_pct(ref)} | " + " | ".join(cells) + " |")
    callouts = [f"- {md_code(v.file)}: {', '.join(map(md_text, v.classes_called_out))} lose at least "
                f"{CLASS_CALLOUT_PP:g} pp more than the average class."
                for v in report.variants if v.classes_called_out]
    if callouts:
        lines += ["", "## Classes that lose more than average", "", *callouts]
    return lines


def _notes(report: Report) -> list[str]:
    lines = []
    for v in report.variants:
        if v.layer_drift:
            lines += ["", f"## Layers of {md_code(v.file)} that drift most from fp32", "",
                      "Lowest signal-to-quantization-noise ratio first; consider excluding "
                      "these from quantization or another calibration method.", "",
                      "| tensor | SQNR (dB) |", "|---|---:|"]
            lines += [f"| {md_code(d.tensor)} | {d.sqnr_db:.1f} |" for d in v.layer_drift]
    notes = [f"- {md_code(v.file)}: {md_text(v.quantization[key])}" for v in report.variants if v.quantization
             for key in ("warning", "note") if key in v.quantization]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return lines
