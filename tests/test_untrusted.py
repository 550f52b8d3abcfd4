"""Untrusted doors: model metadata, model outputs, image files, arrays and archives. Each case
gives the right answer or one clear EdgeCNNError, never a wrong answer with exit 0."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor, Preprocessing
from edgecnn.runtime.metadata import METADATA_KEY
from tests.conftest import make_tiny_onnx

ROOT = Path(__file__).resolve().parents[1]

GOOD = {"name": "tiny", "class_names": ["triangle", "square", "circle"], "input_shape": [8, 8, 1],
        "preprocessing": {"scale": 1 / 255, "offset": 0.0}, "output": "softmax", "layout": "NHWC",
        "dataset": "shapes", "variant": "fp32"}


def _with_metadata(path: Path, text: str | None, *, softmax: bool = True) -> Path:
    """The tiny model with its edgecnn metadata replaced by ``text`` (raw, unchecked)."""
    import onnx

    make_tiny_onnx(path, with_metadata=False)
    model = onnx.load(str(path))
    if not softmax:  # the last node becomes an Identity: logits come out
        node = model.graph.node[-1]
        node.op_type = "Identity"
        del node.attribute[:]
    if text is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, text
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"preprocessing": {"scale": float("nan")}}, "scale must be finite"),
    ({"preprocessing": {"scale": float("inf")}}, "scale must be finite"),
    ({"preprocessing": {"scale": 1e308}}, "scale must be positive and at most"),
    ({"preprocessing": {"scale": 0}}, "scale must be positive"),
    ({"preprocessing": {"scale": "0.5"}}, "scale must be a number"),
    ({"preprocessing": "1/255"}, "preprocessing must be an object"),
    ({"output": "sigmoid"}, "sigmoid output has 2 classes"),
    ({"output": "banana"}, "output must be one of"),
    ({"class_names": ["a", "b"]}, "graph's output is"),
    ({"class_names": ["a", "b", "c", "d"]}, "graph's output is"),
    ({"class_names": "abc"}, "class_names must be a list of str"),
    ({"class_names": ["a", "a", "b"]}, "distinct"),
    ({"class_names": ["a", "", "b"]}, "non-empty"),
    ({"class_names": ["a", "  ", "b"]}, "non-empty"),
    ({"input_shape": [9, 8, 1]}, "graph's input is"),
    ({"input_shape": [8, 8]}, "input_shape must be"),
    ({"input_shape": "8x8"}, "input_shape must be a list of int"),
    ({"surprise": 1}, "unknown keys"),
    ({"schema": 999}, "schema 999"),
    ({"schema": "2"}, "upgrade edgecnn"),
])
def test_metadata_that_disagrees_with_itself_or_the_graph_is_refused(tmp_path, change, message):
    meta = {**GOOD, **change}
    path = _with_metadata(tmp_path / "m.onnx", json.dumps(meta, allow_nan=True))
    with pytest.raises(EdgeCNNError, match=message):
        Predictor(path)


@pytest.mark.parametrize("text", ["null", '"a string"', "[1, 2]", "{not json", "42"])
def test_metadata_that_is_not_an_object_is_refused(tmp_path, text):
    with pytest.raises(EdgeCNNError, match="Malformed edgecnn metadata"):
        Predictor(_with_metadata(tmp_path / "m.onnx", text))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _valid_for_the_tiny_model(key: str, value) -> bool:
    """Whether ``GOOD`` with ``key`` set to ``value`` still describes the tiny graph (8x8x1 in,
    a 3-class softmax out), by the metadata rules the docs state, written here independently."""
    if key == "name":
        return isinstance(value, str) and bool(value)
    if key == "class_names":
        return (isinstance(value, list) and len(value) == 3 and all(isinstance(n, str) and n.strip() for n in value)
                and len(set(value)) == 3)
    if key == "input_shape":
        return isinstance(value, list) and all(type(d) is int for d in value) and value == [8, 8, 1]
    if key == "preprocessing":
        return (isinstance(value, dict) and set(value) <= {"scale", "offset"}
                and all(_number(v) for v in value.values())
                and 0 < value.get("scale", 1 / 255) <= 1e3 and abs(value.get("offset", 0.0)) <= 1e6)
    if key == "output":
        return value == "softmax"  # sigmoid needs 2 classes
    if key == "layout":
        return value == "NHWC"
    return value is None or isinstance(value, str)  # dataset, variant


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(GOOD)), value=st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.lists(st.integers(-2, 30), max_size=4),
    st.lists(st.text(max_size=3), min_size=3, max_size=3), st.lists(st.text(max_size=3), max_size=5),
    st.dictionaries(st.sampled_from(["scale", "offset", "mean"]), st.floats(-2e3, 2e3)),
    st.dictionaries(st.text(max_size=6), st.floats())))
def test_any_metadata_value_gives_a_working_model_or_a_clear_error(tmp_path, key, value):
    """Valid metadata gives the same graph's answers under its own preprocessing; anything else
    is refused when loaded (a Predictor that refused every file, or took a bad one, fails)."""
    meta = {**GOOD, key: value}
    path = _with_metadata(tmp_path / "m.onnx", json.dumps(meta, allow_nan=True))
    if not _valid_for_the_tiny_model(key, value):
        with pytest.raises(EdgeCNNError):
            Predictor(path)
        return
    predictor = Predictor(path)
    pixels = np.arange(2 * 64, dtype=np.uint8).reshape(2, 8, 8)
    expected = Predictor(_with_metadata(tmp_path / "good.onnx", json.dumps(GOOD)),
                         preprocessing=predictor.info.preprocessing).predict(pixels).probabilities
    assert predictor.class_names == tuple(meta["class_names"])
    np.testing.assert_array_equal(predictor.predict(pixels).probabilities, expected)


def test_outputs_that_are_not_probabilities_are_an_error(tmp_path):
    logits = _with_metadata(tmp_path / "logits.onnx", json.dumps(GOOD), softmax=False)
    with pytest.raises(EdgeCNNError, match="did not return probabilities"):
        Predictor(logits).predict(np.full((8, 8), 255, np.uint8))


def test_an_error_while_running_is_one_line(tmp_path):
    import onnx

    path = make_tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    # rows of 63 values: fine for the graph checks (the batch size is symbolic), impossible for
    # one 8x8 image when it runs
    replace = {"shape": np.array([-1, 63], np.int64), "w": np.ones((63, 3), np.float32)}
    for init in model.graph.initializer:
        if init.name in replace:
            init.CopyFrom(onnx.numpy_helper.from_array(replace[init.name], init.name))
    onnx.save(model, str(path))
    with pytest.raises(EdgeCNNError, match="Running .* failed"):
        Predictor(path).predict(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"providers": 123}, "providers must be a string"),
    ({"max_batch": "10"}, "max_batch must be an integer"),
    ({"max_batch": 0}, "max_batch must be an integer >= 1"),
    ({"intra_op_threads": -5}, "intra_op_threads must be an integer from 0 to"),
    ({"inter_op_threads": 1.5}, "inter_op_threads must be an integer"),
])
def test_python_api_arguments_are_checked(tiny_onnx, kwargs, message):
    with pytest.raises(EdgeCNNError, match=message):
        Predictor(tiny_onnx, **kwargs)


def test_preprocessing_refuses_values_that_break_every_answer():
    for scale in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(EdgeCNNError):
            Preprocessing(scale=scale)
    with pytest.raises(EdgeCNNError):
        Preprocessing(offset=float("nan"))


def test_masked_arrays_are_refused(tiny_onnx):
    images = np.ma.masked_array(np.zeros((8, 8), np.uint8), mask=np.eye(8, dtype=bool))
    with pytest.raises(EdgeCNNError, match="masked array"):
        Predictor(tiny_onnx).predict(images)


def test_16_bit_and_float_images_read_by_their_real_range(tmp_path, fashion_small):
    from PIL import Image

    from edgecnn.runtime.images import read_image

    pixels = fashion_small.x_test[0, ..., 0]
    Image.fromarray(pixels).save(tmp_path / "8.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "16.png")
    Image.fromarray(pixels.astype(np.float32) / 255).save(tmp_path / "f.tiff")
    eight = read_image(tmp_path / "8.png", (28, 28, 1))
    assert np.array_equal(read_image(tmp_path / "16.png", (28, 28, 1)), eight)
    assert np.array_equal(read_image(tmp_path / "f.tiff", (28, 28, 1)), eight)
    Image.fromarray(pixels.astype(np.float32)).save(tmp_path / "f255.tiff")  # 0-255 floats
    with pytest.raises(EdgeCNNError, match="float pixels must be 0-1"):
        read_image(tmp_path / "f255.tiff", (28, 28, 1))


def test_huge_images_and_directories_are_refused_before_decoding(tmp_path):
    from PIL import Image

    from edgecnn.runtime.images import MAX_PIXELS, read_image

    side = int(MAX_PIXELS ** 0.5) + 1
    Image.new("L", (side, side)).save(tmp_path / "big.png")
    with pytest.raises(EdgeCNNError, match="more than the"):
        read_image(tmp_path / "big.png", (28, 28, 1))
    with pytest.raises(EdgeCNNError, match="is a directory"):
        read_image(tmp_path, (28, 28, 1))


def test_bad_npz_files_are_named_for_what_they_are(tmp_path):
    from edgecnn.runtime.images import read_npz_images

    (tmp_path / "text.npz").write_text("hi")
    with pytest.raises(EdgeCNNError, match="not a .npz archive"):
        read_npz_images(tmp_path / "text.npz")
    np.savez(tmp_path / "scalar.npz", x=np.array(3))
    with pytest.raises(EdgeCNNError, match="0-d array, not images"):
        read_npz_images(tmp_path / "scalar.npz")


def test_missing_external_data_is_not_called_outside_the_folder(tmp_path):
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(make_tiny_onnx(tmp_path / "base.onnx")))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin",
                                   size_threshold=100)
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    (tmp_path / "w.bin").unlink()
    with pytest.raises(EdgeCNNError, match="external weight data file is missing"):
        Predictor(tmp_path / "m.onnx")


@pytest.mark.parametrize("kind", ["text", "no-config", "config-list", "os-class"])
def test_corrupt_keras_files_are_one_line(tmp_path, kind):
    from edgecnn.export.keras_io import load_keras

    path = tmp_path / "m.keras"
    if kind == "text":
        path.write_text("not a model")
    else:
        config = {"no-config": None, "config-list": [1, 2],
                  "os-class": {"module": "os", "class_name": "system", "config": {"command": "true"}}}[kind]
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
            if config is not None:
                archive.writestr("config.json", json.dumps(config))
    with pytest.raises(EdgeCNNError, match=r"not a \.keras or \.h5 file|Could not load|Lambda|uses a class Keras does not know"):
        load_keras(path)


@pytest.mark.parametrize("entry, size", [("config.json", 320 * 2**20), ("model.weights.h5", 80 * 2**20)])
def test_a_keras_archive_that_inflates_too_far_is_refused_before_reading(tmp_path, monkeypatch, entry, size):
    """A zip bomb in a .keras file: refused from the archive's directory, in one line, with
    memory untouched (a 300 MB config cost 0.9 GB before). The weights limit (2 GiB) is lowered
    here to keep the test fast; the config limit is the real one."""
    import resource

    from edgecnn.export import keras_io

    monkeypatch.setattr(keras_io, "MAX_ENTRY_BYTES", 64 * 2**20)
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
        with archive.open(entry, "w", force_zip64=True) as handle:  # spaces: compress to little
            chunk = b" " * 2**24
            for _ in range(size // len(chunk)):
                handle.write(chunk)
    assert path.stat().st_size < size // 100
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(EdgeCNNError, match=f"{entry}' inflates to {size:,} bytes"):
        keras_io.load_keras(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB


@pytest.mark.parametrize("args", [
    ["quantize", "{onnx}", "--scheme", "bogus"],
    ["quantize", "{onnx}", "--calibration", "0"],
    ["quantize", "{onnx}", "--calibration", "-5"],
    ["export", "shapes-toy", "--isa", "z80", "--no-quantize", "--no-validate", "--out", "{tmp}"],
    ["validate", "{folder}", "--isa", "z80"],
    ["quantize", "{onnx}", "--isa", "arm64-neon,z80"],
])
def test_a_bad_option_value_is_a_usage_error_before_any_work(tmp_path, args):
    from typer.testing import CliRunner

    from edgecnn.cli.main import app

    shapes = ROOT / "exported" / "shapes-toy"
    values = {"onnx": str(shapes / "model.onnx"), "folder": str(shapes), "tmp": str(tmp_path / "out")}
    result = CliRunner().invoke(app, [a.format(**values) for a in args])
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    path = _with_metadata(tmp_path / "m.onnx", "null")
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    (tmp_path / "no-images").mkdir()
    (tmp_path / "no-images" / "notes.txt").write_text("not an image")
    for args in (["predict", str(path), str(image)],
                 ["predict", str(make_tiny_onnx(tmp_path / "ok.onnx")), str(tmp_path / "no-images")],
                 ["predict", str(tmp_path / "ok.onnx"), str(image), "--scale", "nan"]):
        out = subprocess.run([sys.executable, "-c", "from edgecnn.cli.main import main; main()", *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, (args, out.stderr)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in out.stderr, lines


def test_sweep_removes_the_scratch_folder_of_a_killed_process(tmp_path):
    from edgecnn.store.files import TMP_PREFIX, sweep_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    left = tmp_path / f"{TMP_PREFIX}{dead}-quant-abc"
    left.mkdir()
    (left / "preprocessed.onnx").write_bytes(b"x")
    assert sweep_stale_temporaries(tmp_path) == [left] and not left.exists()


def test_one_writer_per_export_folder(tmp_path):
    """Another process holding the folder refuses the export; within one process the lock is
    re-entrant (export holds it while quantize and validate take it again)."""
    from edgecnn.pipeline import run_pipeline
    from edgecnn.store.files import folder_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom edgecnn.store.files import folder_lock\n"
         "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
         str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(EdgeCNNError, match="Another edgecnn process is writing"):
            run_pipeline("shapes-toy", out_dir=tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(tmp_path / "out"), folder_lock(tmp_path / "out"):  # released, re-entrant
        pass
    with folder_lock(tmp_path / "out"):  # and released again by the last holder
        pass


def test_export_checks_its_destination_before_training(tmp_path):
    from edgecnn.export.convert import output_folder

    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeCNNError, match="exists and is not a folder"):
        output_folder("shapes-toy", tmp_path / "file")


_RSS = """
import resource, sys, numpy as np
from edgecnn.runtime import Predictor
p = Predictor(sys.argv[1], providers="cpu")
images = np.random.default_rng(0).integers(0, 256, (int(sys.argv[2]), 28, 28), dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert p.predict(images).probabilities.shape == (len(images), 10)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def test_memory_is_bounded_by_max_batch_not_by_the_batch():
    """Predicting 200,000 28x28 images needs no more than 2,000 do, beyond their own 7.6 MiB of
    probabilities (converting them all to float32 at once took 600 MiB)."""
    model = Path(__file__).resolve().parents[1] / "exported" / "fashion-cnn" / "model.int8.onnx"
    growth = {}
    for n in (2_000, 200_000):
        out = subprocess.run([sys.executable, "-c", _RSS, str(model), str(n)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert out.returncode == 0, out.stderr[-1000:]
        growth[n] = float(out.stdout.split()[-1])
    assert growth[200_000] - growth[2_000] < 64, growth


def test_quantizing_a_graph_onnxruntime_cannot_analyse_is_one_error_and_leaves_nothing(
        tmp_path, monkeypatch):
    import onnx
    from onnx import helper

    from edgecnn.quantize.quantize import quantize

    path = make_tiny_onnx(tmp_path / "model.onnx")
    model = onnx.load(str(path))
    add = next(n for n in model.graph.node if n.op_type == "Add")
    add.output[0] = "pre_custom"
    model.graph.node.insert(list(model.graph.node).index(add) + 1, helper.make_node(
        "Mystery", ["pre_custom"], ["logits"], domain="com.example"))
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(model, str(path))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(EdgeCNNError):
        quantize(path, variants=["dynint8"])
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "model.onnx"]


def test_quantize_takes_a_relative_path(tmp_path, monkeypatch):
    from edgecnn.quantize.quantize import quantize

    make_tiny_onnx(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    [result] = quantize(Path("model.onnx"), variants=["dynint8"])
    assert result.path == Path("model.dynint8.onnx") and result.path.is_file()
    assert Path.cwd() == tmp_path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["L", "RGB", "RGBA", "I;16", "I", "F", "1", "P", "LA"]),
       width=st.integers(1, 64), height=st.integers(1, 64), seed=st.integers(0, 2**16),
       fit=st.sampled_from(["crop", "pad", "stretch"]), channels=st.sampled_from([1, 3]))
def test_any_image_file_gives_pixels_of_the_model_shape_or_a_clear_error(
        tmp_path, mode, width, height, seed, fit, channels):
    """The image door: every PNG/TIFF mode and size becomes uint8 (H, W, C) or EdgeCNNError."""
    from PIL import Image

    from edgecnn.runtime.images import read_image

    rng = np.random.default_rng(seed)
    shape = (height, width)
    if mode in ("RGB", "RGBA", "LA"):
        shape = (height, width, {"RGB": 3, "RGBA": 4, "LA": 2}[mode])
    values = {"I;16": lambda: rng.integers(0, 65536, shape).astype(np.uint16),
              "I": lambda: rng.integers(-5, 70000, shape).astype(np.int32),
              "F": lambda: rng.uniform(-0.2, 1.2, shape).astype(np.float32),
              "1": lambda: rng.integers(0, 2, shape).astype(bool)}.get(
                  mode, lambda: rng.integers(0, 256, shape).astype(np.uint8))()
    image = Image.fromarray(values) if mode not in ("P", "I") else Image.fromarray(values).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("F", "I") else "x.png")
    image.save(path)
    try:
        pixels = read_image(path, (28, 20, channels), fit=fit)
    except EdgeCNNError:
        assert mode in ("F", "I")  # out-of-range floats and 32-bit ints are refused, not clipped
        return
    assert pixels.dtype == np.uint8 and pixels.shape == (28, 20, channels)


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_every_calibration_method_works_with_a_short_last_batch(tmp_path, method):
    """500 calibration images are not a multiple of 32: the histogram calibrators crashed."""
    from edgecnn.export.onnx_metadata import read_metadata
    from edgecnn.quantize.quantize import quantize

    make_tiny_onnx(tmp_path / "model.onnx")
    [result] = quantize(tmp_path / "model.onnx", variants=["int8"], method=method, calibration=500,
                        isa="host", gates=_loose_gates())
    assert read_metadata(result.path).quantization["method"] == method


