"""Which onnxruntime session options change latency, on this machine's CPU.

    python bench/session_options.py [EXPORT_FOLDER] [--out bench/results]

Times the folder's fp32 and int8 models with onnxruntime's defaults and with one option changed
at a time (one thread, batch 1 and 64, real test images), all in alternation so that their
ratios share the machine's noise. Writes ``session-options-<model>.json`` with the machine's
description. The defaults edgecnn uses are the ones no option here beat.
"""

from __future__ import annotations

import functools
import json
import statistics
from pathlib import Path
from typing import Any

from edgecnn.benchmark.scripts import export_folder_arguments, interleaved_rounds
from edgecnn.runtime.session import load_session, session_options
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info
from edgecnn.timing.measure import RunFn

BATCHES = (1, 64)
# One change from onnxruntime's defaults each: (attribute or config key, value).
OPTIONS: dict[str, tuple[str, Any]] = {
    "default": ("", None),
    "no spinning": ("session.intra_op.allow_spinning", "0"),
    "no memory arena": ("enable_cpu_mem_arena", False),
    "no memory pattern": ("enable_mem_pattern", False),
    "denormals as zero": ("session.set_denormal_as_zero", "1"),
    "extended graph optimizations only": ("graph_optimization_level", "ORT_ENABLE_EXTENDED"),
}


def _runner(path: Path, option: str) -> RunFn:
    import onnxruntime as ort

    options = session_options(intra_op_threads=1, inter_op_threads=1)
    key, value = OPTIONS[option]
    if key == "graph_optimization_level":
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, value)
    elif key.startswith("session."):
        options.add_session_config_entry(key, value)
    elif key:
        setattr(options, key, value)
    session = load_session(path, "cpu", options=options)
    feed, out = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda x: session.run([out], {feed: x})


def main() -> None:
    args, info, data = export_folder_arguments(__doc__)
    rows = []
    for variant, file in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        for batch in BATCHES:
            inputs = [info.feed(data.x_test[i * batch:(i + 1) * batch]) for i in range(8)]
            makers = {o: functools.partial(_runner, args.folder / file, o) for o in OPTIONS}
            pooled = interleaved_rounds(makers, inputs, batch, args.rounds)
            medians = {o: statistics.median_high(v) for o, v in pooled.items()}
            for option in OPTIONS:
                rows.append({"variant": variant, "batch": batch, "option": option,
                             "p50_ms": medians[option], "vs_default": medians[option] / medians["default"],
                             "round_p50_ms": pooled[option]})
                print(f"{variant:5s} b{batch:<3d} {option:36s} {medians[option]:8.4f} ms "
                      f"{rows[-1]['vs_default']:6.3f}x")
    result = {"model": info.name, "threads": 1, "machine": machine_info(), "rows": rows}
    path = write_json(args.out / f"session-options-{info.name}.json", result)
    print(json.dumps({"saved": str(path)}))


if __name__ == "__main__":
    main()
