"""``edgecnn device setup``: a runtime-only environment on a device, online or offline."""

from __future__ import annotations

import logging
import re
from typing import Any

from edgecnn.display import visible
from edgecnn.errors import EdgeCNNError
from edgecnn.runners import wheels
from edgecnn.runners.devices import Device
from edgecnn.runners.qemu import cache_dir
from edgecnn.runners.ssh import SshDevice

log = logging.getLogger(__name__)


def setup_device(device: Device, push_wheels: bool = False) -> dict[str, Any]:
    """Make ``workdir/venv`` on the device with this machine's numpy and onnxruntime versions:
    from the device's own pip, or (``push_wheels``, or when its pip cannot reach an index)
    from wheels downloaded here and copied there. Returns what the device then is (its info)."""
    remote = SshDevice(device)
    found = _checked_platform(device, remote.platform())
    versions = wheels.runtime_versions()
    log.info(f"{device.name}: {found['machine']}, Python {found['python']}, {found['libc'] or 'no glibc'}")
    if not push_wheels:
        try:
            remote.setup(None, versions)
        except EdgeCNNError as exc:
            log.info(f"  its own pip failed ({exc}); copying wheels from here instead")
            push_wheels = True
    if push_wheels:
        libc, _, version = found["libc"].partition(" ")
        if libc != "glibc":
            raise EdgeCNNError(f"{device.name} has no glibc ({found['libc'] or 'unknown C library'}): "
                               "onnxruntime publishes manylinux wheels only.")
        glibc = tuple(int(x) for x in version.split(".")[:2]) if re.fullmatch(r"\d+\.\d+.*", version) else (0, 0)
        folder = cache_dir().parent / "wheels" / f"{found['machine']}-cp{found['python'].replace('.', '')}"
        remote.setup(wheels.download(found["machine"], found["python"], folder, glibc), versions)
    return remote.info()


def _checked_platform(device: Device, found: dict[str, Any]) -> dict[str, Any]:
    """The device's answer, refused in one line unless it is a machine onnxruntime publishes
    wheels for and a Python version: it names a cache folder here, so it is never a path."""
    machine, python, libc = (found.get(k) for k in ("machine", "python", "libc"))
    if machine not in ("x86_64", "aarch64") or not isinstance(python, str) or not re.fullmatch(r"3\.\d{1,2}", python) \
            or not isinstance(libc, str):
        shown = visible(f"machine={machine!r}, python={python!r}, libc={libc!r}")[:200]
        raise EdgeCNNError(f"{device.name} answered a platform edgecnn has no runtime wheels for ({shown}): "
                           "an x86_64 or aarch64 Linux with CPython 3.")
    return found
