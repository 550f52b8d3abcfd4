"""Another instruction-set class under qemu-user: the emulated runner, and the Arm64 tree it needs.

x86 classes below the host's run the same interpreter under ``qemu-x86_64 -cpu MODEL``. Arm64
classes run a bare Debian arm64 tree (python3 + the aarch64 wheels of numpy and onnxruntime)
under ``qemu-aarch64``; :func:`setup_arm64` builds it once into the cache folder, after which
everything works offline. Two traps handled here: onnxruntime crashes at import without an Arm
``/proc/cpuinfo`` (qemu-user serves the file from the tree), and that file's ``Features`` must
match the emulated CPU (claiming ``asimddp`` on a Cortex-A72 gives SIGILL), so each class gets its
own view of the tree with a cpuinfo written from the emulated CPU's own HWCAP bits.

Emulated runs are for accuracy only: nobody should quote a latency measured under qemu.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import edgecnn
from edgecnn.errors import EdgeCNNError, last_line
from edgecnn.results.report import Place
from edgecnn.runners import wheels, worker
from edgecnn.runners.base import CellRun, Provenance
from edgecnn.runtime.isa import AT_HWCAP, AT_HWCAP2, ISA_CLASSES, host_isa

log = logging.getLogger(__name__)
SETUP_HINT = ("make isa (or: apt-get install --no-install-recommends qemu-user mmdebstrap && "
              "edgecnn isa --setup)")
_TIMEOUT_S = 3600
_PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class Emulation:
    """How qemu-user stands in for a class: which emulator and which CPU model."""

    qemu: str
    cpu: str
    # numpy's view of the emulated CPU that proves the emulation took effect (present, absent).
    expect: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    # Arm only: the "CPU variant" and "CPU part" of /proc/cpuinfo. onnxruntime picks kernels by
    # core as well as by HWCAP, and a part that claims more than the CPU has gives SIGILL.
    midr: tuple[str, str] = ("0x0", "0x0")


# qemu's TCG has no AVX-512, so x86-vnni can only be measured on a VNNI host.
EMULATIONS: dict[str, Emulation] = {
    "x86-avx2": Emulation("qemu-x86_64", "Haswell", (frozenset({"AVX2"}), frozenset({"AVX512VNNI"}))),
    "x86-sse4": Emulation("qemu-x86_64", "Nehalem", (frozenset({"SSE41"}), frozenset({"AVX2"}))),
    "arm64-neon": Emulation("qemu-aarch64", "cortex-a72", (frozenset({"ASIMD"}), frozenset({"ASIMDDP"})),
                            ("0x0", "0xd08")),
    "arm64-dot": Emulation("qemu-aarch64", "cortex-a76", (frozenset({"ASIMDDP"}), frozenset()),
                           ("0x4", "0xd0b")),
    # qemu's "max" has i8mm, SVE2 and bf16, described as the Armv9 core that has them (Neoverse
    # N2). Its SME is switched off: no i8mm-class server has it, and with it onnxruntime's
    # KleidiAI SME kernels ran dynint8 at chance accuracy under qemu 7.2.
    "arm64-i8mm": Emulation("qemu-aarch64", "max,sme=off", (frozenset({"ASIMDDP", "SVE"}), frozenset()),
                            ("0x0", "0xd49")),
}
# Linux's names for the AT_HWCAP / AT_HWCAP2 bits (arch/arm64/kernel/cpuinfo.c), for cpuinfo.
_HWCAP_NAMES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma "
    "lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg"
).split()
_HWCAP2_NAMES = (
    "dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm "
    "svef64mm svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres"
).split()


def cache_dir() -> Path:
    """Where the Arm64 tree lives: ``$EDGECNN_CACHE/isa`` or ``~/.cache/edgecnn/isa``."""
    base = os.environ.get("EDGECNN_CACHE") or Path.home() / ".cache" / "edgecnn"
    return Path(base) / "isa"


def is_native(isa: str) -> bool:
    return isa == host_isa()


def unavailable_reason(isa: str) -> str | None:
    """None when ``isa`` can be run here (natively or emulated), else why not and the fix."""
    if is_native(isa):
        return None
    emulation = EMULATIONS.get(isa)
    if emulation is None:
        return f"{isa} runs only natively (qemu cannot emulate AVX-512 VNNI); this host is {host_isa()}"
    host_arch = platform.machine().lower()
    if emulation.qemu == "qemu-x86_64" and host_arch not in ("x86_64", "amd64"):
        return f"emulating {isa} needs an x86-64 host"
    if shutil.which(emulation.qemu) is None:
        return f"{emulation.qemu} is not installed; run: {SETUP_HINT}"
    if emulation.qemu == "qemu-aarch64" and not _arm64_python().exists():
        return f"the Arm64 tree is not set up in {cache_dir()}; run: {SETUP_HINT}"
    return None


class Emulated:
    """Class ``isa`` under qemu-user, in a worker process with ``threads`` onnxruntime threads
    (0: onnxruntime's default, every core)."""

    emulated = True

    def __init__(self, isa: str, threads: int = 0) -> None:
        self.isa = self.row = isa
        self.threads = threads

    def run(self, models: Sequence[Path], images: np.ndarray) -> CellRun:
        reason = unavailable_reason(self.isa)
        if reason:
            raise EdgeCNNError(f"Cannot run on {self.isa}: {reason}.")
        emulation = EMULATIONS[self.isa]
        with tempfile.TemporaryDirectory(prefix="edgecnn-isa-") as tmp:
            inputs, outputs = Path(tmp) / "images.npy", Path(tmp) / "out.npz"
            np.save(inputs, np.ascontiguousarray(images))
            argv = [*_interpreter(self.isa), "-m", worker.__name__, "--threads", str(self.threads),
                    str(inputs), str(outputs), *(str(Path(m).resolve()) for m in models)]
            log.info(f"  {self.isa}: emulated ({emulation.qemu} -cpu {emulation.cpu}), "
                     f"{len(models)} model(s) x {len(images)} images...")
            returncode, stderr = _run_with_progress(argv, self.isa, models)
            if returncode != 0:
                raise EdgeCNNError(f"The emulated {self.isa} run failed (exit {returncode}): {last_line(stderr)}")
            with np.load(outputs, allow_pickle=False) as result:
                _check_cpu(self.isa, set(result["cpu_features"].tolist()), str(result["isa"]))
                probs = [result[f"p{i}"] for i in range(len(models))]
        return CellRun(probs, Provenance(Place.EMULATED, f"{emulation.qemu} -cpu {emulation.cpu}", self.isa))


def _run_with_progress(argv: list[str], isa: str, models: list[Path]) -> tuple[int, str]:
    """Run the worker; log which variant it is on every few seconds (an emulated class takes
    minutes, and silence that long reads as a hang). Returns its exit code and stderr."""
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True, env=_environment(isa))
        done = [0]

        def read() -> None:
            for line in proc.stdout:
                if (count := worker.models_done(line)) is not None:
                    done[0] = count

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = last = time.monotonic()
        while proc.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            if now - start > _TIMEOUT_S:
                proc.kill()
                raise EdgeCNNError(f"The emulated {isa} run took more than {_TIMEOUT_S} s; stopped.")
            if now - last >= _PROGRESS_EVERY_S and done[0] < len(models):
                last = now
                log.info(f"  {isa}: {Path(models[done[0]]).name} ({done[0] + 1} of {len(models)}), "
                         f"{now - start:.0f} s")
        reader.join(timeout=5)
        errors.seek(0)
        return proc.returncode, errors.read()


