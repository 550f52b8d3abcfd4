"""``edgecnn device``: what an SSH device is, and preparing its runtime-only environment."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgecnn.cli.options import TargetsFile

app = typer.Typer(help="SSH devices: what they are, and their runtime-only environment.",
                  no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="A \\[devices.NAME] of --targets-file, or user@host[:port].")]


@app.command()
def info(
    name: Name,
    targets_file: TargetsFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Print what the device is, as edgecnn's own code reads it there: CPU class, CPU, cores,
    OS, Python, onnxruntime and its providers."""
    import json

    from edgecnn.runners.devices import resolve_device
    from edgecnn.runners.ssh import SshDevice

    device = resolve_device(name, targets_file)
    found = SshDevice(device).info()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    _print(device, found)


@app.command()
def setup(
    name: Name,
    targets_file: TargetsFile = None,
    push_wheels: Annotated[bool, typer.Option(
        "--push-wheels", help="Copy the wheels from here instead of the device's pip (an offline "
        "device; also the fallback when its pip fails).")] = False,
) -> None:
    """Make a venv in the device's workdir with this machine's numpy and onnxruntime versions
    (never TensorFlow); edgecnn's runtime code is sent with each run."""
    from edgecnn.runners.devices import resolve_device
    from edgecnn.runners.setup import setup_device

    device = resolve_device(name, targets_file)
    found = setup_device(device, push_wheels=push_wheels)
    _print(device, found)
    where = f" --targets-file {targets_file}" if targets_file else ""
    typer.echo(f"{device.name} is ready: edgecnn validate MODEL --device {name}{where}, and edgecnn "
               f"bench MODEL --device {name}{where}")


def _print(device: Any, found: dict[str, Any]) -> None:
    from edgecnn.display import visible
    from edgecnn.runners.wheels import runtime_versions

    ort = found.get("onnxruntime")
    here = runtime_versions().get("onnxruntime")
    lines = [
        ("device", f"{device.name} ({device.address})"),
        ("CPU class", found.get("isa")),
        ("CPU", f"{found.get('cpu')}, {found.get('cores')} cores"),
        ("OS", f"{found.get('os_release')} ({found.get('os')}, {found.get('machine', '')})".replace(", )", ")")),
        ("Python", f"{found.get('python')} ({found.get('executable')})"),
        ("onnxruntime", (f"{ort}, providers {', '.join(found.get('providers') or [])}"
                         + ("" if ort == here else f" (this machine has {here}: results record both)"))
         if ort else f"not installed ({found.get('onnxruntime_error', '')}); run: edgecnn device setup {device.name}"),
    ]
    for key, value in lines:
        typer.echo(visible(f"{key + ':':<13}{value}"))
