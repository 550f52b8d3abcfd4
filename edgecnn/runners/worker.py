"""Runs models on images in another interpreter: under qemu-user, or on an SSH device.

    python -m edgecnn.runners.worker [--threads N] IMAGES.npy OUT.npz MODEL.onnx [MODEL.onnx ...]

Writes each model's (N, C) probabilities to OUT.npz (keys ``p0``, ``p1``, ... in argument
order), the CPU features the process saw (``cpu_features``), the class it reads them as
(``isa``), the machine it ran on (``machine``, JSON) and the sha256 of each model's bytes
(``sha256``), so that the caller labels the cell with what really ran, on what. OUT.npz appears only when every model has run (written beside, then renamed).
Prints :func:`progress_line` on stdout as each model finishes, for the caller's progress lines. Needs
numpy + onnxruntime only: it runs in the bare Arm64 tree and in a device's runtime-only venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from edgecnn.runtime.isa import cpu_features, host_isa
from edgecnn.timing.machine import machine_info

# Fault injection for the tests: a worker started in a folder holding HOLD_FILE says so in
# HELD_FILE and waits while HOLD_FILE exists (at most HOLD_LIMIT_S), before any model runs, so that
# a test cuts its connection at a known point instead of racing it.
HOLD_FILE, HELD_FILE, HOLD_LIMIT_S = ".edgecnn-hold-worker", ".edgecnn-worker-held", 120


def progress_line(done: int, total: int) -> str:
    """What the worker prints on stdout as each model finishes: a JSON object, one line."""
    return json.dumps({"done": done, "of": total})


def models_done(line: str) -> int | None:
    """How many models a worker's progress line says are done; None for any other line."""
    try:
        said = json.loads(line)
    except ValueError:
        return None
    done = said.get("done") if isinstance(said, dict) else None
    return done if isinstance(done, int) else None


def _say(line: str) -> None:
    """A progress line, best effort: a reader that went away (a dropped connection) never
    stops the work, whose result is a file."""
    try:
        print(line, flush=True)
    except OSError:
        pass


def _hold_if_asked() -> None:
    hold = Path(HOLD_FILE)
    if not hold.exists():
        return
    with open(HELD_FILE, "a") as held:  # one line per worker started
        held.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + HOLD_LIMIT_S
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    threads = 0
    if argv[:1] == ["--threads"] and len(argv) > 1 and argv[1].isdigit():
        threads, argv = int(argv[1]), argv[2:]
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    images = np.load(argv[0], allow_pickle=False)
    # numpy reads CPUID / HWCAP itself, so under qemu it sees the emulated CPU
    present = sorted(name for name, on in cpu_features().items() if on)
    out: dict[str, np.ndarray] = {"cpu_features": np.array(present), "isa": np.array(host_isa()),
                                  "machine": np.array(json.dumps(machine_info()))}
    _hold_if_asked()
    # the bytes each model really was, so that the caller can tell them from what it sent
    out["sha256"] = np.array([hashlib.sha256(Path(model).read_bytes()).hexdigest() for model in argv[2:]])
    try:
        for i, model in enumerate(argv[2:]):
            predictor = Predictor(model, providers="cpu", intra_op_threads=threads)
            out[f"p{i}"] = predictor.predict(images).probabilities
            _say(progress_line(i + 1, len(argv) - 2))
    except EdgeCNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    part = f"{argv[1]}.part{os.getpid()}.npz"
    np.savez(part, **out)
    os.replace(part, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
