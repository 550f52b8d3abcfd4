"""Per-operator time of a model, from onnxruntime's profiler (like TFLite's
``benchmark_model --enable_op_profiling`` and ``trtexec --dumpProfile``).

Runs in its own session with profiling on, never in the sessions whose latency the benchmark
reports: the profiler's own cost must not leak into those rows.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgecnn._optional import require
from edgecnn.results.bench import OpTime
from edgecnn.runtime.session import load_session
from edgecnn.timing.targets import Target

PROFILE_RUNS = 200


def profile_ops(path: Path, target: Target, inputs: list[np.ndarray],
                runs: int = PROFILE_RUNS) -> list[OpTime]:
    """One row per node of the optimised graph, slowest first: op type, node name, median µs per
    call over ``runs`` calls, and share of the summed node time."""
    ort = require("onnxruntime", "Profiling")
    with tempfile.TemporaryDirectory(prefix="edgecnn-profile-") as tmp:
        options = target.session_options(ort)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = load_session(path, target.provider, options=options,
                               provider_options=target.provider_options)
        feed, out = session.get_inputs()[0].name, session.get_outputs()[0].name
        for i in range(10):  # warm-up runs are in the trace too; they are dropped below
            session.run([out], {feed: inputs[i % len(inputs)]})
        for i in range(runs):
            session.run([out], {feed: inputs[i % len(inputs)]})
        trace = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = defaultdict(list)
    op_of: dict[str, str] = {}
    for event in trace:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        node = event["name"][: -len("_kernel_time")]
        per_node[node].append(float(event["dur"]))
        op_of[node] = event.get("args", {}).get("op_name", "?")
    medians = {node: statistics.median(times[-runs:]) for node, times in per_node.items()}
    total = sum(medians.values()) or 1.0
    rows = [OpTime(op_of[node], node, us, us / total) for node, us in medians.items()]
    return sorted(rows, key=lambda r: -r.us)
