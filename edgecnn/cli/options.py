"""Options shared by several commands."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

Force = Annotated[bool, typer.Option("--force", help="Replace existing files that differ.")]
Seed = Annotated[int, typer.Option(help="Random seed; the same seed repeats a run.")]
Provider = Annotated[str, typer.Option(
    "--provider", help="Execution provider: auto, cpu, cuda, tensorrt, openvino, ... "
    "(a missing one is an error, never a silent CPU fallback).")]
IsaList = Annotated[Optional[str], typer.Option(
    "--isa", help="Instruction-set classes: all, host, or a comma-separated list of x86-vnni, "
    "x86-avx2, x86-sse4, arm64-neon, arm64-dot, arm64-i8mm (emulated with qemu-user when not "
    "the host's; see `edgecnn isa`).")]
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
