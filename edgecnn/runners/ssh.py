"""A device reached with the system's OpenSSH client: cells and timing run there, natively.

The device keeps a cache in its ``workdir``: every file edgecnn sends (variant files, image
batches, edgecnn's own runtime code as one zip that Python imports from) is stored under its
sha256 in ``blobs/``, and every finished run under the sha256 of what it ran in ``out/``. A second
run copies nothing; a run cut off by a dropped connection is re-run from the cache. Uploads and
results are written beside their place and renamed into it, so nothing half-written is ever
used, here or there.

``ssh`` is called with ``BatchMode=yes`` (a missing key is an error, not a password prompt) and
a connect timeout, and otherwise exactly as the user's ``~/.ssh/config``, agent and known_hosts
set it up: an unknown host key is refused, as ``ssh`` refuses it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import logging
import os
import re
import shlex
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import edgecnn
from edgecnn.display import visible
from edgecnn.errors import EdgeCNNError, last_line
from edgecnn.results.bench import BenchMachine, BenchRow, DeviceBench, PredictorOverhead
from edgecnn.results.report import Place
from edgecnn.results.schema import from_json
from edgecnn.runners import remote, work, worker
from edgecnn.runners.base import CellRun, Provenance
from edgecnn.runners.devices import Device
from edgecnn.store.files import sha256_file
from edgecnn.timing.measure import Budget
from edgecnn.timing.targets import Target

log = logging.getLogger(__name__)
# ssh's own failures exit 255; these are the device-side ones the scripts below signal.
_NO_PYTHON, _NO_SPACE, _TOO_LONG = 97, 98, 99
# A call's deadline besides its work: the connection, a minute, and uploads at 256 KiB/s; the
# work on the device is estimated from the model's MACs and the device's rate (runners.work).
_SLACK_S, _UPLOAD_RATE = 60.0, 256 * 1024
_INSTALL_S = 900.0  # making a venv and pip-installing there, from its index or pushed wheels
_CALLS = itertools.count()  # names each call's process-group file
# Frames a JSON answer on the device's stdout (see SshDevice._json_call).
_FRAME = "edgecnn-answer-a1f3"
# The most a JSON answer may be: edgecnn's are kilobytes (a timing result of many rows, tens);
# a device that answers with 150 MB of junk is cut there, not read whole into memory.
MAX_ANSWER_BYTES = 8 * 2**20
_SERVER_ALIVE_S = 5  # a dropped connection is noticed within about 3 x this
_HAS_PYTHON = f'command -v "$PY" >/dev/null 2>&1 || exit {_NO_PYTHON}'


class SshDevice:
    """Runs cells, timings and setup on ``device``; see the module docstring."""

    emulated = False

    def __init__(self, device: Device, isa: str | None = None) -> None:
        self.device = device
        self.row = device.name
        self.isa = isa or "unknown"  # the class it stands for, once read there (see info())
        self.machine: dict[str, Any] | None = None  # its machine info, once a run brought it
        self.warnings: list[str] = []  # what its onnxruntime warned of on calls that succeeded
        self.rate: float | None = None  # its one-thread matmul MACs/s, once its info was read

    # -- the Runner interface -----------------------------------------------------------

    def run(self, models: Sequence[Path], images: np.ndarray, *, resent: bool = False) -> CellRun:
        """Each model's probabilities on ``images``, computed on the device by the same worker
        qemu runs; the class is the one the device's own process reads.

        The worker hashes the bytes it loads: a cached file whose bytes are not what its name
        says (sha256) is removed from the device, sent again and run again, once.
        """
        images_blob = _array_blob(images)
        names = [_file_blob(m) for m in models]
        code = self._send({**dict(zip(names, map(Path, models))), images_blob[0]: images_blob[1]})
        job = "out/" + _digest(json.dumps([code, names, images_blob[0]]).encode()) + ".npz"
        worker_argv = (f"PYTHONPATH=blobs/{code} \"$PY\" -m {worker.__name__} blobs/{images_blob[0]} {job} "
                       + " ".join("blobs/" + n for n in names))
        log.info(f"  {self.row}: on the device ({self.device.address}), {len(models)} model(s) x "
                 f"{len(images)} images...")
        start = time.monotonic()

        def progress(line: str) -> None:  # the worker's line as each model finishes, as it comes
            if (done := worker.models_done(line)) is not None and 1 <= done <= len(models):
                log.info(f"  {self.row}: {Path(models[done - 1]).name} done ({done} of {len(models)}), "
                         f"{time.monotonic() - start:.0f} s")

        data = self._call(f"{self._python()}; {detached_job(job, worker_argv)}", f"running the models on {self.row}",
                          work_s=work.work_s(self._macs(models), len(images), len(models), self.rate),
                          on_deadline=_stop_job(job), on_line=progress)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as result:
                probs = [result[f"p{i}"] for i in range(len(models))]
                seen = str(result["isa"])
                self.machine = json.loads(str(result["machine"]))
                ran = [str(h) for h in result["sha256"]]
        except (OSError, ValueError, KeyError) as exc:
            # a garbled cache entry: fetching it again would fail the same way
            if resent:
                raise EdgeCNNError(f"The result from {self.row} could not be read ({exc}), even when "
                                   "computed again: its disk or its cache is not to be trusted.") from None
            return self._run_again(models, images, job, [], f"its cached result could not be read ({exc}); "
                                   "removed and run again")
        wrong = [name for name, sha in zip(names, ran) if name.split(".")[0] != sha]
        if wrong or len(ran) != len(names):
            if resent:
                raise EdgeCNNError(f"{self.row} ran other bytes than the files sent ({', '.join(wrong)}), "
                                   "even after sending them again: its disk or its cache is not to be trusted.")
            return self._run_again(models, images, job, wrong, f"its cached {', '.join(wrong) or 'files'} held "
                                   "other bytes than their name says; removed, sent again and run again")
        self.isa = seen
        return CellRun(probs, Provenance(Place.DEVICE, f"{self.row} ({self.device.address})", seen))

    def _run_again(self, models: Sequence[Path], images: np.ndarray, job: str, blobs: list[str],
                   why: str) -> CellRun:
        """Remove the job's cached result (and ``blobs``) from the device and run once more."""
        log.warning(f"  {self.row}: {why}")
        self._call(f"rm -rf {_job_files(job)} {' '.join('blobs/' + n for n in blobs)}",
                   f"clearing {self.row}'s cache", needs_runtime=False)
        return self.run(models, images, resent=True)

    def _macs(self, files: Sequence[Path]) -> float | None:
        """The MACs per image of the variants ``files`` (read from the first, their fp32 file)."""
        return work.graph_macs(Path(files[0])) if files else None

    # -- timing, information, setup -------------------------------------------------------

    def bench(self, files: Sequence[Path], pixels: np.ndarray, targets: Sequence[Target], batches: Sequence[int],
              budget: Budget) -> tuple[list[BenchRow], dict[str, PredictorOverhead], BenchMachine]:
        """The onnxruntime rows of ``edgecnn bench`` timed on the device: (rows, Predictor
        overhead per target, the device's machine info)."""
        images = _array_blob(pixels)
        names = [_file_blob(f) for f in files]
        blobs = {**dict(zip(names, map(Path, files))), images[0]: images[1]}
        spec = {"files": ["blobs/" + n for n in names], "pixels": "blobs/" + images[0],
                "targets": [t.to_dict() for t in targets], "batches": list(batches),
                "budget": asdict(budget)}
        spec_blob = (_digest(json.dumps(spec, sort_keys=True).encode()) + ".json",
                     json.dumps(spec, sort_keys=True).encode())
        blobs[spec_blob[0]] = spec_blob[1]
        code = self._send(blobs)
        # timings are never served from the cache: each run is a new measurement
        out = f"out/bench-{spec_blob[0]}"
        command = (f"{self._python()}; mkdir -p out; PYTHONPATH=blobs/{code} \"$PY\" -m "
                   f"{remote.__name__} bench blobs/{spec_blob[0]} {out} 1>&2 || exit $?; cat {out}")
        log.info(f"  timing {len(files)} file(s) on {self.row} ({self.device.address})...")
        # each configuration is timed for at most budget.duration (thrice that here), and its
        # warm-up and last run per round, however slow, come on top
        configs = len(batches) * len(targets) * len(files)
        macs, runs = self._macs(files), budget.rounds * (budget.warmup + 1)
        per_target = sum(work.work_s(macs, runs * batch, len(files), self.rate) for batch in batches)
        result = self._json_call(command, f"timing on {self.row}",
                                 work_s=configs * 3 * budget.duration * budget.rounds + len(targets) * per_target)
        timed = from_json(DeviceBench, result, f"{self.row}'s timing result")
        self.isa = timed.machine.isa or self.isa
        return timed.rows, timed.overhead, timed.machine

    def info(self) -> dict[str, Any]:
        """What the device is, read there by edgecnn's own code: its CPU class, CPU, cores, OS,
        Python, and onnxruntime with its providers (None when it has none)."""
        code = self._send({})
        command = f"{self._python()}; PYTHONPATH=blobs/{code} \"$PY\" -m {remote.__name__} info"
        found = self._json_call(command, f"reading what {self.row} is", needs_runtime=False)
        self.isa = found.get("isa") or self.isa
        rate = found.get("macs_per_s")
        self.rate = float(rate) if isinstance(rate, (int, float)) and rate > 0 else None
        return found

    def check_ready(self) -> dict[str, Any]:
        """Refuse, in one line and before any long work here, a device that cannot run the
        runtime: unreachable, no Python, or no onnxruntime. Returns its info."""
        found = self.info()
        if not found.get("onnxruntime"):
            d = self.device
            raise EdgeCNNError(f"{d.name} ({d.address}) has no onnxruntime for {found.get('executable')} "
                               f"({found.get('onnxruntime_error')}): run edgecnn device setup {d.name}.")
        return found

    def setup(self, wheels: Sequence[Path] | None, versions: dict[str, str]) -> str:
        """A runtime-only venv in the workdir: numpy and onnxruntime of ``versions`` from the
        device's own pip, or from ``wheels`` pushed from here (an offline device). Returns the
        venv's Python. TensorFlow is never installed there."""
        d = self.device
        make = (f"{self._base_python()}; "
                f"[ -x venv/bin/python ] || \"$PY\" -m venv venv 1>&2 || exit $?; venv/bin/python -V")
        self._call(make, f"making a venv on {self.row}", needs_runtime=False, work_s=_INSTALL_S)
        pins = " ".join(shlex.quote(f"{k}=={v}") for k, v in versions.items())
        if wheels is None:
            command = (f"venv/bin/python -m pip install -q --disable-pip-version-check --timeout 10 "
                       f"--retries 1 {pins} 1>&2")
        else:
            self._send({w.name: w for w in wheels}, folder="wheels")
            files = " ".join(shlex.quote("wheels/" + w.name) for w in wheels)
            command = (f"venv/bin/python -m pip install -q --disable-pip-version-check --no-index "
                       f"--no-deps {files} 1>&2")
        self._call(command, f"installing numpy + onnxruntime on {self.row}", needs_runtime=False, work_s=_INSTALL_S)
        self._send({})  # and edgecnn's runtime, so a first run has nothing left to copy
        return f"{d.workdir}/venv/bin/python"

    def platform(self) -> dict[str, str]:
        """The device's machine, Python version and glibc, for choosing wheels to push."""
        probe = ("import json, os, platform, sys; print(json.dumps({'machine': platform.machine(), "
                 "'python': '%d.%d' % sys.version_info[:2], 'libc': ' '.join(platform.libc_ver())}))")
        command = f"{self._base_python()}; \"$PY\" -c {shlex.quote(probe)}"
        return self._json_call(command, f"reading {self.row}'s platform", needs_runtime=False)

    # -- transport ------------------------------------------------------------------------

    def _json_call(self, script: str, what: str, *, needs_runtime: bool = True, work_s: float = 0.0) -> dict[str, Any]:
        """The JSON object ``script`` prints on one line, read between two markers and as the last
        line there that is a JSON object: a login banner, or a line the device's Python prints
        before or after it, is noise around it, never part of it."""
        status = f".edgecnn-status-{os.getpid()}-{next(_CALLS)}"
        # the script in a subshell (its exit status kept in a file, a pipe has the last one's)
        out = self._call(f"{{ echo {_FRAME}; ( {script} ); rc=$?; echo; echo {_FRAME}; echo $rc > {status}; }} | "
                         f"head -c {MAX_ANSWER_BYTES}; rc=$(cat {status} 2>/dev/null); rm -f {status}; exit ${{rc:-{_TOO_LONG}}}",
                         what, needs_runtime=needs_runtime, work_s=work_s)
        parts = out.decode(errors="replace").split(_FRAME)
        framed = parts[-2] if len(parts) >= 3 else ""
        found = None
        for line in reversed(framed.splitlines()):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict):
                break
        if not isinstance(found, dict):
            answer = visible(framed.strip()[:80]) if framed.strip() else "no framed answer"
            raise EdgeCNNError(f"{self.row} answered {what} with something that is not edgecnn's JSON object "
                               f"({answer}); is the device's edgecnn code intact (edgecnn device setup)?")
        return found

    def _send(self, blobs: dict[str, Path | bytes], folder: str = "blobs") -> str:
        """Copy to the device what its cache lacks (and edgecnn's code, into blobs/); returns
        the code's blob name."""
        code_name, code_bytes = code_bundle()
        wanted = dict(blobs)
        if folder == "blobs":
            wanted[code_name] = code_bytes
        listing = self._call(f"mkdir -p {folder} && ls {folder}", f"reading {self.row}'s cache",
                             needs_runtime=False)
        present = set(listing.decode().split())
        for name, source in wanted.items():
            if name in present:
                continue
            data = source if isinstance(source, bytes) else source.read_bytes()
            log.info(f"  {self.row}: copying {name[:20]}... ({len(data) / 2**20:.1f} MiB)")
            part = f"{folder}/.part-{name}"
            # written beside, size checked, then renamed: a cut connection leaves no blob, and a
            # failed write (a full disk) removes its part, so that the space it took is free again
            self._call(f"{{ cat > {part} && [ \"$(wc -c < {part})\" -eq {len(data)} ] && mv {part} "
                       f"{folder}/{name}; }} || {{ rc=$?; rm -f {part}; exit $rc; }}", f"copying to {self.row}",
                       stdin=data, needs_runtime=False)
        return code_name

    def _python(self) -> str:
        """A shell snippet that sets $PY to the device's runtime interpreter, or exits: the venv
        ``edgecnn device setup`` made, else the device's ``python`` (default python3)."""
        return (f"if [ -x venv/bin/python ]; then PY=venv/bin/python; else PY={self._base()}; fi; "
                f"{_HAS_PYTHON}")

    def _base_python(self) -> str:
        """A shell snippet that sets $PY to the device's ``python`` (default python3), or exits."""
        return f"PY={self._base()}; {_HAS_PYTHON}"

    def _base(self) -> str:
        return shlex.quote(self.device.python) if self.device.python else "python3"

    def _call(self, script: str, what: str, *, stdin: bytes | None = None, needs_runtime: bool = True,
              work_s: float = 0.0, on_deadline: str = "", on_line: Callable[[str], None] | None = None) -> bytes:
        """Run ``script`` with sh in the device's workdir; its stdout, or one line of why not.
        ``on_line`` is given each line of its stderr as it comes (a long run's progress).

        Every call has a deadline: ``timeout_s`` of the device when set, else the connection's
        and a minute's slack beside ``work_s``, the caller's conservative estimate of the work
        there, and the time to send ``stdin`` at 256 KiB/s. A missed one stops the call's
        processes there, and ``on_deadline`` is run there too (to stop a detached job).
        onnxruntime's warnings on a call that succeeds are logged and kept in ``warnings``."""
        d = self.device
        # the call's process group, so that a missed deadline stops all of it there
        group = f".edgecnn-call-{os.getpid()}-{next(_CALLS)}.pgid"
        deadline = d.timeout_s or (d.connect_timeout + _SLACK_S + work_s + len(stdin or b"") / _UPLOAD_RATE)
        try:
            done = self._in_workdir(f"trap 'rm -f {group}' EXIT; ps -o pgid= -p $$ > {group} 2>/dev/null; {script}",
                                    stdin, deadline, on_line)
        except FileNotFoundError:
            raise EdgeCNNError("ssh is not installed here (OpenSSH client: apt-get install "
                               "openssh-client)") from None
        except subprocess.TimeoutExpired:
            self._stop(group, on_deadline)
            raise EdgeCNNError(f"{d.name} ({d.address}) did not finish {what} within {deadline:.0f} s; stopped "
                               f"(a slower device: timeout_s = N in its [devices.{d.name}] table).") from None
        if done.returncode != 0:
            raise EdgeCNNError(fault(d, what, done.returncode, done.stderr.decode(errors="replace"),
                                     needs_runtime))
        for line in runtime_warnings(done.stderr.decode(errors="replace")):
            log.warning(f"  {self.row}: {visible(line)}")
            if line not in self.warnings:
                self.warnings.append(line)
        return done.stdout

    def _in_workdir(self, script: str, stdin: bytes | None, timeout: float,
                    on_line: Callable[[str], None] | None = None) -> subprocess.CompletedProcess:
        """``script`` run with sh in the device's workdir (made when missing), within ``timeout``;
        each line of its stderr is given to ``on_line`` as it comes, and kept (its first
        MAX_ANSWER_BYTES) for the result."""
        workdir = self.device.workdir.removeprefix("~/")
        full = f"mkdir -p '{workdir}' && cd '{workdir}' || exit {_NO_SPACE}; {script}"
        argv = [*ssh_argv(self.device), "sh -c " + shlex.quote(full)]
        read_end, write_end = os.pipe()  # stderr apart from communicate(), which reads stdout
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=write_end)
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        lines: list[bytes] = []

        def read() -> None:
            kept = 0
            with open(read_end, "rb") as stderr:
                for raw in stderr:
                    if kept < MAX_ANSWER_BYTES:
                        lines.append(raw)
                        kept += len(raw)
                    if on_line is not None:
                        on_line(raw.decode(errors="replace"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            out, _ = proc.communicate(stdin or b"", timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            reader.join(timeout=5)  # an ssh multiplexing master may keep the pipe open
        return subprocess.CompletedProcess(argv, proc.returncode, out, b"".join(lines))

    def _stop(self, group: str, also: str = "") -> None:
        """Stop the process group of a call that missed its deadline, then run ``also`` (best
        effort: a device that does not answer this either keeps it until its sshd ends the
        session). The call goes first: a waiting call alive after its job was stopped would
        take the job's lock again and start it anew."""
        try:
            self._in_workdir(f"[ -s {group} ] && kill -TERM -$(tr -d ' ' < {group}) 2>/dev/null; {also}rm -f {group}",
                             None, self.device.connect_timeout + 10)
        except subprocess.TimeoutExpired:
            pass


# What onnxruntime says on stderr when something changes which kernels run (its logger's
# warnings and errors, cpuinfo failing to read the CPU): kept on success, not dropped.
_RUNTIME_WARNING = re.compile(r"\[[WE]:onnxruntime|cpuinfo|onnxruntime.*(warning|error)", re.IGNORECASE)


def runtime_warnings(stderr: str, most: int = 5) -> list[str]:
    """The lines of a successful call's stderr that are onnxruntime's warnings, at most ``most``."""
    found = [line.strip()[:300] for line in stderr.splitlines() if _RUNTIME_WARNING.search(line)]
    return list(dict.fromkeys(found))[:most]


def detached_job(job: str, command: str) -> str:
    """A shell script that has ``command`` (which writes the file ``job`` whole, or fails) run
    once on the device, detached from the connection, and prints ``job``.

    The command runs in a session of its own, no child of the connection's processes, with its
    output in ``job.log``, so a dropped connection neither stops it nor breaks its writes: it
    finishes, and a re-run prints its result. The waiting call prints the log on stderr as it
    grows (the worker's progress, live). A job runs once: ``job.run`` (made atomically, holding
    the job's process group) is its lock, and a second call waits for the first one's result; a
    lock whose process died without a word (the device rebooted) is taken again. A failed job
    says why on stderr (its log) and leaves nothing, so that the next call starts it again; a
    finished one leaves its result, and its log for the first call that takes the result."""
    launch = (f"echo $$ > {job}.run/pid.tmp; mv {job}.run/pid.tmp {job}.run/pid; exec > {job}.log 2>&1; "
              f"{command}; rc=$?; if [ $rc = 0 ]; then rm -rf {job}.run; "
              f"else echo $rc > {job}.rc.tmp; mv {job}.rc.tmp {job}.rc; fi")
    rest = f"tail -c +$((sent + 1)) {job}.log 1>&2"  # the log past what this call has printed
    return (
        "mkdir -p out; command -v setsid > /dev/null && S=setsid || S=nohup; sent=0; "
        f"while [ ! -f {job} ]; do "
        f"if [ -f {job}.log ]; then n=$(wc -c < {job}.log); [ \"$n\" -gt $sent ] 2>/dev/null && "
        f"{{ tail -c +$((sent + 1)) {job}.log | head -c $((n - sent)) 1>&2; sent=$n; }}; fi; "
        f"if [ -f {job}.rc ]; then rc=$(cat {job}.rc); {rest}; rm -rf {job}.run {job}.rc {job}.log; "
        f"[ -f {job} ] && break; [ \"$rc\" -gt 0 ] 2>/dev/null && exit $rc; exit 1; "
        f"elif mkdir {job}.run 2>/dev/null; then "
        f"( PY=\"$PY\" $S sh -c {shlex.quote(launch)} < /dev/null > /dev/null 2>&1 & ); "
        f"elif [ -f {job}.run/pid ] && ! kill -0 \"$(cat {job}.run/pid)\" 2>/dev/null && [ ! -f {job}.rc ] "
        f"&& [ ! -f {job} ]; then rm -rf {job}.run; fi; "
        "sleep 0.2; done; "
        f"[ -f {job}.log ] && {rest}; rm -rf {job}.run {job}.log; cat {job}"
    )


def _stop_job(job: str) -> str:
    """A shell snippet that stops the detached ``job``'s process group and removes its lock."""
    return (f"[ -f {job}.run/pid ] && {{ kill -TERM -\"$(cat {job}.run/pid)\" || kill -TERM \"$(cat {job}.run/pid)\"; }} "
            "2>/dev/null; "
            f"rm -rf {job}.run {job}.rc {job}.log; ")  # a result that just came is kept


def _job_files(job: str) -> str:
    """The job's result and the files it runs by (lock, status, log)."""
    return f"{job} {job}.run {job}.rc {job}.log"


def ssh_argv(device: Device) -> list[str]:
    """The ``ssh`` command line for ``device``, up to the remote command."""
    argv = ["ssh"]
    if device.ssh_config:
        argv += ["-F", device.ssh_config]
    argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={device.connect_timeout}",
             "-o", f"ServerAliveInterval={_SERVER_ALIVE_S}", "-o", "ServerAliveCountMax=3"]
    if device.port:
        argv += ["-p", str(device.port)]
    return [*argv, "--", device.ssh]


def fault(device: Device, what: str, code: int, stderr: str, needs_runtime: bool = True) -> str:
    """One line for a failed ``ssh`` call: what went wrong and what to do."""
    last = last_line(stderr)
    text = stderr.lower()
    where = f"{device.name} ({device.address})"
    if code == 255 or "ssh:" in text and "connect to host" in text:
        if "host key verification failed" in text or "remote host identification has changed" in text:
            return (f"Refused to connect to {where}: its host key is not in known_hosts (or has "
                    f"changed). Check its fingerprint and connect once with: ssh "
                    f"{device.address.replace(':', ' -p ')}. edgecnn never turns host-key checking off.")
        if "connection refused" in text:
            return f"Cannot reach {where}: connection refused (is sshd running there, on that port?)."
        if "timed out" in text:
            return (f"Cannot reach {where}: no answer within {device.connect_timeout} s "
                    "(connect_timeout in [devices.NAME] changes the wait).")
        if "could not resolve" in text or "name or service not known" in text:
            return f"Cannot reach {where}: its host name does not resolve."
        if "permission denied" in text:
            return (f"{where} refused the login: edgecnn runs ssh in batch mode, so it needs a key "
                    "that ssh offers by itself (ssh-agent, or IdentityFile in ~/.ssh/config).")
        return (f"The connection to {where} failed while {what}: {last.rstrip('.')}. Nothing half-done was "
                "kept; a re-run reuses what the device already has.")
    if "no space left" in text:
        return (f"{where} has no space left for edgecnn's cache in {device.workdir} while {what}: "
                f"free some there, or set workdir in [devices.{device.name}].")
    if code == _NO_SPACE:
        return (f"{where} cannot make or enter edgecnn's cache folder {device.workdir}: {last}; "
                f"set workdir in [devices.{device.name}].")
    if code == _TOO_LONG:  # cut where the answer passed MAX_ANSWER_BYTES, so no status came
        return (f"{where} answered {what} with more than {MAX_ANSWER_BYTES // 2**20} MiB, cut there: not "
                "edgecnn's answer; is the device's edgecnn code intact (edgecnn device setup)?")
    if code == _NO_PYTHON:
        return (f"{where} has no Python ({device.python or 'python3'}): install Python 3.10 or "
                f"later there (e.g. apt-get install python3 python3-venv), or set python in "
                f"[devices.{device.name}].")
    if needs_runtime and ("no module named 'onnxruntime'" in text or "no module named 'numpy'" in text):
        module = "onnxruntime" if "onnxruntime" in text else "numpy"
        return (f"{where} has no {module} for its Python: run edgecnn device setup "
                f"{device.name} (or pip install numpy onnxruntime there).")
    if "ensurepip is not available" in text or "no module named venv" in text:
        return (f"{where} cannot make a venv: install python3-venv there (apt-get install "
                "python3-venv), or set python to an interpreter that has numpy + onnxruntime.")
    if "error: " in last:
        last = last[last.index("error: ") + len("error: "):]
    return f"{where} failed while {what} (exit {code}): {last}"


@functools.lru_cache(maxsize=1)
def code_bundle() -> tuple[str, bytes]:
    """edgecnn's Python files as one zip the device imports from, and its blob name.

    Byte-identical for the same code (sorted, fixed dates), so its sha256 names the code.
    """
    root = Path(edgecnn.__file__).resolve().parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*.py")):
            entry = zipfile.ZipInfo(str(Path("edgecnn") / path.relative_to(root)), (1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes(), zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    return _digest(data) + ".zip", data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_blob(path: Path) -> str:
    return sha256_file(path) + Path(path).suffix


def _array_blob(array: np.ndarray) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    return _digest(data) + ".npy", data
