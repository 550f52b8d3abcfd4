"""Parity: every exported variant against the Keras model on the whole test set.

The Keras model is the reference. A variant passes when it agrees with Keras closely enough
for its kind: fp32 must match almost exactly, fp16 must give the same top-1 answers, int8 may
lose at most a small amount of accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecnn import ray_engine
from edgecnn.data import load_dataset
from edgecnn.defaults import EMULATED_IMAGES, REQUIRED_VARIANTS
from edgecnn.emulation import run_rows, unavailable_reason
from edgecnn.errors import EdgeCNNError
from edgecnn.evidence import carry_earlier_rows, counts, read_previous
from edgecnn.files import sha256_file, write_json, write_text, writes_into
from edgecnn.gates import Gates
from edgecnn.keras_io import load_keras
from edgecnn.metrics import CLASS_CALLOUT_PP, agreement_metrics
from edgecnn.quant_debug import layer_drift
from edgecnn.quant_prep import calibration_images
from edgecnn.report_page import write_report_page
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import host_isa, parse_isa_list
from edgecnn.runtime.outputs import activate, to_probabilities
from edgecnn.train import KERAS_FILE, read_train_info
from edgecnn.variants import variant_files
from edgecnn.verdict import check_required, verdict
from edgecnn.versions import package_versions
from edgecnn.zoo import get_spec, list_models

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
# What turns a variant's outputs into answers: it must be what the export recorded for the
# Keras reference, or validated outputs become wrong answers (a class list moved round by one).
ANSWER_FIELDS = ("class_names", "preprocessing", "input_shape", "output", "keras_logits")
log = logging.getLogger(__name__)


@writes_into(lambda model_dir: model_dir)
def validate(
    model_dir: str | Path,
    *,
    dataset: str | None = None,
    keras_path: str | Path | None = None,
    limit: int | None = None,
    gates: Gates = Gates(),
    providers: str = "cpu",
    isa: str | Sequence[str] | None = None,
    emulated_images: int = EMULATED_IMAGES,
    engine: str | None = None,
    require: Sequence[str] = REQUIRED_VARIANTS,
) -> dict[str, Any]:
    """Validate every variant in ``model_dir`` against its Keras model; write the reports.

    The Keras reference runs once, natively. Every variant is measured on ``providers`` here
    (the native row) and, on the CPU, on each instruction-set class in ``isa``: natively when it
    is the host's, otherwise under qemu-user. Gates apply to every row.

    Args:
        model_dir: folder holding ``model*.onnx`` (and by default ``model.keras``).
        dataset: test data; defaults to the dataset the model was trained on.
        keras_path: the reference Keras model (default ``model_dir/model.keras``).
        limit: use a seeded random subset of this many test images.
        gates: tolerances.
        providers: execution providers for the native row.
        isa: instruction-set classes to measure besides the native row: "all", a list or a
            comma-separated string. A class named explicitly that cannot be run here is an
            error; with "all" it is reported as not measured, with the reason.
        emulated_images: emulated rows measure the first this many test images (the native
            row measures all of them); each row records its count.
        engine: ``local`` runs the rows here one class at a time; ``ray`` runs every (class x
            variant) row as a Ray task (default: ``ray`` when ``RAY_ADDRESS`` is set). Same
            results either way.
        require: the variants (fp32, int8, dynint8, fp16) that must pass on every class; see
            :func:`verdict` for what a failed cell of another variant means.

    Returns:
        The report (also written as ``report.json`` and ``report.md``); ``report["passed"]``
        is False when :func:`verdict` finds a failure, listed in ``report["failures"]``.
    """
    require = check_required(require)
    model_dir = Path(model_dir)
    files = variant_files(model_dir)
    keras_path = Path(keras_path or model_dir / KERAS_FILE)
    predictors = [Predictor(f, providers=providers) for f in files]
    info = predictors[0].info
    trained = read_train_info(keras_path.parent) if keras_path.name == KERAS_FILE else None
    dataset = dataset or info.dataset or (trained.dataset if trained else None)
    if not dataset:
        raise EdgeCNNError("The model does not say which dataset it was trained on; name the test dataset.")
    data = load_dataset(dataset, image_size=info.input_shape[:2])
    if limit is not None:
        data = data.subset(test=limit, seed=0)
    if data.image_shape != info.input_shape:
        raise EdgeCNNError(
            f"Dataset '{dataset}' has images of shape {data.image_shape}, the model expects "
            f"{info.input_shape}."
        )
    log.info(f"Keras reference: {keras_path} on {len(data.x_test)} test images of '{data.name}'")
    net = load_keras(keras_path)
    if info.keras_sha256 and sha256_file(keras_path) != info.keras_sha256:
        # e.g. another export replaced model.keras: comparing against it would be meaningless
        raise EdgeCNNError(
            f"{keras_path} is not the Keras model {files[0].name} was exported from (its sha256 "
            f"differs from the {info.keras_sha256[:12]}... recorded in the model); re-run "
            "edgecnn export, or name the right reference model."
        )
    x = info.preprocessing.apply(data.x_test)
    keras_out = net.predict(x, batch_size=256, verbose=0)
    if info.keras_logits:  # the export appended the activation; the reference gets it too
        keras_out = activate(keras_out, info.output)
    keras_probs = to_probabilities(keras_out, info.output)

    native = native_row_name(predictors[0].providers)
    # Emulation runs ~10-50x slower than native: emulated rows use the first N test images.
    n_emulated = min(len(data.x_test), emulated_images)
    if ray_engine.resolve_engine(engine) == "ray" and isa is not None:
        with ray_engine.connected():
            labelled = ray_engine.labelled_isas()
            rows, not_measured = _isa_rows(isa, native, labelled)
            emulated = ray_engine.run_isa_rows(rows, files, data.x_test[:n_emulated], labelled)
    else:
        rows, not_measured = _isa_rows(isa, native)
        emulated = run_rows(rows, files, data.x_test[:n_emulated])
    fp32_size = files[0].stat().st_size
    validated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    variants = []
    for i, (path, predictor) in enumerate(zip(files, predictors)):
        log.info(f"  {path.name} ({predictor.info.variant}) on {', '.join(predictor.providers)}")
        kind = predictor.info.variant
        rule = gates.rule(kind)
        # e.g. an export interrupted between writing model.onnx and its variants
        stale = predictor.info.keras_sha256 != info.keras_sha256
        mismatch = [f for f in ANSWER_FIELDS
                    if getattr(predictor.info, f) != getattr(trained or info, f)]
        by_isa = {}
        for row in [native, *emulated]:
            if row == native:
                probs, n = predictor.predict(data.x_test).probabilities, len(data.x_test)
            else:
                probs, n = emulated[row][i], n_emulated
            row_metrics = agreement_metrics(keras_probs[:n], probs, data.y_test[:n], info.class_names)
            judged = gates.judge(kind, row_metrics)
            row_metrics.pop("flip_margins")  # summarised in "flips"
            by_isa[row] = {"emulated": row != native, "passed": judged.passed,
                           "measured_at": validated_at,
                           "breaches": judged.breaches, "flips": judged.flips, **row_metrics}
        metrics = {k: v for k, v in by_isa[native].items()
                   if k not in ("emulated", "passed", "measured_at")}
        failed_rows = [row for row, m in by_isa.items() if not m["passed"]]
        passed = not failed_rows
        if failed_rows:
            rule += f" (broken on {', '.join(failed_rows)})"
        if mismatch:
            passed, rule = False, (f"metadata differs from the export's record of the Keras model "
                                   f"in {', '.join(mismatch)}: its answers would be mislabelled")
        elif stale:
            passed, rule = False, "stale: made from another Keras model than model.onnx; re-run export"
        size = path.stat().st_size
        drift = None
        if not passed and (predictor.info.quantization or {}).get("mode") == "static":
            log.info(f"  {path.name} missed its gate; comparing its layers with fp32...")
            # Training images (never test), drawn reproducibly like calibration's.
            images = calibration_images(data, min(200, len(data.x_train)))
            drift = layer_drift(files[0], path, images, info.preprocessing)
        variants.append(
            {
                "file": path.name,
                "sha256": sha256_file(path),
                "variant": kind,
                "quantization": predictor.info.quantization,
                "size_bytes": size,
                "compression": fp32_size / size,
                **metrics,
                "by_isa": {row: _row_summary(m) for row, m in by_isa.items()},
                "gate": rule,
                "passed": passed,
                "failed_on": failed_rows,
                "stale": stale,
                "mismatch": mismatch,
                "layer_drift": drift,
            }
        )
    warnings = []
    keras_accuracy = float((keras_probs.argmax(1) == data.y_test).mean())
    chance = 1.0 / len(info.class_names)
    if keras_accuracy < chance + 0.05:
        warnings.append(
            f"The Keras model itself is at chance on this data ({keras_accuracy:.1%}; chance "
            f"{chance:.1%}): wrong preprocessing, dataset or class order? Variants that match it "
            "prove nothing."
        )
        log.warning(f"WARNING: {warnings[-1]}")
    name = info.name
    spec = get_spec(name) if name in list_models() else None
    report = {
        "model": name,
        "dataset": data.name,
        "dataset_provenance": data.provenance,
        "test_images": int(len(data.x_test)),
        "keras_file": str(keras_path.name),
        "keras_sha256": info.keras_sha256,
        "keras_accuracy": keras_accuracy,
        "warnings": warnings,
        "tutorial_result": spec.tutorial_result if spec else None,
        "tutorial_dataset": spec.dataset if spec else None,
        "gates": asdict(gates),
        "machine": {"host_isa": host_isa(), "onnxruntime": _onnxruntime_version(),
                    "native_row": native, "versions": package_versions()},
        "isa_rows": [native, *emulated],
        "isa_not_measured": not_measured,
        "variants": variants,
        "required": list(require),
        "validated_at": validated_at,
    }
    carry_earlier_rows(report, read_previous(model_dir / REPORT_JSON))
    report["failures"], report["not_for"] = verdict(report)
    report["passed"] = not report["failures"]
    write_json(model_dir / REPORT_JSON, report)
    write_text(model_dir / REPORT_MD, render_markdown(report))
    write_report_page(model_dir)
    return report


def native_row_name(active_providers: Sequence[str]) -> str:
    """The native row's name: the host's ISA class on the CPU, else the accelerator's provider."""
    primary = active_providers[0]
    if primary == "CPUExecutionProvider":
        return host_isa()
    return primary.removesuffix("ExecutionProvider").lower()


