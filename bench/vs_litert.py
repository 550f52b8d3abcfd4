"""edgecnn's int8 file against LiteRT's dynamic-range int8, head to head, on this machine's CPU.

    python bench/vs_litert.py [EXPORT_FOLDER] [--out bench/results] [--rounds 5]

``make bench`` times every engine one after the other; here the two contenders of issue 9 run in
alternation (bare ``InferenceSession.run`` on the folder's ``model.int8.onnx`` and the LiteRT
interpreter on the same Keras model converted with ``from_keras_model`` + ``Optimize.DEFAULT``),
round after round on the same real test images, at one and two threads, so that their ratio
shares the machine's slow phases. Writes ``vs-litert-<model>.json`` with the machine's
description. Needs ``edgecnn[engines]``; run natively only.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from edgecnn.bench.engines import litert_engines, litert_models, onnxruntime_engines
from edgecnn.bench.machine import machine_info
from edgecnn.bench.scripts import export_folder_arguments, interleaved_rounds
from edgecnn.bench.targets import BUILTIN
from edgecnn.files import write_json
from edgecnn.keras_io import load_keras

BATCHES = (1, 8, 64)
THREADS = (1, 2)


def main() -> None:
    args, info, data = export_folder_arguments(__doc__)
    model = load_keras(args.folder / "model.keras")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-litert-") as tmp:
        converted = litert_models(model, Path(tmp))
        for threads in THREADS:
            target = replace(BUILTIN["cpu-1t"], name=f"cpu-{threads}t", intra_op_threads=threads)
            [ours] = [e for e in onnxruntime_engines(args.folder / "model.int8.onnx", "int8", target)
                      if e.engine == "onnxruntime"]
            [theirs] = [e for e in litert_engines(converted, threads) if e.variant == "litert-dynint8"]
            makers = {"edgecnn int8": ours.make, "litert dynint8": theirs.make}
            for batch in BATCHES:
                inputs = [info.preprocessing.apply(data.x_test[i * batch:(i + 1) * batch])
                          for i in range(8)]
                pooled = interleaved_rounds(makers, inputs, batch, args.rounds)
                p50 = {name: statistics.median_high(times) for name, times in pooled.items()}
                rows.append({
                    "threads": threads, "batch": batch,
                    "p50_ms": p50, "round_p50_ms": pooled,
                    "litert_over_edgecnn": p50["litert dynint8"] / p50["edgecnn int8"],
                    "rounds_edgecnn_faster": sum(a < b for a, b in zip(pooled["edgecnn int8"],
                                                                       pooled["litert dynint8"])),
                })
    result = {"model": info.name, "rounds": args.rounds, "machine": machine_info(), "rows": rows,
              "note": "litert_over_edgecnn > 1 means edgecnn's int8 file is faster"}
    path = write_json(args.out / f"vs-litert-{info.name}.json", result)
    print(json.dumps([{k: v for k, v in r.items() if k != "round_p50_ms"} for r in rows], indent=1))
    print(f"Saved {path}")


if __name__ == "__main__":
    main()
