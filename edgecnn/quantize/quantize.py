"""int8 and fp16 variants of an exported model, through onnxruntime's quantization tools.

- static: QDQ, uint8 activations, per-channel weights, calibrated on training images with the
  Predictor's preprocessing, with each layer's bias corrected for its mean output shift where
  the file holds only so (:mod:`edgecnn.quantize.bias_correction`); the weight scheme is chosen
  by measurement on each instruction-set class the file is for (:mod:`edgecnn.quantize.int8_scheme`). The output softmax
  stays float, and the conv that reads the image too where that holds the gates (faster and as
  exact on small nets: :func:`edgecnn.quantize.rewrites.float_image_convs`; not on MobileNetV2),
  and so does each op type that is timed faster in float here (:mod:`edgecnn.quantize.int8_speed`).
- dynamic: int8 weights of MatMul/Gemm only; dynamic Conv (ConvInteger) is several times slower
  than fp32 on x86 CPUs (bench/README.md), so it is opt-in.
- fp16: float16 weights with float32 inputs/outputs; a GPU format (slower on the CPU provider).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.accuracy.gates import Gates
from edgecnn.data import Dataset, load_dataset
from edgecnn.defaults import DEFAULT_CALIBRATION
from edgecnn.errors import EdgeCNNError, GateFailedError
from edgecnn.export.onnx_metadata import load_proto, read_metadata, set_metadata
from edgecnn.quantize import int8_scheme, int8_speed
from edgecnn.quantize.calibrate import (
    calibration_images,
    preprocess_for_quantization,
    quantization_module,
    selection_images,
)
from edgecnn.quantize.int8_scheme import SCHEMES
from edgecnn.quantize.qdq_loss_debug import layer_drift
from edgecnn.quantize.rewrites import (
    average_pools_as_depthwise_convs,
    float_image_convs,
    float_softmax_outputs,
)
from edgecnn.quantize.static import Method, StaticRun
from edgecnn.quantize.variant_check import check_variant
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import parse_isa_list
from edgecnn.runtime.metadata import ModelInfo
from edgecnn.store.files import (
    check_overwrite,
    sha256_file,
    temporary_folder,
    write_bytes,
    writes_into,
)
from edgecnn.variants import VARIANT_FILE, variant_names

QUANTIZED = tuple(VARIANT_FILE)
METHODS = tuple(m.value for m in Method)
DEFAULT_DYNAMIC_OPS = ("MatMul", "Gemm")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeResult:
    variant: str
    path: Path
    size_bytes: int
    written: bool
    failure: str | None = None  # static int8 only: why no file was written


@dataclass(frozen=True)
class QuantizeOptions:
    """Everything a quantization run is told, checked once when made, before any work (names
    resolved: variants, schemes, CPU classes). Fields as :func:`quantize` documents them."""

    variants: Iterable[str] = QUANTIZED
    calibration: int = DEFAULT_CALIBRATION
    method: str = "minmax"
    per_channel: bool = True
    bias_correction: bool = True
    dataset: str | Dataset | None = None
    dynamic_ops: Sequence[str] = DEFAULT_DYNAMIC_OPS
    seed: int = 0
    isa: str | Sequence[str] = "all"
    schemes: Sequence[str] = tuple(SCHEMES)
    gates: Gates = Gates()
    exclude: Sequence[str] = ()
    auto_exclude: bool = True
    speed_search: bool = True
    force: bool = False
    strict: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EdgeCNNError(f"Unknown calibration method '{self.method}'; use {', '.join(METHODS)}.")
        if not self.dynamic_ops:
            raise EdgeCNNError("Dynamic quantization needs at least one op type.")
        unknown = [name for name in self.schemes if name not in SCHEMES]
        if unknown or not self.schemes:
            raise EdgeCNNError(f"Unknown int8 scheme {unknown or list(self.schemes)}; use {', '.join(SCHEMES)}.")
        resolved = {"variants": tuple(variant_names(self.variants)), "isa": tuple(parse_isa_list(self.isa)),
                    "schemes": tuple(self.schemes), "exclude": tuple(self.exclude),
                    "dynamic_ops": tuple(self.dynamic_ops)}
        for name, value in resolved.items():  # frozen: the checked form replaces the given one
            object.__setattr__(self, name, value)

    @property
    def keep_speed_choice(self) -> bool:
        """An existing int8 file's speed choice is kept when made from the same fp32 bytes."""
        return not self.force


