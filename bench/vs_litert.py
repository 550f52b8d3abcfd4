"""edgecnn's files against LiteRT's, head to head, on this machine's CPU: int8 against LiteRT's
dynamic-range int8 and fp32 against LiteRT's fp32.

    python bench/vs_litert.py [EXPORT_FOLDER] [--out bench/results] [--rounds 5]

``make bench`` times every engine one after the other; here each pair of contenders
runs in alternation (a bare ``InferenceSession.run`` on the folder's file and the LiteRT
interpreter on the same Keras model converted with ``from_keras_model``, with
``Optimize.DEFAULT`` for dynamic-range int8), round after round on the same real test images,
at one and two threads, so that their ratio shares the machine's slow phases. Writes ``vs-litert-<model>.json`` with the machine's
description. Needs ``edgecnn[engines]``; run natively only.
"""

from __future__ import annotations

import functools
import itertools
import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from edgecnn.benchmark.scripts import export_folder_arguments, interleaved_rounds
from edgecnn.export.keras_io import load_keras
from edgecnn.store.files import write_json
from edgecnn.timing.engines import bare_session, litert_engines, litert_models
from edgecnn.timing.machine import machine_info
from edgecnn.timing.targets import BUILTIN

BATCHES = (1, 8, 64)
THREADS = (1, 2)
# (edgecnn variant, its file, the LiteRT variant it is held against)
PAIRS = (("int8", "model.int8.onnx", "litert-dynint8"), ("fp32", "model.onnx", "litert-fp32"))


def main() -> None:
    args, info, data = export_folder_arguments(__doc__)
    model = load_keras(args.folder / "model.keras")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-litert-") as tmp:
        converted = litert_models(model, Path(tmp))
        for (variant, file, rival), threads in itertools.product(PAIRS, THREADS):
            target = replace(BUILTIN["cpu-1t"], name=f"cpu-{threads}t", intra_op_threads=threads)
            [theirs] = [e for e in litert_engines(converted, threads) if e.variant == rival]
            names = (f"edgecnn {variant}", rival)
            makers = {names[0]: functools.partial(bare_session, args.folder / file, target),
                      names[1]: theirs.make}
            for batch in BATCHES:
                inputs = [info.preprocessing.apply(data.x_test[i * batch:(i + 1) * batch])
                          for i in range(8)]
                pooled = interleaved_rounds(makers, inputs, batch, args.rounds)
                p50 = {name: statistics.median_high(times) for name, times in pooled.items()}
                rows.append({
                    "variant": variant, "rival": rival, "threads": threads, "batch": batch,
                    "p50_ms": p50, "round_p50_ms": pooled,
                    "rival_over_edgecnn": p50[names[1]] / p50[names[0]],
                    "rounds_edgecnn_faster": sum(a < b for a, b in zip(pooled[names[0]],
                                                                       pooled[names[1]])),
                })
    result = {"model": info.name, "rounds": args.rounds, "machine": machine_info(), "rows": rows,
              "note": "rival_over_edgecnn > 1 means edgecnn's file is faster"}
    path = write_json(args.out / f"vs-litert-{info.name}.json", result)
    print(json.dumps([{k: v for k, v in r.items() if k != "round_p50_ms"} for r in rows], indent=1))
    print(f"Saved {path}")


if __name__ == "__main__":
    main()