def _loose_gates():
    from edgecnn.accuracy.gates import Gates

    # the random tiny model is unsure of everything: only the calibration itself is tested here
    return Gates(int8_max_accuracy_drop=1.0, int8_min_agreement=0.0, int8_max_class_drop=1.0)


@pytest.mark.parametrize("hostile", ["\x1b[2J\x1b[Hcleared", "ok\rFORGED: all fine", "two\nlines", "\x9b31m"])
def test_untrusted_text_is_printed_with_control_characters_visible(tmp_path, hostile):
    """Class names (from the model file) and file names (from the disk) cannot drive the
    terminal: escape sequences, carriage returns and line breaks come out as escapes."""
    import onnx
    from typer.testing import CliRunner

    from edgecnn.cli.main import app
    from edgecnn.display import visible
    from edgecnn.export.onnx_metadata import read_metadata, set_metadata

    path = make_tiny_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    names = (hostile, "square", "circle")
    set_metadata(proto, read_metadata(path).replace(class_names=names))
    onnx.save(proto, str(path))
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8))
    out = CliRunner().invoke(app, ["predict", str(path), str(tmp_path / "x.npz"), "--top-k", "3"])
    assert out.exit_code == 0, out.output
    assert visible(hostile) in out.output
    for raw in ("\x1b", "\r", "\x9b", "two\nlines"):
        assert raw not in out.output
    missing = CliRunner().invoke(app, ["predict", str(path), str(tmp_path / f"{hostile}.png")])
    assert missing.exit_code == 1 and visible(hostile) in missing.output
    assert not any(raw in missing.output for raw in ("\x1b", "\r", "\x9b", "two\nlines"))


