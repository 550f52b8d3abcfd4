"""uint8 input against float input: what an app's call costs with the bytes fed as they are.

    python bench/uint8_input.py FLOAT_FOLDER UINT8_FOLDER [--out bench/results] [--rounds 5]

The two folders are exports of the same Keras model, one as it is and one with
``edgecnn export --uint8-input`` (its preprocessing in the graph, the scale folded into the
first conv). Each variant present in both is timed through the Predictor on the same uint8 test
images, interleaved call by call (one thread, batch 1 and 64): the float file pays numpy's
``x * scale`` before each call, the uint8 file a Cast in the graph. Writes
``uint8-input-<model>.json`` with the machine's description; a ratio above 1 means the uint8
file is faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from edgecnn.benchmark.scripts import interleaved_rounds
from edgecnn.data import load_dataset
from edgecnn.runtime import Predictor
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info
from edgecnn.variants import VARIANT_FILE

BATCHES = (1, 64)


def _predictor(path: Path):
    return lambda: Predictor(path, providers="cpu", intra_op_threads=1, inter_op_threads=1).predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("float_folder", type=Path)
    parser.add_argument("uint8_folder", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files = {"fp32": "model.onnx", **VARIANT_FILE}
    pairs = {v: (args.float_folder / f, args.uint8_folder / f) for v, f in files.items()
             if (args.float_folder / f).is_file() and (args.uint8_folder / f).is_file()}
    infos = {v: (Predictor(a).info, Predictor(b).info) for v, (a, b) in pairs.items()}
    for v, (a, b) in infos.items():
        if a.reads_pixels or not b.reads_pixels or a.keras_sha256 != b.keras_sha256:
            raise SystemExit(f"{v}: need a float-input and a uint8-input export of one Keras model.")
    info = next(iter(infos.values()))[0]
    pixels = load_dataset(info.dataset, image_size=info.input_shape[:2]).x_test[:512]
    rows = []
    for variant, (floats, uint8) in pairs.items():
        makers = {"float input": _predictor(floats), "uint8 input": _predictor(uint8)}
        for batch in BATCHES:
            inputs = [pixels[i * batch:(i + 1) * batch] for i in range(8)]
            pooled = interleaved_rounds(makers, inputs, batch, args.rounds)
            p50 = {k: statistics.median(v) for k, v in pooled.items()}
            rows.append({"variant": variant, "batch": batch, "threads": 1, "p50_ms": p50,
                         "float_over_uint8": p50["float input"] / p50["uint8 input"], "round_p50_ms": pooled})
            print(f"{variant:8s} b{batch:<3d} float {p50['float input'] * 1e3:8.1f} us  uint8 "
                  f"{p50['uint8 input'] * 1e3:8.1f} us  x{rows[-1]['float_over_uint8']:.2f}", flush=True)
    result = {"model": info.name, "rounds": args.rounds, "machine": machine_info(), "rows": rows,
              "note": "float_over_uint8 > 1 means the uint8-input file is faster (Predictor, uint8 pixels in)"}
    saved = write_json(args.out / f"uint8-input-{info.name}.json", result)
    print(json.dumps({"saved": str(saved)}))


if __name__ == "__main__":
    main()
