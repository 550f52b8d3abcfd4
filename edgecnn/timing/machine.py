"""A description of the machine a benchmark ran on, stored with every result."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from edgecnn.runtime.isa import host_isa
from edgecnn.versions import package_versions


# Arm's core names by their /proc/cpuinfo "CPU part" (implementer 0x41, Arm Ltd): an Arm
# kernel gives no model name, and the core decides the speed (a Pi 5's A76, a Graviton's Neoverse).
ARM_CORES = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4d": "Cortex-A715", "0xd4f": "Neoverse-V2",
}
# Where Linux names the board or machine: a device tree (Raspberry Pi, most Arm boards) or the
# firmware's DMI table (PCs, servers, cloud instances: "Amazon EC2 c7g.large").
_DEVICE_TREE_MODEL = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
_DMI = ("/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name")
CPUINFO = "/proc/cpuinfo"


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it; on Arm, its cores' names."""
    lines = _read(CPUINFO, None).splitlines()
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    parts = [line.split(":", 1)[1].strip().lower() for line in lines if line.startswith("CPU part")]
    if parts:  # big.LITTLE boards have two kinds of core
        return " + ".join(dict.fromkeys(ARM_CORES.get(p, f"Arm part {p}") for p in parts))
    return platform.processor() or platform.machine()


def board() -> str | None:
    """The board or machine Linux names (a Pi 5 from a Graviton), None where it names none."""
    for path in _DEVICE_TREE_MODEL:
        text = _read(path).replace("\0", "").strip()
        if text:
            return text
    named = " ".join(dict.fromkeys(t for t in map(_read, _DMI) if t and "to be filled" not in t.lower()))
    return named or None


def _read(path: str, limit: int | None = 256) -> str:
    try:
        with open(path, errors="replace") as handle:
            return handle.read(limit).strip()
    except OSError:
        return ""


def _cpu_flags() -> list[str]:
    try:
        with open(CPUINFO) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags)
    except OSError:
        pass
    return []


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine_info() -> dict[str, Any]:
    """CPU, its architecture and board, cores, GPUs, OS and the versions of the packages that
    affect the numbers."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "board": board(),
        "cpu_flags": _cpu_flags(),
        "isa": host_isa(),
        "cores": os.cpu_count(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": package_versions(),
    }