def test_a_transparent_background_is_black_like_the_datasets(tmp_path):
    """An RGBA PNG of a light shape on a transparent background whose hidden colour is white:
    composited on black, it reads as the MNIST-family images do (dropping alpha gave white)."""
    from PIL import Image

    from edgecnn.runtime.images import read_image

    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255  # the colour under the transparent pixels
    rgba[8:20, 8:20] = (200, 200, 200, 255)  # an opaque light square
    Image.fromarray(rgba, "RGBA").save(tmp_path / "shape.png")
    pixels = read_image(tmp_path / "shape.png", (28, 28, 1))[..., 0]
    assert pixels[0, 0] == 0 and pixels[14, 14] == 200
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png", (28, 28, 1))[0, 0, 0] == 0


def test_an_image_past_pillows_bomb_warning_is_one_line_and_no_warning(tmp_path, capfd):
    import warnings

    from PIL import Image

    from edgecnn.runtime.images import read_image

    side = int((Image.MAX_IMAGE_PIXELS or 0) ** 0.5) + 10
    Image.new("1", (side, side)).save(tmp_path / "huge.png")  # 1-bit: small to write
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning would fail here
        with pytest.raises(EdgeCNNError, match="more than the"):
            read_image(tmp_path / "huge.png", (28, 28, 1))
    assert "DecompressionBomb" not in capfd.readouterr().err