@writes_into(lambda model_path: model_path.parent)
def quantize(model_path: str | Path, **settings: Any) -> list[QuantizeResult]:
    """Write the requested variants of an fp32 edgecnn ONNX model next to it; ``settings`` are
    the fields of :class:`QuantizeOptions`, checked before any work.

    Static int8 tries ``schemes`` in order and keeps the first that holds the int8 ``gates``
    accuracy (and keeps the agreement and per-class gates) against fp32 on held-out training
    images on every class in ``isa`` that can be run
    here (see :mod:`edgecnn.quantize.int8_scheme`), then the first scheme with its most-drifting layers
    in float. When nothing holds, no int8 file is written (a stale one is removed, so nothing
    takes it for a good one) and GateFailedError is raised after the other variants are written.

    Args:
        model_path: the fp32 ``model.onnx``.
        variants: any of ``int8``, ``dynint8``, ``fp16`` (``static`` and ``dynamic``, onnxruntime's
            names for the two int8 methods, mean int8 and dynint8).
        calibration: number of training images for static calibration.
        method: static calibration method: minmax, entropy or percentile.
        per_channel: per-channel weight scales for static int8.
        bias_correction: try each static int8 scheme that does not hold again with each
            layer's mean output shift against fp32 taken out of its bias
            (:mod:`edgecnn.quantize.bias_correction`).
        dataset: calibration data (default: the dataset stored in the model).
        dynamic_ops: op types quantized dynamically (Conv is allowed but slow on CPUs).
        seed: picks the calibration images.
        isa: instruction-set classes the int8 file is for: "all", "host", a list or a
            comma-separated string (see :mod:`edgecnn.runtime.isa`).
        schemes: static int8 schemes to try, in order (names from ``int8_scheme.SCHEMES``).
        gates: the int8 gates (accuracy drop, agreement, worst class) each scheme must hold.
        exclude: node names or op types kept in float in static int8.
        auto_exclude: when no scheme holds, keep the layers that drift most from fp32 (per-layer
            SQNR) in float, 1, 2, 4 and 8 of them, until the int8 file holds.
        speed_search: then keep each op type in float that makes the file faster here (batch 1
            and 64, one thread), gating the result again (see :mod:`edgecnn.quantize.int8_speed`). An
            existing int8 file made from this same fp32 file keeps its choice unless ``force``,
            so a re-export gives the same bytes rather than the noise of a new timing.
        force: replace existing variant files that differ.
        strict: raise GateFailedError when no int8 scheme holds; otherwise that is a result
            with ``failure`` set (the pipeline does so when int8 is not a required variant).
    """
    options = QuantizeOptions(**settings)
    model_path = Path(model_path)
    onnx = require("onnx", "Quantization")
    info = _fp32_metadata(model_path, onnx)
    data = _calibration_data(model_path, info, options) if "int8" in options.variants else None
    results, failure = [], None
    with temporary_folder(model_path.parent, "quant") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        if {"int8", "dynint8"} & set(options.variants):
            preprocess_for_quantization(model_path, pre)
        for variant in options.variants:
            log.info(f"Quantizing {model_path.name}: {variant}")
            out = Path(tmp) / VARIANT_FILE[variant]
            if variant == "int8":
                settings, failure = _static(model_path, pre, out, data, info, options)
                if failure:
                    stale = model_path.parent / VARIANT_FILE[variant]
                    if stale.exists():  # made from an earlier model.onnx: must not pass for this one's
                        stale.unlink()
                    log.warning(f"No int8 file written: {failure}")
                    results.append(QuantizeResult(variant, stale, 0, False, failure))
                    continue
            elif variant == "dynint8":
                settings = _dynamic(pre, out, options.dynamic_ops)
            else:
                settings = _fp16(model_path, out)
            dest = model_path.parent / VARIANT_FILE[variant]
            try:
                results.append(_write_variant(onnx, out, dest, model_path,
                                              info.replace(variant=variant, quantization=settings), options.force))
            except VariantBroken as exc:  # the other variants are kept; a stale file is not
                log.warning(f"No {variant} file written: {exc}")
                dest.unlink(missing_ok=True)
                results.append(QuantizeResult(variant, dest, 0, False, str(exc)))
                failure = str(exc) if variant == "int8" else failure
    if failure and options.strict:
        raise GateFailedError(f"no static int8 scheme holds the gate: {failure}")
    return results


