"""``edgecnn isa``: the instruction-set classes, which of them this machine can run, and setup."""

from __future__ import annotations

from typing import Annotated

import typer


def isa(
    setup: Annotated[bool, typer.Option(
        "--setup", help="Build the Arm64 tree for emulated Arm classes (needs qemu-user, "
        "mmdebstrap and the network once).")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --setup: rebuild from scratch.")] = False,
) -> None:
    """List the instruction-set classes and how each can be measured on this machine."""
    from rich.console import Console
    from rich.table import Table

    from edgecnn.runners.qemu import (
        EMULATIONS,
        cache_dir,
        setup_arm64,
        unavailable_reason,
    )
    from edgecnn.runtime.isa import ISA_CLASSES, host_isa

    if setup:
        typer.echo(f"Arm64 tree ready in {setup_arm64(force=force)}")
    host = host_isa()
    table = Table(title=f"This host: {host}; emulation cache {cache_dir()}")
    for column in ("class", "stands for", "here"):
        table.add_column(column)
    for name, meaning in ISA_CLASSES.items():
        reason = unavailable_reason(name)
        if name == host:
            how = "[green]native[/]"
        elif reason is None:
            how = f"[green]emulated[/] ({EMULATIONS[name].qemu} -cpu {EMULATIONS[name].cpu})"
        else:
            how = f"[red]no[/]: {reason}"
        table.add_row(name, meaning, how)
    Console(width=160).print(table)
