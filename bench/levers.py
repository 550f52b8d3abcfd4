"""Batch-1 levers: what a call costs beyond the model, and what a second thread buys.

    python bench/levers.py [EXPORT_FOLDER] [--variant int8] [--out bench/results] [--rounds 5]

Times, on the folder's file and real test images, each against its baseline in the same run:

- per call: ``session.run`` against an IO binding with its output buffer allocated once (what
  a Predictor could keep per thread), and numpy's ``/255`` before a float input against a uint8
  input with the Cast and scale in the graph (one thread, batch 1, interleaved);
- the floor: one ReLU over one image, onnxruntime's ``session.run`` against LiteRT's
  ``set_tensor`` + ``invoke`` + ``get_tensor`` (when LiteRT is installed: ``make bench-suite``),
  the cost of a call with next to no model in it;
- threads: one thread against two, and two with onnxruntime's thread-pool options (spinning off,
  dynamic block base, affinities), at batch 1 and 64. These run one session at a time
  (``block_rounds``): the spinning pools of interleaved two-thread sessions steal each other's
  cores on a 2-core machine.

Writes ``levers-<model>-<variant>.json`` with the machine's description. What was kept, and
why the rest was not, is in bench/README.md ("Levers").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.benchmark.scripts import block_rounds, interleaved_rounds
from edgecnn.data import load_dataset
from edgecnn.defaults import DEFAULT_MODEL
from edgecnn.export.onnx_metadata import read_metadata
from edgecnn.runtime.session import load_session, session_options
from edgecnn.store.files import write_json
from edgecnn.store.locations import default_folder
from edgecnn.timing.machine import machine_info
from edgecnn.timing.measure import Budget
from edgecnn.variants import VARIANT_FILE

THREAD_OPTIONS: dict[str, tuple[int, dict[str, str]]] = {
    "1 thread": (1, {}),
    "2 threads": (2, {}),
    "2 threads, no spinning": (2, {"session.intra_op.allow_spinning": "0"}),
    "2 threads, dynamic block base 4": (2, {"session.dynamic_block_base": "4"}),
    "2 threads, pinned": (2, {"session.intra_op_thread_affinities": "2"}),
}


def _session(path: Path, threads: int = 1, config: dict[str, str] | None = None) -> Any:
    options = session_options(threads, 1)
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return load_session(path, "cpu", options=options)


def _plain(path: Path, preprocessing: Any):
    def make():
        session = _session(path)
        feed, out = session.get_inputs()[0].name, session.get_outputs()[0].name
        return lambda pixels: session.run([out], {feed: preprocessing.apply(pixels)})
    return make


def _bound(path: Path, preprocessing: Any):
    def make():
        session = _session(path)
        feed, out = session.get_inputs()[0], session.get_outputs()[0]
        buffer = np.empty((1, out.shape[-1]), np.float32)
        binding = session.io_binding()
        binding.bind_output(out.name, "cpu", 0, np.float32, list(buffer.shape), buffer.ctypes.data)

        def run(pixels):
            binding.bind_cpu_input(feed.name, preprocessing.apply(pixels))
            session.run_with_iobinding(binding)
            return buffer.copy()
        return run
    return make


def _uint8_graph(path: Path, preprocessing: Any, folder: Path) -> Path:
    """``path`` with a uint8 input: Cast, then the scale and offset, in the graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph, feed = model.graph, model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in feed.type.tensor_type.shape.dim]
    graph.initializer.extend([numpy_helper.from_array(np.array(preprocessing.scale, np.float32), "lever_scale"),
                              numpy_helper.from_array(np.array(preprocessing.offset, np.float32), "lever_offset")])
    nodes = [helper.make_node("Cast", ["pixels"], ["lever_cast"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["lever_cast", "lever_scale"], ["lever_scaled"]),
             helper.make_node("Add", ["lever_scaled", "lever_offset"], [feed.name])]
    graph.input.remove(feed)
    graph.input.insert(0, helper.make_tensor_value_info("pixels", TensorProto.UINT8, dims))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    out = folder / "uint8-input.onnx"
    onnx.save(model, str(out))
    return out


def _uint8(path: Path):
    def make():
        session = _session(path)
        out = session.get_outputs()[0].name
        return lambda pixels: session.run([out], {"pixels": pixels})
    return make


def per_call(path: Path, preprocessing: Any, pixels: np.ndarray, rounds: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        makers = {"session.run": _plain(path, preprocessing), "IO binding": _bound(path, preprocessing),
                  "uint8 input in the graph": _uint8(_uint8_graph(path, preprocessing, Path(tmp)))}
        inputs = [pixels[i:i + 1] for i in range(8)]
        first = {name: np.asarray(make()(inputs[0])[0]).ravel() for name, make in makers.items()}
        assert all(np.allclose(v, first["session.run"], atol=1e-4) for v in first.values()), first
        pooled = interleaved_rounds(makers, inputs, 1, rounds)
    base = statistics.median(pooled["session.run"])
    return [{"lever": name, "batch": 1, "threads": 1, "p50_ms": statistics.median(v),
             "vs_baseline": statistics.median(v) / base, "round_p50_ms": v} for name, v in pooled.items()]


def call_floor(shape: tuple[int, ...], rounds: int) -> list[dict[str, Any]]:
    """Batch-1 latency of a one-op model (ReLU) in onnxruntime and, if installed, LiteRT."""
    import onnx
    from onnx import TensorProto, helper

    dims = [1, *shape]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "floor",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "relu.onnx"
        onnx.save(model, str(path))

        def ours():
            session = _session(path)
            return lambda x: session.run(["y"], {"x": x})
        makers = {"onnxruntime session.run, one ReLU": ours}
        try:
            makers["LiteRT invoke, one ReLU"] = _litert_relu(shape)
        except ImportError:
            print("LiteRT is not installed: the floor is measured for onnxruntime only")
        images = np.random.default_rng(0).random((8, *dims), np.float32)
        pooled = interleaved_rounds(makers, list(images), 1, rounds)
    return [{"lever": name, "batch": 1, "threads": 1, "p50_ms": statistics.median(v),
             "vs_baseline": statistics.median(v) / statistics.median(pooled["onnxruntime session.run, one ReLU"]),
             "round_p50_ms": v} for name, v in pooled.items()]


def _litert_relu(shape: tuple[int, ...]):
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input(shape)
    blob = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, keras.layers.ReLU()(inputs))).convert()

    def make():
        interpreter = Interpreter(model_content=blob, num_threads=1)
        interpreter.allocate_tensors()
        feed, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

        def run(x):
            interpreter.set_tensor(feed, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)
        return run
    return make


