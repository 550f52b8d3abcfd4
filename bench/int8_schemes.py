"""What each static int8 scheme costs in latency, on this machine's CPU.

    python bench/int8_schemes.py [EXPORT_FOLDER] [--out bench/results]

Quantizes the folder's fp32 model with every scheme of ``edgecnn.quantize.int8_scheme`` (same
calibration images) and times them with fp32 in alternation (one thread, batch 1 and 64, real
test images), so their ratios share the machine's noise. Writes
``int8-schemes-<model>.json`` with the machine's description. Run natively only: an emulated
CPU's latency means nothing.
"""

from __future__ import annotations

import functools
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from edgecnn.benchmark.scripts import export_folder_arguments, interleaved_rounds
from edgecnn.quantize.int8_scheme import SCHEMES
from edgecnn.quantize.quantize import quantize
from edgecnn.store.files import write_json
from edgecnn.timing.engines import bare_session
from edgecnn.timing.machine import machine_info
from edgecnn.timing.targets import BUILTIN

BATCHES = (1, 64)


def main() -> None:
    args, info, data = export_folder_arguments(__doc__)
    target = BUILTIN["cpu-1t"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {"fp32": Path(tmp) / "model.onnx"}
        shutil.copy(args.folder / "model.onnx", files["fp32"])
        for name in SCHEMES:
            [result] = quantize(files["fp32"], variants=["int8"], isa="host", schemes=[name],
                                force=True)
            files[name] = Path(tmp) / f"{name}.onnx"
            shutil.move(result.path, files[name])
        rows = []
        for batch in BATCHES:
            inputs = [info.feed(data.x_test[i * batch:(i + 1) * batch])
                      for i in range(8)]
            makers = {name: functools.partial(bare_session, path, target) for name, path in files.items()}
            pooled = interleaved_rounds(makers, inputs, batch, args.rounds)
            for name in files:
                p50 = statistics.median_high(pooled[name])
                rows.append({"scheme": name, "batch": batch, "p50_ms": p50, "round_p50_ms": pooled[name]})
        for row in rows:
            fp32 = next(r for r in rows if r["scheme"] == "fp32" and r["batch"] == row["batch"])
            row["speedup_vs_fp32"] = fp32["p50_ms"] / row["p50_ms"]
    result = {"model": info.name, "target": target.to_dict(), "machine": machine_info(), "rows": rows}
    path = write_json(args.out / f"int8-schemes-{info.name}.json", result)
    print(json.dumps([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                       if k != "round_p50_ms"} for r in rows], indent=1))
    print(f"Saved {path}")


if __name__ == "__main__":
    main()