def _fp32_metadata(model_path: Path, onnx: Any) -> ModelInfo:
    """The metadata of an fp32 edgecnn model, or one line saying why the file is not one."""
    if not model_path.is_file():
        raise EdgeCNNError(f"Model file not found: {model_path}")
    try:
        info = read_metadata(model_path)
        onnx.checker.check_model(str(model_path))
    except EdgeCNNError:
        raise
    except Exception as exc:  # protobuf and checker errors for non-ONNX input
        raise EdgeCNNError(f"{model_path} is not a valid ONNX model: {str(exc)[:200]}") from exc
    if info is None:
        raise EdgeCNNError(f"{model_path} has no edgecnn metadata; export it with edgecnn first.")
    if info.variant != "fp32":
        raise EdgeCNNError(f"{model_path} is already a {info.variant} variant; quantize the fp32 model.")
    return info


def _calibration_data(model_path: Path, info: ModelInfo, options: QuantizeOptions) -> Dataset:
    """The dataset static int8 calibrates on, with enough training images (checked now)."""
    if not (options.dataset or info.dataset):
        raise EdgeCNNError(
            f"{model_path} does not name the data it was trained on, and static int8 needs "
            "calibration images from it; name the dataset."
        )
    data = options.dataset if isinstance(options.dataset, Dataset) else load_dataset(
        options.dataset or info.dataset, image_size=info.input_shape[:2]
    )
    calibration_images(data, options.calibration, options.seed)  # checks the count before any work
    return data


class VariantBroken(EdgeCNNError):
    """A variant file that onnxruntime does not load, or that answers unlike its fp32 file."""


def _write_variant(onnx: Any, scratch: Path, dest: Path, fp32: Path, info: ModelInfo, force: bool) -> QuantizeResult:
    """The scratch file with its metadata, checked (by onnx, then by loading and running it
    like ``fp32``) and written atomically (unless the same bytes are there already, or
    different ones are and ``force`` is not given)."""
    proto = onnx.load(str(scratch))
    set_metadata(proto, info)
    onnx.checker.check_model(proto)
    data_bytes = proto.SerializeToString()
    scratch.write_bytes(data_bytes)
    try:
        check_variant(scratch, fp32, info.variant)
    except EdgeCNNError as exc:
        raise VariantBroken(str(exc)) from exc
    written = check_overwrite(dest, data_bytes, force)
    if written:
        write_bytes(dest, data_bytes)
    return QuantizeResult(info.variant, dest, len(data_bytes), written)


def _kept_choice(earlier: dict[str, Any], float_nodes: list[str]) -> int8_speed.SpeedChoice:
    """The existing int8 file's speed choice applied to ``float_nodes``: a re-export then writes
    the same bytes, where a new timing could flip a change that was near the margin."""
    to_int8 = list(earlier.get("int8_nodes", []))
    to_float = list(earlier.get("float_nodes", []))
    types = list(earlier.get("float_types", []))
    log.info(f"  keeping the existing int8 file's choice for speed: {', '.join(types + to_int8) or 'none'} "
             "(force re-measures)")
    nodes = [n for n in dict.fromkeys([*float_nodes, *to_float]) if n not in to_int8]
    return int8_speed.SpeedChoice(nodes, types, to_int8)


def _earlier_speed_choice(fp32: Path, fp32_sha256: str) -> dict[str, Any] | None:
    """The speed choice recorded in the int8 file beside ``fp32`` when it was made from these
    very fp32 bytes (``fp32_sha256``); None when there is no such file."""
    try:
        info = read_metadata(fp32.parent / VARIANT_FILE["int8"])
    except (EdgeCNNError, OSError):
        return None
    speed = ((info.quantization or {}) if info is not None else {}).get("speed")
    if isinstance(speed, dict) and speed.get("fp32_sha256") == fp32_sha256:
        return speed
    return None


