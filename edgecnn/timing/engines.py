"""The engines a benchmark times: onnxruntime (bare and through the Predictor), Keras's three
inference paths, and optional LiteRT / OpenVINO for comparison.

Each factory returns a function that creates the engine (timed as session creation) and
returns the callable that runs one batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._optional import require
from edgecnn.results.bench import EngineName
from edgecnn.runtime import Predictor
from edgecnn.runtime.session import load_session
from edgecnn.timing.measure import RunFn
from edgecnn.timing.targets import Target


@dataclass(frozen=True)
class Engine:
    """A runnable configuration: ``make()`` builds it, the result runs one batch.

    ``pixels`` says whether it is fed uint8 pixels (the Predictor, and a bare session of a file
    that reads them) or preprocessed float32.
    """

    engine: str
    variant: str
    make: Callable[[], RunFn]
    pixels: bool = False
    copies_included: bool | None = None


def ort_session(path: Path, target: Target) -> Any:
    """An InferenceSession with ``target``'s providers and options (see ``load_session``)."""
    ort = require("onnxruntime", "Benchmarking")
    return load_session(path, target.provider, options=target.session_options(ort),
                        provider_options=target.provider_options)


def bare_session(path: Path, target: Target) -> RunFn:
    """A bare ``InferenceSession.run`` on ``target``: the benchmark's "onnxruntime" engine."""
    session = ort_session(path, target)
    inp, out = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda x: session.run([out], {inp: x})


def onnxruntime_engines(path: Path, variant: str, target: Target, reads_pixels: bool = False) -> list[Engine]:
    """Bare ``InferenceSession.run`` and the Predictor; on a GPU, IO binding with and without
    the host<->device copies. ``reads_pixels``: the file's input is uint8, which the bare
    sessions are fed."""

    def predictor() -> RunFn:
        p = Predictor(path, providers=target.provider, intra_op_threads=target.intra_op_threads,
                      inter_op_threads=target.inter_op_threads)
        return p.predict

    engines = [Engine(EngineName.ONNXRUNTIME, variant, lambda: bare_session(path, target), reads_pixels,
                      copies_included=True),
               Engine(EngineName.PREDICTOR, variant, predictor, pixels=True, copies_included=True)]
    if target.provider in ("cuda", "tensorrt"):
        engines.append(Engine(EngineName.ONNXRUNTIME_IOBINDING, variant,
                              lambda: _bound_on_device(path, target), reads_pixels, copies_included=False))
    return engines


def _bound_on_device(path: Path, target: Target) -> RunFn:
    """Input and output stay on the GPU: the model's own latency, copies excluded."""
    ort = require("onnxruntime", "Benchmarking")
    session = ort_session(path, target)
    inp, out = session.get_inputs()[0].name, session.get_outputs()[0].name
    binding = session.io_binding()
    binding.bind_output(out, "cuda", 0)
    # Each distinct input batch is uploaded once, outside the timed call after its first use.
    on_device: dict[int, Any] = {}

    def run(x: np.ndarray) -> None:
        value = on_device.get(id(x))
        if value is None:
            value = on_device[id(x)] = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        binding.bind_ortvalue_input(inp, value)
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run


def keras_engines(model: Any) -> list[Engine]:
    """Keras's eager call, ``predict``, ``predict_on_batch`` and a compiled ``tf.function``."""
    tf = require("tensorflow", "The Keras baseline")
    graph_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return [
        Engine(EngineName.KERAS_EAGER, "keras", lambda: lambda x: model(x, training=False)),
        Engine(EngineName.KERAS_PREDICT, "keras", lambda: lambda x: model.predict(x, batch_size=len(x), verbose=0)),
        Engine(EngineName.KERAS_PREDICT_ON_BATCH, "keras", lambda: model.predict_on_batch),
        Engine(EngineName.KERAS_TF_FUNCTION, "keras", lambda: graph_fn),
    ]


def litert_models(model: Any, workdir: Path) -> dict[str, Path]:
    """LiteRT fp32 and dynamic-range int8 files, converted with ``from_keras_model``.

    (``from_concrete_functions`` silently produces NaN outputs for these models.)
    """
    tf = require("tensorflow", "The LiteRT comparison")
    paths = {}
    for variant, optimize in (("litert-fp32", False), ("litert-dynint8", True)):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        paths[variant] = workdir / f"{variant}.tflite"
        paths[variant].write_bytes(converter.convert())
    return paths


def litert_engines(models: dict[str, Path], threads: int) -> list[Engine]:
    """The LiteRT interpreter on each converted model with ``threads`` threads."""
    interpreter_module = require("ai_edge_litert.interpreter", "The LiteRT comparison")
    engines = []
    for variant, path in models.items():

        def make(path: Path = path) -> RunFn:
            interp = interpreter_module.Interpreter(model_path=str(path), num_threads=threads)
            inp = interp.get_input_details()[0]["index"]
            out = interp.get_output_details()[0]["index"]
            shape: list[int] = []

            def run(x: np.ndarray) -> np.ndarray:
                if list(x.shape) != shape:
                    interp.resize_tensor_input(inp, x.shape)
                    interp.allocate_tensors()
                    shape[:] = list(x.shape)
                interp.set_tensor(inp, x)
                interp.invoke()
                return interp.get_tensor(out)

            return run

        engines.append(Engine(EngineName.LITERT, variant, make))
    return engines


def openvino_engines(path: Path, variant: str, threads: int, reads_pixels: bool = False) -> list[Engine]:
    """OpenVINO reading the ONNX file on its CPU plugin, forced to f32 (its default is bf16)."""
    ov = require("openvino", "The OpenVINO comparison")

    def make() -> RunFn:
        compiled = ov.Core().compile_model(
            str(path), "CPU",
            {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads},
        )
        request = compiled.create_infer_request()
        return lambda x: request.infer([x])

    return [Engine(EngineName.OPENVINO, f"openvino-{variant}", make, reads_pixels)]


def litert_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="edgecnn-litert-")
