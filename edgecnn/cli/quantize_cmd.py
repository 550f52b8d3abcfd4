"""``edgecnn quantize``: int8 / fp16 variants of an exported model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecnn.cli.options import Force, IsaList, Seed, scheme_names
from edgecnn.cli.report_view import print_quantized
from edgecnn.defaults import DEFAULT_CALIBRATION


class Variant(str, Enum):
    int8 = "int8"
    dynint8 = "dynint8"
    fp16 = "fp16"
    all = "all"
    static = "static"  # onnxruntime's names for how int8 and dynint8 are made
    dynamic = "dynamic"


class Method(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


def quantize(
    model: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                          help="The fp32 model.onnx written by export.")],
    variant: Annotated[Variant, typer.Option(
        "--variant", "--mode", help="Which variant(s) to write: int8 (static QDQ; 'static' also "
        "works), dynint8 ('dynamic'), fp16 or all.")] = Variant.all,
    calibration: Annotated[int, typer.Option(
        min=1, help="Training images used to calibrate static int8.")] = DEFAULT_CALIBRATION,
    method: Annotated[Method, typer.Option(help="Static calibration method.")] = Method.minmax,
    per_channel: Annotated[bool, typer.Option(
        "--per-channel/--per-tensor", help="Weight scales per output channel or per tensor.")] = True,
    bias_correction: Annotated[bool, typer.Option(
        "--bias-correction/--no-bias-correction", help="Static int8: a scheme that does not hold is "
        "tried again with each layer's mean output shift against fp32 (128 calibration images, layer "
        "by layer) taken out of its bias.")] = True,
    dynamic_conv: Annotated[bool, typer.Option(
        "--dynamic-conv", help="Also quantize Conv dynamically (ConvInteger; measured 4-11x "
        "slower than fp32 on x86 CPUs).")] = False,
    dataset: Annotated[Optional[str], typer.Option(
        help="Calibration data (default: the model's training dataset).")] = None,
    seed: Seed = 0,
    isa: IsaList = "all",
    scheme: Annotated[Optional[list[str]], typer.Option(
        callback=scheme_names, help="Static int8 scheme(s) to try, in order: u8s8-reduce-range, u8s8, u8u8 "
        "(default: all, in that order; the first that holds on every --isa class is kept).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(
        help="Node name or op type (e.g. Conv) to keep in float in static int8; repeatable.")] = None,
    auto_exclude: Annotated[bool, typer.Option(
        "--auto-exclude/--no-auto-exclude", help="When no scheme holds, keep the layers that "
        "drift most from fp32 in float until one does.")] = True,
    speed_search: Annotated[bool, typer.Option(
        "--speed-search/--no-speed-search", help="Then keep each op type in float that is timed "
        "faster in float on this CPU (batch 1 and 64, one thread); the result is gated again. A "
        "file made from the same fp32 model keeps its choice unless --force.")] = True,
    force: Force = False,
) -> None:
    """Write int8 (static QDQ, dynamic) and fp16 variants next to MODEL."""
    from edgecnn.quantize.quantize import DEFAULT_DYNAMIC_OPS, QUANTIZED
    from edgecnn.quantize.quantize import quantize as run_quantize

    variants = QUANTIZED if variant is Variant.all else (variant.value,)
    ops = (*DEFAULT_DYNAMIC_OPS, "Conv") if dynamic_conv else DEFAULT_DYNAMIC_OPS
    from edgecnn.quantize.int8_scheme import SCHEMES

    print_quantized(run_quantize(model, variants=variants, calibration=calibration, method=method.value,
                                 per_channel=per_channel, bias_correction=bias_correction,
                                 dataset=dataset, dynamic_ops=ops,
                                 seed=seed, isa=isa or "all", schemes=scheme or tuple(SCHEMES),
                                 exclude=exclude or (), auto_exclude=auto_exclude,
                                 speed_search=speed_search, force=force))
