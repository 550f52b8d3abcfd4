"""What runs on an SSH device besides the worker: reading what it is, and timing there.

    python -m edgecnn.runners.remote info
    python -m edgecnn.runners.remote bench SPEC.json OUT.json

Sent as part of edgecnn's code zip (see :mod:`edgecnn.runners.ssh`) and run with the device's
own interpreter, which needs numpy + onnxruntime only (``info`` needs neither). OUT.json appears
only when the timing is complete.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def info() -> dict:
    """This machine as edgecnn sees it, its onnxruntime (None when missing), and its one-thread
    float matmul rate (``macs_per_s``, None without numpy), from which a run's deadline is set."""
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[threads] = "1"  # before numpy loads: the rate of one thread, as the worker runs
    from edgecnn.timing.machine import machine_info

    found = machine_info()
    found.update(executable=sys.executable, os_release=_os_release(), machine=platform.machine(),
                 onnxruntime=None, providers=[], macs_per_s=None)
    try:
        from edgecnn.runners.work import device_rate
    except ImportError:
        pass
    else:
        found["macs_per_s"] = device_rate()
    try:
        import onnxruntime
    except ImportError as exc:
        found["onnxruntime_error"] = str(exc)
    else:
        found.update(onnxruntime=onnxruntime.__version__, providers=onnxruntime.get_available_providers())
    return found


def bench(spec_path: str, out_path: str) -> None:
    """Time the spec's files on its targets here (see :func:`edgecnn.timing.rounds.time_onnxruntime`)."""
    import numpy as np
    import onnxruntime

    from edgecnn.results.schema import to_json
    from edgecnn.runtime import providers as _providers
    from edgecnn.timing.machine import machine_info
    from edgecnn.timing.measure import Budget
    from edgecnn.timing.rounds import time_onnxruntime
    from edgecnn.timing.targets import Target

    spec = json.loads(Path(spec_path).read_text())
    targets = [Target(**t) for t in spec["targets"]]
    for target in targets:  # a provider this device lacks: one line, before any timing
        _providers.resolve(target.provider, onnxruntime.get_available_providers())
    pixels = np.load(spec["pixels"], allow_pickle=False)
    rows, overhead = time_onnxruntime([Path(f) for f in spec["files"]], targets, pixels,
                                      spec["batches"], Budget(**spec["budget"]),
                                      on_step=lambda step: print(step, file=sys.stderr, flush=True))
    result = {"rows": [to_json(r) for r in rows], "overhead": {t: to_json(o) for t, o in overhead.items()},
              "machine": machine_info()}
    part = f"{out_path}.part{os.getpid()}"
    Path(part).write_text(json.dumps(result))
    os.replace(part, out_path)


def _os_release() -> str:
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                      if "=" in line)
        return fields.get("PRETTY_NAME", "").strip('"') or platform.platform()
    except OSError:
        return platform.platform()


def main(argv: list[str]) -> int:
    from edgecnn.errors import EdgeCNNError

    try:
        if argv == ["info"]:
            print(json.dumps(info()))
        elif len(argv) == 3 and argv[0] == "bench":
            bench(argv[1], argv[2])
        else:
            print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
            return 2
    except EdgeCNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
