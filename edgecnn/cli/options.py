"""Options shared by several commands."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

Force = Annotated[bool, typer.Option("--force", help="Replace existing files that differ.")]
Seed = Annotated[int, typer.Option(help="Random seed; the same seed repeats a run.")]
# Aliases of edgecnn.runtime.providers.ALIASES (not imported: --help stays light; a test checks).
PROVIDER_ALIASES = ("auto", "cpu", "cuda", "tensorrt", "openvino", "rocm", "dml", "coreml")


def provider_name(value: str | None) -> str | None:
    """Refuse a provider that is neither an alias nor an onnxruntime provider name (usage, exit 2);
    full names become their alias, so every command accepts the same spellings."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    for part in parts:
        if part.lower() not in PROVIDER_ALIASES and not part.endswith("ExecutionProvider"):
            raise typer.BadParameter(
                f"'{part}' is not an execution provider; use one of {', '.join(PROVIDER_ALIASES)} "
                "or a full onnxruntime name such as CUDAExecutionProvider."
            )
    return ",".join(_alias(p) for p in parts)


def _alias(name: str) -> str:
    short = name.removesuffix("ExecutionProvider").lower()
    return short if short in PROVIDER_ALIASES else name


def int_list(value: str | None) -> list[int] | None:
    """Comma-separated positive integers (a usage error otherwise)."""
    if value is None:
        return None
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got '{value}'.") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"expected integers >= 1, got '{value}'.")
    return values


Provider = Annotated[str, typer.Option(
    "--provider", callback=provider_name,
    help="Execution provider: auto, cpu, cuda, tensorrt, openvino, ... "
    "(a missing one is an error, never a silent CPU fallback).")]
def isa_names(value: str | None) -> str | None:
    """Refuse an unknown instruction-set class in --isa (usage, exit 2), whatever else the run
    would skip."""
    if value is None:
        return None
    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime.isa import parse_isa_list

    try:
        parse_isa_list(value)
    except EdgeCNNError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def scheme_names(values: list[str] | None) -> list[str] | None:
    """Refuse an unknown static int8 scheme in --scheme (usage, exit 2)."""
    if not values:
        return values
    from edgecnn.quantize.int8_scheme import SCHEMES

    unknown = [v for v in values if v not in SCHEMES]
    if unknown:
        raise typer.BadParameter(f"unknown int8 scheme {', '.join(unknown)}; use any of {', '.join(SCHEMES)}.")
    return values


IsaList = Annotated[Optional[str], typer.Option(
    "--isa", callback=isa_names, help="Instruction-set classes: all, host, or a comma-separated list of x86-vnni, "
    "x86-avx2, x86-sse4, arm64-neon, arm64-dot, arm64-i8mm (emulated with qemu-user when not "
    "the host's; see `edgecnn isa`).")]
def required_variants(value: str) -> str:
    """Refuse an unknown variant name in --require (usage, exit 2)."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.validate.verdict import check_required

    try:
        return ",".join(check_required(value))
    except EdgeCNNError as exc:
        raise typer.BadParameter(str(exc)) from None


Require = Annotated[str, typer.Option(
    "--require", callback=required_variants, help="Variants that must pass on every class (fp32, int8, dynint8, fp16); "
    "another variant that breaks a gate on a class is marked 'not for' it, and the run still "
    "passes. Exit 3 when a required variant fails, a class has no passing variant, or a "
    "variant is stale.")]


class EngineName(str, Enum):
    local = "local"
    ray = "ray"


Engine = Annotated[Optional[EngineName], typer.Option(
    "--engine",
    help="local: this process; ray: Ray tasks/actors on the cluster in RAY_ADDRESS, or a Ray "
    "started here (needs edgecnn\\[scale]). Default: ray when RAY_ADDRESS is set, else local.")]
Scale = Annotated[Optional[float], typer.Option(
    help="Preprocessing scale for models without edgecnn metadata (input = pixel*scale+offset).")]
Offset = Annotated[Optional[float], typer.Option(help="Preprocessing offset (see --scale).")]


def preprocessing_from(scale: float | None, offset: float | None) -> Any:
    """A Preprocessing from --scale/--offset, or None when neither was given."""
    from edgecnn.runtime.metadata import Preprocessing

    if scale is None and offset is None:
        return None
    return Preprocessing(scale=1.0 / 255 if scale is None else scale, offset=offset or 0.0)


def keras_verbosity() -> int:
    """Keras progress bars on a terminal; one line per epoch in a log file or pipe."""
    return 1 if sys.stdout.isatty() else 2

DeviceNames = Annotated[Optional[list[str]], typer.Option(
    "--device", help="Also run on this SSH device: a \\[devices.NAME] of --targets-file, or "
    "user@host[:port]. Repeatable.")]
TargetsFile = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False, help="TOML file with \\[targets.NAME] and \\[devices.NAME] tables.")]
Unsafe = Annotated[bool, typer.Option(
    "--unsafe", help="Load a reference model whose loading runs code: a .keras with Lambda layers "
    "(Keras's safe mode OFF) or a TensorFlow SavedModel (its graph runs, and can read and write "
    "files like any program). Only for models you trust; said in the output and recorded in the report.")]
ImportModules = Annotated[Optional[list[Path]], typer.Option(
    "--import-module", help="Import this Python file first, so that the subclassed models and custom "
    "layers it defines load. Its code runs here: only for files you trust. Repeatable; said in the "
    "output and recorded in the report.")]