def _check_cpu(isa: str, features: set[str], seen: str) -> None:
    present, absent = EMULATIONS[isa].expect
    if not present <= features or absent & features or seen != isa:
        raise EdgeCNNError(
            f"The emulated {isa} CPU is not what was asked for (it reads as {seen}; numpy sees "
            f"{sorted(features)}); its results would be labelled with the wrong class."
        )


def _interpreter(isa: str) -> list[str]:
    emulation = EMULATIONS[isa]
    if emulation.qemu == "qemu-x86_64":
        return [emulation.qemu, "-cpu", emulation.cpu, sys.executable]
    return [emulation.qemu, "-L", str(_view(isa)), "-cpu", emulation.cpu, str(_arm64_python())]


def _environment(isa: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    package_root = str(Path(edgecnn.__file__).resolve().parents[1])  # the folder holding edgecnn/
    if EMULATIONS[isa].qemu == "qemu-aarch64":
        # The Arm64 site-packages first, so that numpy/onnxruntime never resolve to x86 builds.
        env["PYTHONPATH"] = os.pathsep.join([str(cache_dir() / "arm64-site"), package_root])
        env["PYTHONNOUSERSITE"] = "1"
    else:
        env["PYTHONPATH"] = package_root
    return env


def _arm64_root() -> Path:
    return cache_dir() / "arm64-root"


def _arm64_python() -> Path:
    return _arm64_root() / "usr" / "bin" / "python3"


def _view(isa: str) -> Path:
    """The Arm64 tree as class ``isa`` sees it: links to the tree, plus its own /proc/cpuinfo.

    Built beside its place and renamed into it, so that runs starting at once on a fresh
    machine (side by side, or Ray tasks) never see a view without its cpuinfo.
    """
    view = cache_dir() / "views" / isa
    if (view / "proc" / "cpuinfo").exists():
        return view
    view.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{isa}-", dir=view.parent))
    try:
        for entry in _arm64_root().iterdir():
            if entry.name != "proc":
                (staging / entry.name).symlink_to(entry)
        (staging / "proc").mkdir()
        features = _probe_features(isa)
        variant, part = EMULATIONS[isa].midr
        text = "".join(
            f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {features}\n"
            f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {variant}\n"
            f"CPU part\t: {part}\nCPU revision\t: 1\n\n"
            for i in range(os.cpu_count() or 1)
        )
        (staging / "proc" / "cpuinfo").write_text(text)
        if view.exists() and not (view / "proc" / "cpuinfo").exists():
            shutil.rmtree(view)  # an incomplete view an older edgecnn left
        try:
            staging.rename(view)
        except OSError:  # another run put its view there first: the same view
            if not (view / "proc" / "cpuinfo").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return view


def _probe_features(isa: str) -> str:
    """The Features line of the emulated CPU, read from its own auxiliary vector.

    Inline rather than ``runtime.isa``'s reader: importing ``edgecnn.runtime`` loads onnxruntime,
    which crashes before this cpuinfo exists.
    """
    emulation = EMULATIONS[isa]
    probe = ("import ctypes; c = ctypes.CDLL(None); c.getauxval.restype = ctypes.c_ulong; "
             f"print(c.getauxval({AT_HWCAP}), c.getauxval({AT_HWCAP2}))")
    done = subprocess.run(
        [emulation.qemu, "-L", str(_arm64_root()), "-cpu", emulation.cpu, str(_arm64_python()),
         "-c", probe], capture_output=True, text=True, env=_environment(isa), timeout=120)
    if done.returncode != 0:
        raise EdgeCNNError(f"Could not start the Arm64 Python under qemu: {last_line(done.stderr)}")
    hwcap, hwcap2 = (int(v) for v in done.stdout.split())
    names = [n for i, n in enumerate(_HWCAP_NAMES) if hwcap >> i & 1]
    names += [n for i, n in enumerate(_HWCAP2_NAMES) if hwcap2 >> i & 1]
    return " ".join(names)


def setup_arm64(force: bool = False) -> Path:
    """Build the Arm64 tree: Debian's python3 (mmdebstrap) and the aarch64 wheels of this
    host's numpy and onnxruntime versions. Needs the network once; offline afterwards."""
    for tool in ("qemu-aarch64", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise EdgeCNNError(f"{tool} is not installed; run: {SETUP_HINT}")
    cache = cache_dir()
    root, site = _arm64_root(), cache / "arm64-site"
    if force:
        for path in (root, site, cache / "views"):
            shutil.rmtree(path, ignore_errors=True)
    if not _arm64_python().exists():
        log.info(f"Building the Debian arm64 tree in {root} (mmdebstrap)...")
        shutil.rmtree(root, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        sources = [s for s in ("/etc/apt/sources.list.d/debian.sources",) if Path(s).is_file()]
        _run(["mmdebstrap", "--quiet", "--arch=arm64", "--variant=extract",
              "--include=python3,libstdc++6,libgcc-s1", "bookworm", str(root), *sources])
    if not (site / "onnxruntime").is_dir():
        version = _arm64_python_version()  # Debian bookworm's glibc is 2.36
        found = wheels.download("aarch64", version, cache / "wheels")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
              "--upgrade", "--target", str(site), *wheels.platform_args("aarch64", version),
              *(str(w) for w in found)])
    for isa in ISA_CLASSES:
        if isa.startswith("arm64"):
            _view(isa)
    return cache


def _arm64_python_version() -> str:
    minors = [int(p.name[len("python3."):]) for p in (_arm64_root() / "usr" / "bin").glob("python3.*")
              if p.name[len("python3."):].isdigit()]
    if not minors:
        raise EdgeCNNError(f"No python3.X in {_arm64_root()}; rebuild it with edgecnn isa --setup --force.")
    return f"3.{max(minors)}"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgeCNNError(f"{Path(argv[0]).name} failed: {last_line(done.stderr or done.stdout)}")