def _isa_rows(isa: str | Sequence[str] | None, native: str,
              labelled: set[str] = frozenset()) -> tuple[list[str], dict[str, str]]:
    """The classes to run beside the native row, and those that cannot be run here (or on a
    Ray node ``labelled`` with the class)."""
    if isa is None:
        return [], {}
    requested = parse_isa_list(isa)
    items = [isa.strip()] if isinstance(isa, str) else list(isa)
    explicit = items != ["all"]
    rows, not_measured = [], {}
    for name in requested:
        if name == native:
            continue
        reason = None if name in labelled else unavailable_reason(name)
        if reason and explicit:
            raise EdgeCNNError(f"Cannot validate on {name}: {reason}.")
        if reason:
            log.info(f"  {name}: not measured ({reason})")
            not_measured[name] = reason
        else:
            rows.append(name)
    return rows, not_measured


def _row_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("accuracy", "accuracy_delta", "agreement", "max_abs_diff", "images", "emulated", "passed",
            "breaches", "flips", "measured_at")
    return {k: metrics[k] for k in keys}


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _flips_line(variant: dict[str, Any]) -> str:
    f = variant["flips"]
    return (f"- `{variant['file']}`: {f['total']} of {variant['images']:,}, {f['near_tie']} near-ties "
            f"(tie margin {f['tie_margin']:.2g}), {f['confident']} confident.")


