"""``edgecnn device setup``: a runtime-only environment on a device, online or offline."""

from __future__ import annotations

import logging
from typing import Any

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
    found = remote.platform()
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
        glibc = tuple(int(x) for x in version.split(".")[:2])
        folder = cache_dir().parent / "wheels" / f"{found['machine']}-cp{found['python'].replace('.', '')}"
        remote.setup(wheels.download(found["machine"], found["python"], folder, glibc), versions)
    return remote.info()
