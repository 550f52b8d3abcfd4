"""Endurance check: one Predictor, many threads, many calls; RSS growth and result identity.

    python bench/soak.py [MODEL.onnx] [--calls N] [--threads T]

Writes bench/results/soak-<model>.json and prints the summary. Bounded: it always ends.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.bench.soak import soak
from edgecnn.data import load_dataset
from edgecnn.files import write_json
from edgecnn.runtime import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="exported/fashion-cnn/model.int8.onnx")
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    info = Predictor(args.model, providers="cpu").info
    images = load_dataset(info.dataset).x_test[:2048]
    result = soak(args.model, images, calls=args.calls, threads=args.threads)
    name = Path(args.model).name.replace(".onnx", "")
    path = write_json(args.out / f"soak-{info.name}-{name}.json", result)
    summary = {k: result[k] for k in ("threads", "calls", "mismatches", "seconds", "calls_per_s",
                                      "rss_baseline_mb", "rss_growth_mb", "rss_max_growth_mb",
                                      "rss_growth_second_half_mb")}
    print(json.dumps(summary, indent=2))
    print(f"Saved {path}")


if __name__ == "__main__":
    main()