def _status(variant: dict[str, Any], report: dict[str, Any]) -> str:
    if variant["passed"]:
        return "pass"
    if variant["variant"] in report["not_for"]:
        return f"not for {', '.join(variant['failed_on'])}"
    return "**FAIL**"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _row_header(report: dict[str, Any], row: str) -> str:
    cell = next((v["by_isa"][row] for v in report["variants"] if row in v["by_isa"]), {})
    if cell.get("carried"):
        return f"{row} (earlier run, {str(cell.get('measured_at'))[:10]})"
    return row if row == report["machine"]["native_row"] else f"{row} (emulated)"


def render_isa_matrix(report: dict[str, Any]) -> list[str]:
    """Accuracy (Δ vs Keras) of every variant on every measured class; empty for one row."""
    rows = report.get("isa_rows", [])
    if len(rows) < 2 and not report.get("isa_not_measured"):
        return []
    machine = report["machine"]
    emulated = [m["images"] for m in report["variants"][0]["by_isa"].values()
                if m["emulated"] and not m.get("carried")]
    lines = ["", "## Accuracy per instruction-set class", "",
             f"Measured with onnxruntime {machine['onnxruntime']} on a {machine['host_isa']} host."
             + (f" *Emulated* rows ran under qemu-user on the first {emulated[0]:,} test images, "
                "with Δ against Keras on the same images (accuracy only: no latency is ever "
                "taken from an emulated run)." if emulated else ""), "",
             "| variant | " + " | ".join(_row_header(report, r) for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for v in report["variants"]:
        cells = []
        for r in rows:
            m = v["by_isa"].get(r)
            if m is None:
                cells.append("—")
                continue
            mark = "" if m["passed"] else " **FAIL**"
            if not counts(m):
                mark += " (outdated: other files)"
            cells.append(f"{_pct(m['accuracy'])} ({m['accuracy_delta'] * 100:+.2f} pp){mark}")
        lines.append(f"| {v['variant']} | " + " | ".join(cells) + " |")
    for isa_name, reason in report.get("isa_not_measured", {}).items():
        lines.append(f"\n{isa_name}: not measured ({reason}).")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """A readable report: one row per variant, then per-class accuracy."""
    lines = [
        f"# Validation report: {report['model']}",
        "",
        f"Dataset `{report['dataset']}`, {report['test_images']} test images"
        + (f" ({report['dataset_provenance']})" if report.get("dataset_provenance") else "")
        + f". Keras accuracy **{_pct(report['keras_accuracy'])}**"
        + (f" (tutorial: {report['tutorial_result']}"
           + (f", measured on full `{report['tutorial_dataset']}`, not on `{report['dataset']}`"
              if report.get("tutorial_dataset") not in (None, report["dataset"]) else "")
           + ")" if report["tutorial_result"] else "")
        + ".",
        "",
        "| variant | file | size | compression | accuracy | Δ vs Keras | agreement | max abs Δp "
        "| gate | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for v in report["variants"]:
        lines.append(
            f"| {v['variant']} | `{v['file']}` | {v['size_bytes'] / 1024:.0f} KiB "
            f"| {v['compression']:.2f}× | {_pct(v['accuracy'])} "
            f"| {v['accuracy_delta'] * 100:+.2f} pp | {_pct(v['agreement'])} "
            f"| {v['max_abs_diff']:.2e} | {v['gate']} | {_status(v, report)} |"
        )
    lines += [f"**Warning:** {w}" for w in report.get("warnings", [])]
    changed = [_flips_line(v) for v in report["variants"] if v["flips"]["total"]]
    if changed:
        lines += ["", "Changed answers (top-1 differs from Keras) on this machine's row; a near-tie "
                  "is a flip between classes Keras itself separates by less than the tie margin:",
                  "", *changed]
    lines += render_isa_matrix(report)
    names = list(report["variants"][0]["per_class_accuracy"])
    lines += ["", "## Per-class accuracy", ""]
    lines.append("| class | Keras | " + " | ".join(v["variant"] for v in report["variants"]) + " |")
    lines.append("|---|---:|" + "---:|" * len(report["variants"]))
    first = report["variants"][0]
    for name in names:
        ref = None
        if first["per_class_accuracy"][name] is not None:
            ref = first["per_class_accuracy"][name] - first["per_class_delta"][name]
        cells = [_pct(v["per_class_accuracy"][name]) for v in report["variants"]]
        lines.append(f"| {name} | {_pct(ref)} | " + " | ".join(cells) + " |")
    callouts = [
        f"- `{v['file']}`: {', '.join(v['classes_called_out'])} lose at least "
        f"{CLASS_CALLOUT_PP:g} pp more than the average class."
        for v in report["variants"]
        if v["classes_called_out"]
    ]
    if callouts:
        lines += ["", "## Classes that lose more than average", "", *callouts]
    for v in report["variants"]:
        if v.get("layer_drift"):
            lines += ["", f"## Layers of `{v['file']}` that drift most from fp32", "",
                      "Lowest signal-to-quantization-noise ratio first; consider excluding "
                      "these from quantization or another calibration method.", "",
                      "| tensor | SQNR (dB) |", "|---|---:|"]
            lines += [f"| `{d['tensor']}` | {d['sqnr_db']:.1f} |" for d in v["layer_drift"]]
    notes = [
        f"- `{v['file']}`: {q[key]}"
        for v in report["variants"]
        if (q := v.get("quantization"))
        for key in ("warning", "note")
        if key in q
    ]
    if notes:
        lines += ["", "## Notes", "", *notes]
    lines += ["", "## Verdict", "",
              f"Required on every class: {', '.join(report['required'])}. A variant that breaks "
              "a gate on a class is *not for* that class; the run fails when a required variant "
              "breaks one, a class has no passing variant, or a variant is stale.", ""]
    lines += [f"- FAIL: {f}" for f in report["failures"]]
    lines += [f"- `{v}` is not for {', '.join(rows)}." for v, rows in report["not_for"].items()]
    lines += ["", f"Overall: {'PASS' if report['passed'] else 'FAIL'}.", ""]
    return "\n".join(lines)
