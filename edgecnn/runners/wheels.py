"""The runtime's wheels for another machine: numpy and onnxruntime at this host's versions.

An emulated Arm64 tree and an offline device get them from here, downloaded once for their
CPU architecture and Python, so that both sides run the same onnxruntime as this machine.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from edgecnn.errors import EdgeCNNError, last_line
from edgecnn.versions import package_versions

log = logging.getLogger(__name__)
# numpy and onnxruntime, and what onnxruntime needs besides numpy (its wheel's Requires)
RUNTIME_PACKAGES = ("numpy", "onnxruntime", "flatbuffers", "packaging", "protobuf")
# manylinux tags, newest first, with the glibc each needs
_MANYLINUX = ((2, 28), (2, 27), (2, 17))


def runtime_versions() -> dict[str, str]:
    """{package: version} of the runtime packages installed here."""
    found = package_versions(RUNTIME_PACKAGES)
    missing = [p for p in ("numpy", "onnxruntime") if p not in found]
    if missing:
        raise EdgeCNNError(f"{', '.join(missing)} is not installed here, so its version for the "
                           "other machine is not known.")
    return found


def platform_args(machine: str, python: str, glibc: tuple[int, int] = (2, 28)) -> list[str]:
    """``pip download`` arguments selecting binary wheels for ``machine`` (x86_64 or aarch64)
    running CPython ``python`` ("3.11") on ``glibc``."""
    if machine not in ("x86_64", "aarch64"):
        raise EdgeCNNError(f"No onnxruntime wheels are published for {machine} Linux machines.")
    tags = [f"manylinux_{a}_{b}_{machine}" for a, b in _MANYLINUX if (a, b) <= glibc]
    tags += [f"manylinux2014_{machine}"] if glibc >= (2, 17) else []
    if not tags:
        raise EdgeCNNError(f"glibc {glibc[0]}.{glibc[1]} is older than any onnxruntime wheel needs (2.17).")
    return ["--only-binary=:all:", *(a for t in tags for a in ("--platform", t)),
            "--python-version", python, "--implementation", "cp"]


def download(machine: str, python: str, dest: Path, glibc: tuple[int, int] = (2, 28)) -> list[Path]:
    """The runtime's wheels for that platform in ``dest`` (downloaded when missing; needs the
    package index once). Returns them."""
    versions = runtime_versions()
    wanted = [f"{name}=={version}" for name, version in versions.items()]
    dest.mkdir(parents=True, exist_ok=True)
    log.info(f"Fetching {machine} wheels for Python {python}: "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + "...")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--disable-pip-version-check", *platform_args(machine, python, glibc),
                           "-d", str(dest), *wanted], capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgeCNNError(f"pip could not download the wheels: {last_line(done.stderr or done.stdout)}")
    names = {v.split("==")[0].replace("-", "_").lower() for v in wanted}
    wheels = [w for w in sorted(dest.glob("*.whl")) if w.name.split("-")[0].lower() in names
              and w.name.split("-")[1] in versions.values()]
    return wheels