def _static(
    fp32: Path, pre: Path, out: Path, data: Dataset, info: ModelInfo, options: QuantizeOptions,
) -> tuple[dict[str, Any], str | None]:
    """Quantize with each scheme in turn until one holds on every class; then, if none did, keep
    the most-drifting layers of the first scheme in float, 1, 2, 4, 8 of them, until it holds.
    Returns (settings, failure)."""
    isas, schemes = list(options.isa), options.schemes
    calib = calibration_images(data, options.calibration, options.seed)
    images, labels = selection_images(data, options.calibration, seed=options.seed)
    fp32_probs = Predictor(fp32, providers="cpu").predict(images).probabilities
    graph = load_proto(pre)
    # these rewrite the graph (pools before activations, average pools as depthwise convs),
    # hence a graph file of its own
    average_pools_as_depthwise_convs(graph)
    image_convs = float_image_convs(graph)
    excluded = image_convs + float_softmax_outputs(graph)
    pre = pre.with_name("preprocessed-static.onnx")
    pre.write_bytes(graph.SerializeToString())
    producers = {out_name: node for node in graph.graph.node for out_name in node.output}
    excluded += [n for n in _named_nodes(options.exclude, list(producers.values())) if n not in excluded]
    run = StaticRun(pre, info, calib, images, labels, fp32_probs, isas, options.gates,
                    options.method, options.per_channel)
    # A scheme that does not hold is tried again with its biases corrected: on MobileNetV2s it
    # turned failing files into holding ones (a 2-class folder; 2 of 5 seeds, where it had the
    # held-out set lose 1.1 pp or flip 3 confident answers), but a file that holds without it is
    # not always better with it (bench/README.md, "int8 on MobileNet-class nets").
    runs = [run] + ([replace(run, bias_correction=True)] if options.bias_correction else [])

    user = _named_nodes(options.exclude, list(producers.values()))
    image_convs = [n for n in image_convs if n not in user]
    speed = _SpeedSearch(fp32, out, options, image_convs) if options.speed_search else None
    rejected = []
    # The image conv in float is faster and as exact on small nets; on a deep one (MobileNetV2)
    # it cost 5 pp of agreement, which the image conv in int8 too gives back
    # (bench/results/int8-techniques-*.json): both are tried, the float one first.
    bases = [excluded] + ([[n for n in excluded if n not in image_convs]] if image_convs else [])
    for base in bases:
        for name in schemes:
            for each in runs:
                trial = _attempt(each, name, base, out)
                if trial.passed:
                    return _static_settings(_faster(each, trial, speed), rejected, calib, labels, isas, options), None
                rejected.append(trial)
    if options.auto_exclude:
        # from the float set whose first scheme came closest to fp32, its drift measured
        base = max(bases, key=lambda b: _agreement(next(t for t in rejected if t.float_nodes == b)))
        run = runs[-1]
        run.write(SCHEMES[schemes[0]], base, out)
        drift = layer_drift(pre, out, calib[:200], info, top=32, preprocessed=True)
        worst = list(dict.fromkeys(
            producers[d["tensor"]].name for d in drift
            if d["tensor"] in producers and producers[d["tensor"]].name not in base
        ))
        for k in (1, 2, 4, 8):
            if k > len(worst):
                break
            trial = _attempt(run, schemes[0], [*base, *worst[:k]], out)
            if trial.passed:
                return _static_settings(_faster(run, trial, speed), rejected, calib, labels, isas, options), None
            rejected.append(trial)
    return {}, "; ".join(f"{t.label} {t.failure}" for t in rejected)


def _agreement(trial: int8_scheme.Trial) -> float:
    """A rejected trial's lowest agreement with fp32 over the classes it was measured on."""
    return min((m["agreement"] for m in trial.measured.values()), default=0.0)


def _attempt(run: StaticRun, name: str, float_nodes: list[str], out: Path) -> int8_scheme.Trial:
    """Scheme ``name`` with ``float_nodes`` in float, written to ``out`` and gated."""
    trial = int8_scheme.Trial(name, list(float_nodes), bias_corrected=run.bias_correction)
    log.info(f"  static int8 scheme {trial.label} on {', '.join(run.isas)}")
    run.write(SCHEMES[name], float_nodes, out)
    gated = run.gate(SCHEMES[name], out)
    gated.float_nodes, gated.bias_corrected = trial.float_nodes, trial.bias_corrected
    if not gated.passed:
        log.info(f"    {trial.label} rejected: {gated.failure}")
    return gated


@dataclass(frozen=True)
class _SpeedSearch:
    """What the speed search needs besides the run: the fp32 file (its sha256 names the choice
    kept in an earlier int8 file), the int8 file being chosen, and the image-conv nodes kept in
    float for speed rather than by request."""

    fp32: Path
    out: Path
    options: QuantizeOptions
    image_convs: list[str]