def test_every_kind_of_input_with_no_images_is_refused_alike(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from edgecnn.bulk.sources import open_sources

    pq.write_table(pa.table({"image": pa.array([], pa.binary())}), tmp_path / "none.parquet")
    np.savez(tmp_path / "none.npz", x_test=np.zeros((0, 8, 8), np.uint8))
    (tmp_path / "empty").mkdir()
    for name in ("none.parquet", "none.npz", "empty", "nothing-*.png"):
        with pytest.raises(EdgeCNNError, match="no images|holds no image|No files match|0 images"):
            open_sources([str(tmp_path / name)], (8, 8, 1))


def test_a_parquet_row_without_a_name_is_named_by_its_place(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from edgecnn.bulk import predict_bulk

    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    png = (tmp_path / "x.png").read_bytes()
    pq.write_table(pa.table({"path": ["a.png", None, ""], "image": [png, png, png]}), tmp_path / "t.parquet")
    make_tiny_onnx(tmp_path / "m.onnx")
    predict_bulk(tmp_path / "m.onnx", [tmp_path / "t.parquet"], out=tmp_path / "r.jsonl", engine="local")
    inputs = [json.loads(line)["input"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert inputs == ["a.png", f"{tmp_path / 't.parquet'}[1]", f"{tmp_path / 't.parquet'}[2]"]


@pytest.mark.parametrize("threads", [-1, 4097, 1 << 40, True, 1.5])
def test_a_thread_count_no_machine_has_is_one_line(tiny_onnx, threads):
    with pytest.raises(EdgeCNNError, match="intra_op_threads must be an integer from 0 to 4096"):
        Predictor(tiny_onnx, intra_op_threads=threads)


def test_thread_counts_on_the_command_line_are_bounded(tiny_onnx):
    from typer.testing import CliRunner

    from edgecnn.cli.main import app

    huge = str(1 << 40)
    predicted = CliRunner().invoke(app, ["predict", str(tiny_onnx), str(tiny_onnx), "--threads", huge])
    assert predicted.exit_code == 2 and "Invalid value" in predicted.output
    benched = CliRunner().invoke(app, ["bench", str(tiny_onnx), "--threads", huge, "--no-cold"])
    assert benched.exit_code == 1 and "from 0 to 4096" in benched.output and "Traceback" not in benched.output


@pytest.mark.parametrize("code", [0, 3])
def test_user_code_that_exits_is_one_line_not_an_exit_status(tmp_path, code):
    """A training script's sys.exit(0) gave exit 0 with no export; sys.exit(3) read as edgecnn's
    'validation failed'."""
    from edgecnn.export import keras_io

    script = tmp_path / f"train_script_{code}.py"
    script.write_text(f"import sys\nsys.exit({code})\n")
    with pytest.raises(EdgeCNNError, match=rf"train_script_{code}.py exited \(sys.exit\({code}\)\)"):
        keras_io.import_user_code([script])


def test_user_code_named_like_an_installed_module_is_one_line(tmp_path):
    from edgecnn.export import keras_io

    shadow = tmp_path / "tf2onnx.py"
    shadow.write_text("class Net: pass\n")
    with pytest.raises(EdgeCNNError, match="its name is the installed module 'tf2onnx'"):
        keras_io.import_user_code([shadow])


def test_bench_markdown_writes_what_a_model_or_device_said_as_text(tmp_path):
    """bench.md took the model's name, the device's CPU and OS, node names and notes raw: an
    ESC in them ran in the terminal that cats the file, a <script> was markup."""
    import dataclasses

    from edgecnn.benchmark.report import markdown
    from edgecnn.results.bench import read_bench

    result = read_bench(ROOT / "exported" / "fashion-cnn" / "bench.json")
    hostile = "\x1b[2Jx<script>alert(1)</script>|"
    result = dataclasses.replace(result, model=hostile, notes=[hostile],
                                 machine=dataclasses.replace(result.machine, cpu=hostile, os=hostile))
    text = markdown(result)
    assert "\x1b" not in text and "<script>" not in text
    assert text.count("\\<script\\>") >= 4
