"""Instruction-set classes: the CPU families whose int8 kernels compute differently.

onnxruntime picks its int8 kernels by instruction set. On x86 without VNNI, U8S8 products are
summed in pairs into int16 with saturation (VPMADDUBSW), so the same int8 file can lose accuracy
there that it does not lose on a VNNI or Arm CPU. An accuracy figure therefore belongs to a
class, and every report says which one it was measured on.
"""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

from edgecnn.errors import EdgeCNNError

# Class name -> what it stands for. The order is the order reports list them in.
ISA_CLASSES: dict[str, str] = {
    "x86-vnni": "x86-64 with AVX-512 VNNI or AVX-VNNI (Ice Lake, Sapphire Rapids, Zen 4 servers)",
    "x86-avx2": "x86-64 with AVX2 but no VNNI (Haswell to Skylake, Zen 1-3): U8S8 pair sums saturate",
    "x86-sse4": "x86-64 without AVX2 (SSE4.1 kernels)",
    "arm64-neon": "Arm64 NEON without dot product (Cortex-A72: Raspberry Pi 4)",
    "arm64-dot": "Arm64 with the dot-product extension (Cortex-A76: Raspberry Pi 5)",
    "arm64-i8mm": "Arm64 with int8 matrix multiply (Neoverse N2/V1, Graviton 3 and later)",
}
UNKNOWN = "unknown"

# Linux auxiliary-vector bits (asm/hwcap.h) that select onnxruntime's Arm int8 kernels.
AT_HWCAP, AT_HWCAP2 = 16, 26
_HWCAP_ASIMDDP = 1 << 20
_HWCAP2_I8MM = 1 << 13


def classify_x86(flags: set[str]) -> str:
    """The class of an x86-64 CPU from its ``/proc/cpuinfo`` flags."""
    if {"avx512_vnni", "avx_vnni"} & flags:
        return "x86-vnni"
    if "avx2" in flags:
        return "x86-avx2"
    return "x86-sse4"


def classify_arm64(hwcap: int, hwcap2: int) -> str:
    """The class of an Arm64 CPU from its AT_HWCAP / AT_HWCAP2 bits."""
    if hwcap2 & _HWCAP2_I8MM:
        return "arm64-i8mm"
    if hwcap & _HWCAP_ASIMDDP:
        return "arm64-dot"
    return "arm64-neon"


def host_isa() -> str:
    """The class of the CPU this process runs on natively, or ``"unknown"``."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        flags = _x86_flags()
        return classify_x86(flags) if flags else UNKNOWN
    if machine in ("aarch64", "arm64"):
        hwcaps = _arm64_hwcaps()
        return classify_arm64(*hwcaps) if hwcaps else UNKNOWN
    return UNKNOWN


# numpy's CPUID names -> /proc/cpuinfo's, for the flags both report.
_CPUID_FLAGS = {
    "AVX512VNNI": "avx512_vnni", "AVX512F": "avx512f", "AVX2": "avx2", "SSE41": "sse4_1",
    "FMA3": "fma", "F16C": "f16c", "BMI2": "bmi2", "MOVBE": "movbe", "GFNI": "gfni",
    "VAES": "vaes", "VPCLMULQDQ": "vpclmulqdq",
}


def _x86_flags() -> set[str]:
    """The CPU's flags as ``/proc/cpuinfo`` names them, corrected by what CPUID says."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = next((set(line.partition(":")[2].split()) for line in text.splitlines()
                  if line.startswith("flags")), set())
    return x86_flags(flags, cpu_features())


def x86_flags(cpuinfo: set[str], cpuid: dict[str, bool]) -> set[str]:
    """``/proc/cpuinfo``'s flags corrected by numpy's CPUID view ``cpuid``.

    numpy reads CPUID itself, so under qemu-user it sees the emulated CPU while
    ``/proc/cpuinfo`` still describes the real one. numpy has no name for AVX-VNNI, so when
    the two disagree on any flag they share (the file describes another CPU than this one) or
    there is no AVX2, AVX-VNNI is not claimed: every CPU that has it also has GFNI and VAES,
    which an emulated CPU without them then shows missing.
    """
    flags, foreign = set(cpuinfo), False
    for numpy_name, flag in _CPUID_FLAGS.items():
        if numpy_name not in cpuid:
            continue
        if cpuid[numpy_name]:
            flags.add(flag)
        elif flag in flags:
            flags.discard(flag)
            foreign = True
    if foreign or (cpuid and not cpuid.get("AVX2")):
        flags.discard("avx_vnni")
    return flags


def cpu_features() -> dict[str, bool]:
    """numpy's CPUID / HWCAP view of the CPU this process runs on (empty if unavailable)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:  # numpy < 2
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return dict(__cpu_features__)


def _arm64_hwcaps() -> tuple[int, int] | None:
    try:
        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        libc.getauxval.argtypes = [ctypes.c_ulong]
        return int(libc.getauxval(AT_HWCAP)), int(libc.getauxval(AT_HWCAP2))
    except (OSError, AttributeError):  # not Linux/glibc
        return None


def parse_isa_list(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """ISA class names from ``"all"``, ``"host"``, a comma-separated string or a list.

    ``None`` and ``"host"`` mean the host's class alone.
    """
    if text is None:
        items = ["host"]
    elif isinstance(text, str):
        items = [t.strip() for t in text.split(",") if t.strip()]
    else:
        items = list(text)
    if items == ["all"]:
        return list(ISA_CLASSES)
    out = []
    for item in items:
        name = host_isa() if item == "host" else item
        if name not in ISA_CLASSES:
            raise EdgeCNNError(
                f"Unknown instruction-set class '{item}'"
                + (" (this host's CPU could not be classified)" if item == "host" else "")
                + f"; use all, host or any of: {', '.join(ISA_CLASSES)}."
            )
        if name not in out:
            out.append(name)
    return sorted(out, key=list(ISA_CLASSES).index)
