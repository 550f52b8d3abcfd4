"""The speed suite: edgecnn's files against LiteRT's on many graphs, not only fashion-cnn.

    python bench/suite.py [--out bench/results] [--only NAME,...] [--rounds 5]

The suite is the committed zoo exports (``exported/*``), five small user-like architectures and
two edge nets (MobileNetV2-0.35 and MobileNetV3-small-0.75 at 96x96 RGB), trained for seconds on
real Fashion-MNIST (accuracy is not the point here, the graph is; resized and stacked to RGB
where the net reads it) and exported here with ``--isa host`` into ``~/.cache/edgecnn/suite/NAME`` (kept
between runs). On each, at one and two threads and batches 1, 8 and 64, it times edgecnn's fp32,
int8 and dynint8 files (a bare ``InferenceSession.run``) and LiteRT's fp32 and dynamic-range int8
(``from_keras_model``) one engine at a time, in rounds that turn the order, on the same real
test images (``block_rounds``: call-by-call alternation mismeasures two threads), and
profiles each int8 file per operator at batch 1 and 64. Writes ``suite.json`` (every p50, the
machine) and ``suite.md`` (one table of ratios per model). Run natively only; ``make
bench-suite`` installs LiteRT first.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from edgecnn.benchmark.scripts import block_rounds
from edgecnn.export.keras_io import load_keras, reference_file
from edgecnn.export.onnx_metadata import read_metadata
from edgecnn.results.matrix import slower_than_fp32
from edgecnn.results.report import read_report
from edgecnn.store.files import write_json, write_text
from edgecnn.store.locations import EXPORTS
from edgecnn.timing.engines import bare_session, litert_engines, litert_models
from edgecnn.timing.machine import machine_info
from edgecnn.timing.profile import profile_ops
from edgecnn.timing.targets import BUILTIN

BATCHES = (1, 8, 64)
THREADS = (1, 2)
OURS = {"fp32": "model.onnx", "int8": "model.int8.onnx", "dynint8": "model.dynint8.onnx"}
THEIRS = ("litert-fp32", "litert-dynint8")
CACHE = Path.home() / ".cache" / "edgecnn" / "suite"


def _user_models(keras):
    """The user-like architectures: what people bring, beyond the tutorials' plain conv nets."""
    L = keras.layers

    def residual():
        inputs = keras.Input((28, 28, 1))
        x = L.Conv2D(16, 3, padding="same", activation="relu")(L.Rescaling(1 / 255)(inputs))
        y = L.Conv2D(16, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(16, 3, padding="same")(y)
        x = L.ReLU()(L.Add()([x, y]))
        x = L.MaxPooling2D()(x)
        x = L.Conv2D(32, 3, activation="relu")(x)
        return keras.Model(inputs, L.Dense(10, activation="softmax")(L.Flatten()(L.MaxPooling2D()(x))))

    return {
        "bn-leaky-avgpool": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), L.Rescaling(1 / 255),
            L.Conv2D(16, 3), L.BatchNormalization(), L.LeakyReLU(negative_slope=0.1), L.AveragePooling2D(2),
            L.Conv2D(32, 3), L.BatchNormalization(), L.LeakyReLU(negative_slope=0.1), L.AveragePooling2D(2),
            L.Flatten(), L.Dense(10, activation="softmax")]),
        "bn-separable-gap": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), L.Rescaling(1 / 255),
            L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
            L.SeparableConv2D(32, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
            L.DepthwiseConv2D(3, padding="same"), L.Conv2D(64, 1, activation="relu"),
            L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")]),
        "residual": residual,
        "augment-bn": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), L.RandomFlip("horizontal"), L.RandomRotation(0.05),
            L.Rescaling(1 / 255), L.Conv2D(32, 3), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
            L.Conv2D(64, 3), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
            L.Flatten(), L.Dropout(0.3), L.Dense(10, activation="softmax")]),
        "rgb32": lambda: keras.Sequential([
            keras.Input((32, 32, 3)), L.Rescaling(1 / 255), L.Conv2D(16, 3, padding="same"),
            L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
            L.SeparableConv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.SeparableConv2D(64, 3, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")]),
        "mobilenetv2-0.35-96": lambda: _edge(keras, keras.applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)),
        "mobilenetv3-small-96": lambda: _edge(keras, keras.applications.MobileNetV3Small(
            input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10, include_preprocessing=False)),
    }


def _edge(keras, net):
    """A Keras application for the edge (no weights: none are downloaded here) behind its own
    [-1, 1] rescaling, its BatchNorm statistics quick enough to train in seconds."""
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    inputs = keras.Input(net.input_shape[1:])
    return keras.Model(inputs, net(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))


def _resized(data, shape: tuple[int, int, int], path: Path):
    """Fashion-MNIST as RGB images of ``shape``: padded to 32x32, or resized, then stacked."""
    import tensorflow as tf

    def rgb(x):
        if shape[:2] == (32, 32):
            x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
        else:
            x = tf.image.resize(x, shape[:2]).numpy().round().clip(0, 255).astype(np.uint8)
        return np.repeat(x, shape[2], axis=-1)

    np.savez(path, x_train=rgb(data.x_train), y_train=data.y_train, x_test=rgb(data.x_test),
             y_test=data.y_test, class_names=np.array(data.class_names))


def build_user_models(names: list[str], cache: Path = CACHE) -> dict[str, Path]:
    """Each user-like model trained for seconds and exported here (cached: the same seed gives
    the same files on this machine)."""
    import keras

    from edgecnn.data import load_dataset
    from edgecnn.pipeline import run_pipeline

    fashion = load_dataset("fashion_mnist").subset(train=6000, test=2000, seed=0)
    folders = {}
    for name, build in _user_models(keras).items():
        if names and name not in names:
            continue
        folder = cache / name
        folders[name] = folder
        if (folder / "report.json").is_file():
            continue
        folder.parent.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(0)
        model = build()
        shape = tuple(model.input_shape[1:])
        data, dataset = fashion, "fashion_mnist"
        if shape != (28, 28, 1):
            dataset = str(cache / f"fashion-{'x'.join(map(str, shape))}.npz")
            if not Path(dataset).is_file():
                _resized(data, shape, Path(dataset))
            data = load_dataset(dataset)
        edge = shape[0] >= 64  # the Keras applications: a faster optimizer, a few more epochs
        model.compile(keras.optimizers.Adam(2e-3) if edge else "adam", "sparse_categorical_crossentropy")
        print(f"training {name} for seconds...", flush=True)
        model.fit(data.x_train.astype(np.float32), data.y_train, epochs=4 if edge else 2, batch_size=64, verbose=0)
        source = cache / f"{name}.keras"
        model.save(source)
        run_pipeline(str(source), out_dir=folder, dataset=dataset, isa="host", require=["fp32"],
                     time_variants=False, force=True)
    return folders


def time_model(name: str, folder: Path, rounds: int) -> dict:
    """Every (threads, batch) of one model: each engine's p50 (ms) pooled over ``rounds``."""
    from edgecnn.data import load_dataset

    info = read_metadata(folder / "model.onnx")
    data = load_dataset(info.dataset, image_size=info.input_shape[:2])
    report = read_report(folder)
    native = report.machine.native_row
    passing = [v.variant for v in report.variants if v.by_isa.get(native) and v.by_isa[native].passed]
    model = load_keras(reference_file(folder))
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-suite-") as tmp:
        converted = litert_models(model, Path(tmp))
        for threads in THREADS:
            target = replace(BUILTIN["cpu-1t"], name=f"cpu-{threads}t", intra_op_threads=threads)
            makers = {v: functools.partial(bare_session, folder / f, target)
                      for v, f in OURS.items() if (folder / f).is_file()}
            makers.update({e.variant: e.make for e in litert_engines(converted, threads) if e.variant in THEIRS})
            for batch in BATCHES:
                inputs = [info.preprocessing.apply(data.x_test[i * batch:(i + 1) * batch]) for i in range(8)]
                print(f"  {name}: {threads} thread(s), batch {batch}", flush=True)
                pooled = block_rounds(makers, inputs, batch, rounds)
                rows.append({"threads": threads, "batch": batch,
                             "p50_ms": {k: statistics.median(v) for k, v in pooled.items()},
                             "round_p50_ms": pooled})
            if (folder / OURS["int8"]).is_file() and threads == 1:
                profiles = {str(b): [asdict(op) for op in profile_ops(
                                folder / OURS["int8"], target,
                                [info.preprocessing.apply(data.x_test[i * b:(i + 1) * b]) for i in range(4)],
                                runs=100)[:8]]
                            for b in (1, 64)}
    return {"model": name, "folder": str(folder), "passing": passing, "rows": rows, "int8_profile": profiles}


def ratios(entry: dict) -> list[dict]:
    """Per (threads, batch): edgecnn's best over LiteRT's best, the recommended file over fp32
    (as export names it: the fastest passing variant at batch 1, one thread, of those not slower
    than fp32 at batch 64), int8 over fp32 (> 1 = edgecnn's / the first faster)."""
    one = {r["batch"]: r["p50_ms"] for r in entry["rows"] if r["threads"] == 1}
    ours = [v for v in OURS if v in one[1] and v in entry["passing"]]
    eligible = [v for v in ours if v not in slower_than_fp32(one.get(64))]
    recommended = min(eligible, key=lambda v: one[1][v]) if eligible else None
    out = []
    for r in entry["rows"]:
        p = r["p50_ms"]
        best_ours = min(ours, key=lambda v: p[v]) if ours else None
        best_theirs = min((v for v in THEIRS if v in p), key=lambda v: p[v])
        out.append({
            "threads": r["threads"], "batch": r["batch"], "best": best_ours, "best_litert": best_theirs,
            "edgecnn_over_litert": p[best_theirs] / p[best_ours] if best_ours else None,
            "recommended": recommended,
            "recommended_over_fp32": p["fp32"] / p[recommended] if recommended else None,
            "int8_over_fp32": p["fp32"] / p["int8"] if "int8" in p else None,
        })
    return out


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Speed suite", "",
             f"{m['cpu']} ({m['cores']} cores, {m['isa']}), onnxruntime {m['versions'].get('onnxruntime')}, "
             f"LiteRT {m['versions'].get('ai-edge-litert')}; {result['rounds']} rounds per cell, one engine at a time. "
             "Ratios > 1: edgecnn's (or the first) file is faster. *recommended*: the fastest variant "
             "that passes every gate here, at batch 1 on one thread, of those not slower than fp32 at "
             "batch 64 (what `export` names).", ""]
    for entry in result["models"]:
        lines += [f"## {entry['model']}", "",
                  "| threads | batch | edgecnn best | LiteRT best | edgecnn / LiteRT | recommended / fp32 "
                  "| int8 / fp32 |", "|---:|---:|---|---|---:|---:|---:|"]
        for r in entry["ratios"]:
            def f(x):
                return "—" if x is None else f"{x:.2f}"
            lines.append(f"| {r['threads']} | {r['batch']} | {r['best']} | {r['best_litert']} | "
                         f"{f(r['edgecnn_over_litert'])} | {f(r['recommended_over_fp32'])} ({r['recommended']}) | "
                         f"{f(r['int8_over_fp32'])} |")
        for batch, ops in entry["int8_profile"].items():
            top = ", ".join(f"{o['op']} {o['share']:.0%}" for o in ops[:5])
            lines.append(f"\nint8 per-op, batch {batch}, one thread: {top}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the user-like models are exported")
    parser.add_argument("--stem", default=None, help="result file name stem (default suite)")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n]
    folders = {p.name: p for p in sorted(EXPORTS.iterdir()) if (p / "model.onnx").is_file()
               and (not only or p.name in only)}
    folders.update(build_user_models(only, args.cache))
    result = {"machine": machine_info(), "rounds": args.rounds, "models": []}
    for name, folder in folders.items():
        print(f"timing {name}", flush=True)
        entry = time_model(name, folder, args.rounds)
        entry["ratios"] = ratios(entry)
        result["models"].append(entry)
    stem = args.stem or ("suite" if not only else f"suite-{'-'.join(only)}")
    written = [write_json(args.out / f"{stem}.json", result), write_text(args.out / f"{stem}.md", markdown(result))]
    print(markdown(result))
    print("Saved " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
