"""Parity: every exported variant against the Keras model on the whole test set.

The Keras model is the reference. A variant passes when it agrees with Keras closely enough
for its kind: fp32 must match almost exactly, fp16 must give the same top-1 answers, int8 may
lose at most a small amount of accuracy.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.data import load_dataset
from edgecnn.errors import EdgeCNNError
from edgecnn.files import write_json, write_text
from edgecnn.gates import Gates
from edgecnn.keras_io import load_keras
from edgecnn.quant_debug import layer_drift
from edgecnn.quantize import calibration_images
from edgecnn.runtime import Predictor
from edgecnn.runtime.outputs import to_probabilities
from edgecnn.train import KERAS_FILE, read_train_info
from edgecnn.variants import variant_files
from edgecnn.zoo import get_spec, list_models

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
# A class is called out when it loses this much more accuracy than the average class.
CLASS_CALLOUT_PP = 1.0
log = logging.getLogger(__name__)


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(n_classes):
        mask = labels == c
        out.append(float((pred[mask] == c).mean()) if mask.any() else None)
    return out


def agreement_metrics(
    keras_probs: np.ndarray, probs: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """Agreement and error of ``probs`` against the Keras reference on labelled images."""
    ref_pred, pred = keras_probs.argmax(1), probs.argmax(1)
    diff = np.abs(probs.astype(np.float64) - keras_probs.astype(np.float64))
    n = len(class_names)
    ref_pc = per_class_accuracy(ref_pred, labels, n)
    pc = per_class_accuracy(pred, labels, n)
    deltas = [None if a is None or b is None else b - a for a, b in zip(ref_pc, pc)]
    known = [d for d in deltas if d is not None]
    mean_delta = float(np.mean(known)) if known else 0.0
    callouts = [
        class_names[i]
        for i, d in enumerate(deltas)
        if d is not None and (d - mean_delta) * 100 <= -CLASS_CALLOUT_PP
    ]
    accuracy = float((pred == labels).mean())
    ref_accuracy = float((ref_pred == labels).mean())
    return {
        "accuracy": accuracy,
        "keras_accuracy": ref_accuracy,
        "accuracy_delta": accuracy - ref_accuracy,
        "agreement": float((pred == ref_pred).mean()),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "per_class_accuracy": dict(zip(class_names, pc)),
        "per_class_delta": dict(zip(class_names, deltas)),
        "classes_called_out": callouts,
    }


def apply_gate(kind: str, metrics: dict[str, Any], gates: Gates) -> tuple[bool, str]:
    """(passed, the rule in words) for a variant of ``kind``."""
    if kind == "fp32":
        ok = (
            metrics["agreement"] >= gates.fp32_min_agreement
            and metrics["max_abs_diff"] <= gates.fp32_max_abs_diff
        )
        rule = (
            f"agreement >= {gates.fp32_min_agreement:.2%} and max abs Δp <= "
            f"{gates.fp32_max_abs_diff:g}"
        )
    elif kind == "fp16":
        ok = metrics["agreement"] >= gates.fp16_min_agreement
        rule = f"agreement >= {gates.fp16_min_agreement:.2%}"
    else:
        ok = -metrics["accuracy_delta"] <= gates.int8_max_accuracy_drop + 1e-12
        rule = f"accuracy drop <= {gates.int8_max_accuracy_drop * 100:g} pp"
    return ok, rule


def validate(
    model_dir: str | Path,
    *,
    dataset: str | None = None,
    keras_path: str | Path | None = None,
    limit: int | None = None,
    gates: Gates = Gates(),
    providers: str = "cpu",
) -> dict[str, Any]:
    """Validate every variant in ``model_dir`` against its Keras model; write the reports.

    Args:
        model_dir: folder holding ``model*.onnx`` (and by default ``model.keras``).
        dataset: test data; defaults to the dataset the model was trained on.
        keras_path: the reference Keras model (default ``model_dir/model.keras``).
        limit: use a seeded random subset of this many test images.
        gates: tolerances.
        providers: execution providers for the ONNX side.

    Returns:
        The report (also written as ``report.json`` and ``report.md``); ``report["passed"]``
        is False when any variant broke its gate.
    """
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
    x = info.preprocessing.apply(data.x_test)
    keras_probs = to_probabilities(net.predict(x, batch_size=256, verbose=0), info.output)

    fp32_size = files[0].stat().st_size
    variants = []
    for path, predictor in zip(files, predictors):
        log.info(f"  {path.name} ({predictor.info.variant}) on {', '.join(predictor.providers)}")
        probs = predictor.predict(data.x_test).probabilities
        metrics = agreement_metrics(keras_probs, probs, data.y_test, info.class_names)
        kind = predictor.info.variant
        passed, rule = apply_gate("int8" if "int8" in kind else kind, metrics, gates)
        if predictor.info.keras_sha256 != info.keras_sha256:
            # e.g. an export interrupted between writing model.onnx and its variants
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
                "variant": kind,
                "quantization": predictor.info.quantization,
                "size_bytes": size,
                "compression": fp32_size / size,
                **metrics,
                "gate": rule,
                "passed": passed,
                "layer_drift": drift,
            }
        )
    name = info.name
    report = {
        "model": name,
        "dataset": data.name,
        "test_images": int(len(data.x_test)),
        "keras_file": str(keras_path.name),
        "keras_sha256": info.keras_sha256,
        "keras_accuracy": float((keras_probs.argmax(1) == data.y_test).mean()),
        "tutorial_result": get_spec(name).tutorial_result if name in list_models() else None,
        "gates": asdict(gates),
        "variants": variants,
        "passed": all(v["passed"] for v in variants),
    }
    write_json(model_dir / REPORT_JSON, report)
    write_text(model_dir / REPORT_MD, render_markdown(report))
    return report


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def render_markdown(report: dict[str, Any]) -> str:
    """A readable report: one row per variant, then per-class accuracy."""
    lines = [
        f"# Validation report: {report['model']}",
        "",
        f"Dataset `{report['dataset']}`, {report['test_images']} test images. "
        f"Keras accuracy **{_pct(report['keras_accuracy'])}**"
        + (f" (tutorial: {report['tutorial_result']})" if report["tutorial_result"] else "")
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
            f"| {v['max_abs_diff']:.2e} | {v['gate']} | {'pass' if v['passed'] else '**FAIL**'} |"
        )
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
    lines += ["", f"Overall: {'PASS' if report['passed'] else 'FAIL'}.", ""]
    return "\n".join(lines)