def threads(path: Path, images: np.ndarray, rounds: int) -> list[dict[str, Any]]:
    def maker(count: int, config: dict[str, str]):
        def make():
            session = _session(path, count, config)
            feed, out = session.get_inputs()[0].name, session.get_outputs()[0].name
            return lambda x: session.run([out], {feed: x})
        return make

    makers = {name: maker(count, config) for name, (count, config) in THREAD_OPTIONS.items()}
    rows = []
    for batch, budget in ((1, Budget(50, 3000, 1.0, 300)), (64, Budget(3, 100, 1.5, 15))):
        inputs = [images[i:i + batch] for i in range(0, 8 * batch, batch)]
        pooled = block_rounds(makers, inputs, batch, rounds, budget)
        base = statistics.median(pooled["2 threads"])
        rows += [{"lever": name, "batch": batch, "threads": THREAD_OPTIONS[name][0],
                  "p50_ms": statistics.median(v), "vs_baseline": statistics.median(v) / base,
                  "round_p50_ms": v} for name, v in pooled.items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=default_folder(DEFAULT_MODEL))
    parser.add_argument("--variant", default="int8", choices=sorted(VARIANT_FILE) + ["fp32"])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = args.folder / VARIANT_FILE.get(args.variant, "model.onnx")
    info = read_metadata(path)
    pixels = load_dataset(info.dataset, image_size=info.input_shape[:2]).x_test[:512]
    rows = per_call(path, info.preprocessing, pixels, args.rounds)
    rows += call_floor(tuple(info.input_shape), args.rounds)
    rows += threads(path, info.preprocessing.apply(pixels), args.rounds)
    for row in rows:
        print(f"b{row['batch']:<3d} {row['lever']:34s} {row['p50_ms'] * 1e3:9.1f} us  x{row['vs_baseline']:.2f}")
    result = {"model": info.name, "variant": args.variant, "file": str(path), "machine": machine_info(),
              "baselines": {"per call": "session.run", "floor": "onnxruntime session.run, one ReLU",
                            "threads": "2 threads"}, "rows": rows}
    saved = write_json(args.out / f"levers-{info.name}-{args.variant}.json", result)
    print(json.dumps({"saved": str(saved)}))


if __name__ == "__main__":
    main()