def _faster(run: StaticRun, trial: int8_scheme.Trial, speed: _SpeedSearch | None) -> int8_scheme.Trial:
    """``trial``, or a gated trial with precision changed where that is measured faster here
    (or as an earlier int8 file of the same fp32 bytes chose); ``out`` holds the returned
    trial's file. No search: ``trial`` itself."""
    if speed is None:
        return trial
    name, sha = trial.scheme, sha256_file(speed.fp32)
    earlier = _earlier_speed_choice(speed.fp32, sha) if speed.options.keep_speed_choice else None
    if earlier is not None and earlier.get("scheme") == name:
        choice = _kept_choice(earlier, trial.float_nodes)
        if choice.float_nodes != trial.float_nodes:
            choice.trial = _attempt(run, name, choice.float_nodes, speed.out)
            if not choice.trial.passed:  # e.g. judged on more classes than when it was made
                run.write(SCHEMES[name], trial.float_nodes, speed.out)
                choice = int8_speed.SpeedChoice(list(trial.float_nodes))
    else:
        log.info(f"  timing changes of precision against the {name} file, batch 1 and 64, one thread")
        pixels = run.info.feed(run.images[:512])
        choice = int8_speed.choose(
            run, SCHEMES[name], speed.out, trial.float_nodes, speed.image_convs,
            {1: pixels[:8], 64: pixels} if len(pixels) >= 64 else {1: pixels[:8]},
        )
    chosen = trial if choice.trial is None else choice.trial
    chosen.float_nodes, chosen.bias_corrected = list(choice.float_nodes), trial.bias_corrected
    chosen.speed = {"fp32_sha256": sha, "scheme": name, "float_types": choice.float_types,
                    "float_nodes": [n for n in choice.float_nodes if n not in trial.float_nodes],
                    "int8_nodes": choice.int8_nodes}
    return chosen


def _named_nodes(names: Sequence[str], nodes: list[Any]) -> list[str]:
    """Node names from names or op types (``Conv`` keeps every Conv in float)."""
    by_name = {n.name for n in nodes}
    out = []
    for item in names:
        matched = [n.name for n in nodes if n.op_type == item] or ([item] if item in by_name else [])
        if not matched:
            raise EdgeCNNError(
                f"Nothing named '{item}' to keep in float: not a node name or op type of the graph "
                f"(op types: {', '.join(sorted({n.op_type for n in nodes}))})."
            )
        out.extend(m for m in matched if m not in out)
    return out


def _static_settings(trial: int8_scheme.Trial, rejected: list[int8_scheme.Trial], calib: np.ndarray,
                     labels: np.ndarray, isas: list[str], options: QuantizeOptions) -> dict[str, Any]:
    scheme = SCHEMES[trial.scheme]
    return {
        "mode": "static", "format": "QDQ", "activations": "uint8",
        "weights": scheme.weights, "reduce_range": scheme.reduce_range,
        "per_channel": options.per_channel, "method": options.method,
        "bias_correction": trial.bias_corrected,
        "calibration_images": int(len(calib)), "calibration_split": "train",
        "float_nodes": trial.float_nodes, "isa": isas,
        **int8_scheme.summary(trial, rejected, len(labels)),
    }


def _dynamic(pre: Path, out: Path, ops: Sequence[str]) -> dict:
    quant = quantization_module()
    quant.quantize_dynamic(
        str(pre), str(out), op_types_to_quantize=list(ops), weight_type=quant.QuantType.QInt8
    )
    settings: dict[str, Any] = {"mode": "dynamic", "weights": "int8", "op_types": list(ops)}
    if "Conv" in ops:
        settings["warning"] = (
            "Conv quantized dynamically (ConvInteger): measured 4-11x slower than fp32 on x86 CPUs."
        )
    return settings


def _fp16(model_path: Path, out: Path) -> dict:
    onnx = require("onnx", "fp16 conversion")
    float16 = require("onnxconverter_common.float16", "fp16 conversion")
    with warnings.catch_warnings():
        # It warns for every tiny weight clipped to fp16's range: expected, and checked by
        # validation's agreement gate rather than by reading warnings.
        warnings.simplefilter("ignore", UserWarning)
        model = onnx.load(str(model_path))
        # A Cast is the model's own change of type (a uint8 input to float): converted, its
        # output would be float16 where the graph declares float, and the file would not load.
        casts = [n.name for n in model.graph.node if n.op_type == "Cast"]
        # A mixed-precision model's graph is half float16 already: the rest is converted too.
        half = _float16_tensors(model)
        model = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=casts,
                                                 check_fp16_ready=not half)
    onnx.save(model, str(out))
    return {"mode": "fp16", "weights": "float16", "io": "float32", "note": "a GPU format; "
            "slower than fp32 on the CPU provider",
            **({"already_float16": f"{half} tensors of the exported graph were float16 already "
                "(a mixed-precision model): the rest were converted"} if half else {})}


def _float16_tensors(model: Any) -> int:
    """How many tensors (weights and typed values) of ``model`` are float16 already."""
    half = 10  # onnx.TensorProto.FLOAT16
    return (sum(t.data_type == half for t in model.graph.initializer)
            + sum(v.type.tensor_type.elem_type == half for v in model.graph.value_info))
