"""Peak memory of the Predictor against the number of images in one call.

    python bench/memory.py [MODEL.onnx] [--out bench/results]

Each count runs in a fresh process: RSS after loading the model and making the images, then the
peak during ``predict``. Batches beyond ``max_batch`` are preprocessed and run chunk by chunk,
so the peak should grow only by the probabilities returned. Writes
``memory-<model>-<variant>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgecnn.runtime import Predictor
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info

COUNTS = (1_000, 10_000, 100_000)
_CHILD = """
import json, resource, sys, numpy as np
from edgecnn.runtime import Predictor
p = Predictor(sys.argv[1], providers="cpu")
h, w, c = p.input_shape
images = np.random.default_rng(0).integers(0, 256, (int(sys.argv[2]), h, w, c), dtype=np.uint8)
kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = kib()
probs = p.predict(images).probabilities
print(json.dumps({"images": len(images), "input_mib": images.nbytes / 2**20,
                  "output_mib": probs.nbytes / 2**20, "peak_before_mib": before / 1024,
                  "peak_mib": kib() / 1024, "growth_mib": (kib() - before) / 1024,
                  "max_batch": p.max_batch}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path,
                        default=Path("exported/fashion-cnn/model.int8.onnx"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    info = Predictor(args.model, providers="cpu").info
    rows = []
    for count in COUNTS:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(args.model), str(count)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout))
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items()}))
    result = {"model": info.name, "variant": info.variant, "machine": machine_info(), "rows": rows}
    path = write_json(args.out / f"memory-{info.name}-{info.variant}.json", result)
    print(f"Saved {path}")


if __name__ == "__main__":
    main()
