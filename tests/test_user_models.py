"""Your own Keras model, first try: four kinds of user model, trained for seconds on real
Fashion-MNIST, each going export -> validate -> predict -> bench from an empty folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TEST_SEED

pytestmark = pytest.mark.slow
CLASSES = "top,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,boot"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from edgecnn.cli.main import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def _logits_residual(keras):
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(layers.Add()([x, y]))
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(10)(x))  # logits


def _augmented_rescaling(keras):
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)), layers.RandomFlip("horizontal"), layers.RandomRotation(0.05),
        layers.Rescaling(1 / 255), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, activation="softmax")])


def _rgb32_batchnorm(keras):
    layers = keras.layers
    return keras.Sequential([
        keras.Input((32, 32, 3)), layers.Conv2D(16, 3, padding="same"),
        layers.BatchNormalization(momentum=0.8), layers.ReLU(), layers.MaxPooling2D(),
        layers.SeparableConv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.SeparableConv2D(64, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax")])


def _depthwise_block(keras):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inputs)
    y = layers.Conv2D(32, 1, activation="relu6")(x)  # inverted residual: expand, depthwise, project
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = layers.BatchNormalization(momentum=0.8)(layers.Conv2D(16, 1)(y))
    x = layers.GlobalAveragePooling2D()(layers.Add()([x, y]))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


@pytest.fixture(scope="module")
def rgb32(fashion_small, tmp_path_factory):
    """Fashion-MNIST as 32x32 RGB in a user's .npz, with its class names stored."""
    def rgb(x):
        return np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)

    path = tmp_path_factory.mktemp("data") / "fashion32.npz"
    np.savez(path, x_train=rgb(fashion_small.x_train), y_train=fashion_small.y_train,
             x_test=rgb(fashion_small.x_test), y_test=fashion_small.y_test,
             class_names=np.array(CLASSES.split(",")))
    return path


@pytest.mark.parametrize("kind", ["logits", "rescaling", "rgb32", "depthwise"])
def test_user_model_goes_through_first_try(kind, tmp_path, fashion_small, rgb32):
    import keras

    from edgecnn.data import load_dataset

    build = {"logits": _logits_residual, "rescaling": _augmented_rescaling,
             "rgb32": _rgb32_batchnorm, "depthwise": _depthwise_block}[kind]
    keras.utils.set_random_seed(TEST_SEED)
    model = build(keras)
    data = load_dataset(str(rgb32)) if kind in ("rgb32", "depthwise") else fashion_small
    x = data.x_train.astype(np.float32)
    if kind in ("rgb32", "depthwise"):
        x = x / 255.0  # these two expect edgecnn's default preprocessing
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=kind == "logits")
    model.compile("adam", loss, metrics=["accuracy"])
    # seconds of training: enough to be far above chance (10 %), which is all this test needs
    model.fit(x, data.y_train, epochs=3 if kind in ("logits", "rescaling") else 6, batch_size=64,
              verbose=0)
    folder = tmp_path / "user"
    folder.mkdir()
    model.save(folder / "mine.keras")

    require: list[str] = []  # int8 is required unless it failed (below)
    args = ["export", "mine.keras", "--isa", "host"]
    args += ["--class-names", CLASSES] if kind in ("logits", "rescaling") else ["--dataset", str(rgb32)]
    exported = _cli(folder, *args)
    out = folder / "exported" / "mine"
    if kind in ("logits", "rescaling"):
        assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    elif exported.returncode == 3:
        # Seconds-trained GAP nets are unsure of their answers, and int8 noise can flip more
        # than 3 % of them, on the held-out training images the scheme search judges (then no
        # int8 file is left) or on the test set validation judges (then the required int8 fails
        # the run). Either way loudly, and the other variants still hold once int8 is not required.
        stderr = exported.stderr
        no_scheme = "no static int8 scheme holds" in stderr
        assert no_scheme or "model.int8.onnx (required) fails on" in stderr, stderr[-3000:]
        assert not no_scheme or not (out / "model.int8.onnx").exists()
        require = ["--require", "fp32"]
        validated = _cli(folder, "validate", "exported/mine", *require)
        assert validated.returncode == 0, validated.stderr[-2000:]
    else:
        assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    assert (out / "model.keras").is_file()  # the reference travels with the variants
    report = json.loads((out / "report.json").read_text())
    if exported.returncode == 0:
        _ships_the_fastest_passing_file(exported.stdout, out, report)
    assert report["keras_accuracy"] > 0.3 and report["passed"] and not report["warnings"]
    assert report["variants"][0]["max_abs_diff"] <= 1e-4  # probabilities on both sides
    info = json.loads(subprocess.run(
        [sys.executable, "-c", "import sys; from edgecnn.export.onnx_metadata import read_metadata; "
         "print(read_metadata(sys.argv[1]).to_json())", str(out / "model.onnx")],
        capture_output=True, text=True, check=True).stdout)
    assert info["dataset"] == ("fashion_mnist" if kind in ("logits", "rescaling") else str(rgb32))
    assert info["keras_logits"] == (kind == "logits")
    assert info["preprocessing"]["scale"] == (1.0 if kind in ("logits", "rescaling") else 1 / 255)

    # later commands need nothing but the folder
    validated = _cli(folder, "validate", "exported/mine", *require)
    assert validated.returncode == 0, validated.stderr[-2000:]
    from PIL import Image

    image = data.x_test[0]
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / "x.png")
    int8_passed = any(v["variant"] == "int8" and v["passed"] for v in report["variants"])
    variant = "model.int8.onnx" if int8_passed else "model.onnx"
    predicted = _cli(folder, "predict", f"exported/mine/{variant}", "x.png", "--json")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    top = json.loads(predicted.stdout.splitlines()[0])["top_k"]
    assert all(0.0 <= t["probability"] <= 1.0 for t in top) and top[0]["class"] in CLASSES.split(",")
    bench = _cli(folder, "bench", "exported/mine", "--target", "cpu-1t", "--batch", "1",
                 "--runs", "20", "--warmup", "2", "--duration", "0.2", "--rounds", "1",
                 "--no-engines", "--no-cold", "--no-plot", "--out", "b")
    assert bench.returncode == 0, bench.stderr[-2000:]
    rows = json.loads((folder / "b" / "mine.json").read_text())["results"]
    assert any(r["engine"].startswith("keras-") for r in rows)  # the Keras baseline is there


def _ships_the_fastest_passing_file(stdout: str, out: Path, report: dict) -> None:
    """export's last line names the variant that passes every gate here with the lowest batch-1
    p50 of the timing it kept as bench.json (of those not slower than fp32 at batch 64), and the
    report page recommends the same file."""
    import re

    last = stdout.strip().splitlines()[-1]
    named = re.match(r"Ship on this CPU \(([\w-]+)\): (\S+?): the fastest", last)
    assert named, last
    row = report["machine"]["native_row"]
    bench = json.loads((out / "bench.json").read_text())
    p50 = {b: {r["variant"]: r["p50_ms"] for r in bench["results"]
               if r["engine"] == "onnxruntime" and r["batch"] == b and r["target"] == "cpu-1t"} for b in (1, 64)}
    assert set(p50[64]) == set(p50[1])  # export times batch 64 too
    passing = [v for v in report["variants"] if v["by_isa"][row]["passed"]
               and p50[64][v["variant"]] <= p50[64]["fp32"]]
    fastest = min(passing, key=lambda v: p50[1][v["variant"]])
    assert named.group(1) == row and Path(named.group(2)).name == fastest["file"]
    page = (out / "report.html").read_text()
    assert re.search(rf'id="rec-{row}">.*?<code class="file">{re.escape(fastest["file"])}</code>', page)


def test_current_folder_is_never_a_dataset(tmp_path):
    """A model that names no dataset is not calibrated on whatever images lie around."""
    import keras
    from PIL import Image

    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "small.keras")
    for i in range(12):
        Image.new("L", (16, 16), color=i * 20).save(tmp_path / f"{i}.png")
    result = _cli(tmp_path, "export", "small.keras", "--isa", "host")
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "name the dataset" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "exported").exists()  # refused before anything was written
    # so the second try, naming the data, needs no --force to replace a failure's leftovers
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x_train=rng.integers(0, 256, (60, 16, 16, 1), dtype=np.uint8),
             y_train=np.arange(60) % 3, x_test=rng.integers(0, 256, (30, 16, 16, 1), dtype=np.uint8),
             y_test=np.arange(30) % 3)
    second = _cli(tmp_path, "export", "small.keras", "--isa", "host", "--dataset", "data.npz",
                  "--no-quantize")
    assert second.returncode == 0, second.stderr[-2000:]


def test_a_model_trained_on_other_pixels_is_caught_before_anything_is_written(tmp_path, fashion_small):
    """No Rescaling inside, trained on x / 127.5 - 1: the default pixels / 255 would pass every
    gate at a fraction of the model's accuracy; export names the convention and the flags."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(TEST_SEED)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(fashion_small.x_train / 127.5 - 1, fashion_small.y_train, epochs=3, batch_size=64, verbose=0)
    model.save(tmp_path / "pm1.keras")

    refused = _cli(tmp_path, "export", "pm1.keras", "--isa", "host", "--no-quantize")
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in refused.stderr
    assert "[-1, 1]" in errors[0] and "--scale 0.007843137255 --offset -1" in errors[0], errors
    out = tmp_path / "exported" / "pm1"
    assert not (out / "model.onnx").exists() and not (out / "model.keras").exists()

    accepted = _cli(tmp_path, "export", "pm1.keras", "--isa", "host", "--no-quantize",
                    "--scale", "0.007843137255", "--offset", "-1")
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["keras_accuracy"] > 0.6 and report["passed"]


def _normalized(keras, form: str, x: np.ndarray):
    """A small convnet whose first layer is a Normalization, in each way a user builds one."""
    layers = keras.layers
    if form == "explicit":
        norm = layers.Normalization(mean=float(x.mean()), variance=float(x.var()))
    else:
        norm = layers.Normalization(axis=None if form == "adapted-axis-none" else -1)
        norm.adapt(x[:2000])
    return keras.Sequential([keras.Input((28, 28, 1)), norm, layers.Conv2D(16, 3, activation="relu"),
                             layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize("form", ["adapted-axis-none", "adapted-default-axis", "explicit"])
def test_a_normalization_first_layer_exports_with_its_constants_inside(form, fashion_small, tmp_path):
    """Keras 3 keeps the mean and variance as captured tensors, which tf2onnx made graph inputs
    (quantization then refused a model of three inputs): they are constants of the graph now,
    and the whole export passes with the model's own preprocessing."""
    import keras
    import onnx

    keras.utils.set_random_seed(TEST_SEED)
    x = fashion_small.x_train.astype(np.float32)  # raw pixels: the layer is the preprocessing
    model = _normalized(keras, form, x)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, fashion_small.y_train, epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "norm.keras")
    exported = _cli(tmp_path, "export", "norm.keras", "--isa", "host", "--class-names", CLASSES,
                    "--require", "fp32")
    assert exported.returncode == 0, exported.stderr[-3000:]
    out = tmp_path / "exported" / "norm"
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]
    report = json.loads((out / "report.json").read_text())
    fp32 = report["variants"][0]
    assert report["passed"] and fp32["max_abs_diff"] <= 1e-4 and report["keras_accuracy"] > 0.5
    assert {v["variant"] for v in report["variants"]} >= {"fp32", "dynint8", "fp16"}


def test_a_model_of_variable_input_size_exports_for_the_size_named(fashion_small, tmp_path):
    """(None, None, 1) with global pooling: refused in one line naming --input-shape, then
    exported for 28x28x1 (a fixed ONNX input) and validated against the same Keras model."""
    import keras
    import onnx

    keras.utils.set_random_seed(TEST_SEED)
    layers = keras.layers
    model = keras.Sequential([keras.Input((None, None, 1)), layers.Rescaling(1 / 255),
                              layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                              layers.Conv2D(32, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(fashion_small.x_train.astype(np.float32), fashion_small.y_train, epochs=3, batch_size=64,
              verbose=0)
    model.save(tmp_path / "anysize.keras")
    refused = _cli(tmp_path, "export", "anysize.keras", "--isa", "host", "--class-names", CLASSES)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 1 and len(errors) == 1 and "--input-shape H,W,C" in errors[0], refused.stderr
    assert not (tmp_path / "exported").exists()
    wrong = _cli(tmp_path, "export", "anysize.keras", "--input-shape", "28,28,3", "--class-names", CLASSES)
    assert wrong.returncode == 1 and "does not fit it" in wrong.stderr, wrong.stderr
    exported = _cli(tmp_path, "export", "anysize.keras", "--isa", "host", "--input-shape", "28,28,1",
                    "--class-names", CLASSES, "--require", "fp32")
    assert exported.returncode == 0, exported.stderr[-3000:]
    out = tmp_path / "exported" / "anysize"
    dims = [d.dim_value or d.dim_param for d in
            onnx.load(str(out / "model.onnx")).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 28, 28, 1]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["variants"][0]["max_abs_diff"] <= 1e-4 and report["keras_accuracy"] > 0.3


def test_a_legacy_h5_model_and_a_savedmodel_export_with_their_own_bytes_as_reference(fashion_small, tmp_path):
    """Keras 3 reads Keras 2's HDF5 files: the export keeps the file's bytes as its reference
    (model.h5), so a re-run without --force finds the same export. A TensorFlow SavedModel is
    exported through its serving signature and validated against the same signature (the
    folder copied whole as model.savedmodel); a folder that is neither is one line."""
    import keras

    from edgecnn.export.saved_model import tree_sha256

    keras.utils.set_random_seed(TEST_SEED)
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Rescaling(1 / 255),
                              layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(fashion_small.x_train.astype(np.float32), fashion_small.y_train, epochs=2, batch_size=64,
              verbose=0)
    model.save(tmp_path / "legacy.h5")
    model.export(str(tmp_path / "served"))  # a SavedModel with a serving_default signature
    args = ("export", "legacy.h5", "--isa", "host", "--class-names", CLASSES)
    first = _cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "exported" / "legacy"
    assert (out / "model.h5").read_bytes() == (tmp_path / "legacy.h5").read_bytes()
    assert not (out / "model.keras").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["keras_file"] == "model.h5"
    assert report["variants"][0]["max_abs_diff"] <= 1e-4 and report["keras_accuracy"] > 0.5
    again = _cli(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]  # the same file: nothing to --force

    # its layers are not readable: the head is named, and the pixels it takes (Rescaling inside)
    served = ("export", "served", "--unsafe", "--isa", "host", "--class-names", CLASSES, "--output", "softmax",
              "--scale", "1", "--offset", "0")
    exported = _cli(tmp_path, *served)
    assert exported.returncode == 0, exported.stderr[-3000:]
    out = tmp_path / "exported" / "served"
    assert tree_sha256(out / "model.savedmodel") == tree_sha256(tmp_path / "served")
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["keras_file"] == "model.savedmodel"
    assert report["variants"][0]["max_abs_diff"] <= 1e-4 and report["keras_accuracy"] > 0.5
    assert _cli(tmp_path, *served).returncode == 0  # the same folder: nothing to --force
    assert _cli(tmp_path, "validate", "exported/served", "--unsafe").returncode == 0
    bench = _cli(tmp_path, "bench", "exported/served", "--target", "cpu-1t", "--batch", "1", "--runs", "10",
                 "--warmup", "2", "--duration", "0.1", "--rounds", "1", "--no-engines", "--no-cold",
                 "--no-plot", "--out", "b")
    assert bench.returncode == 0 and "Keras baseline skipped: the reference is a TensorFlow SavedModel" in bench.stdout

    (tmp_path / "empty").mkdir()
    refused = _cli(tmp_path, "export", "empty", "--isa", "host", "--class-names", CLASSES)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 1 and len(errors) == 1 and "no saved_model.pb" in errors[0], refused.stderr
    assert not (tmp_path / "exported" / "empty").exists()


SUBCLASSED = '''
import keras


@keras.saving.register_keras_serializable(package="usercode")
class MyNet(keras.Model):
    def __init__(self, classes=10, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.conv = keras.layers.Conv2D(16, 3, activation="relu")
        self.pool = keras.layers.MaxPooling2D()
        self.flat = keras.layers.Flatten()
        self.head = keras.layers.Dense(classes, activation="softmax")

    def call(self, x):
        return self.head(self.flat(self.pool(self.conv(x))))

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}
'''


def test_a_subclassed_model_loads_only_with_its_code_imported_on_request(fashion_small, tmp_path):
    """Keras cannot rebuild MyNet without its class: the export says to name its file with
    --import-module (never imported unasked); with it, the export runs, says so, and the report
    records the file and its sha256. validate needs the flag again."""
    import hashlib

    (tmp_path / "mynet.py").write_text(SUBCLASSED)
    train = ("import sys, numpy as np, keras\nsys.path.insert(0, '.')\nfrom mynet import MyNet\n"
             f"keras.utils.set_random_seed({TEST_SEED})\n"
             "d = np.load('data.npz')\nm = MyNet()\nm(d['x'][:1])\n"
             "m.compile('adam', 'sparse_categorical_crossentropy')\n"
             "m.fit(d['x'], d['y'], epochs=2, batch_size=64, verbose=0)\nm.save('mynet.keras')\n")
    np.savez(tmp_path / "data.npz", x=fashion_small.x_train.astype(np.float32) / 255, y=fashion_small.y_train)
    done = subprocess.run([sys.executable, "-c", train], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    args = ("export", "mynet.keras", "--isa", "host", "--class-names", CLASSES, "--output", "softmax")
    refused = _cli(tmp_path, *args)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 1 and len(errors) == 1, refused.stderr
    assert "MyNet" in errors[0] and "--import-module FILE.py" in errors[0]
    exported = _cli(tmp_path, *args, "--import-module", "mynet.py")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "Importing mynet.py (--import-module)" in exported.stderr
    out = tmp_path / "exported" / "mynet"
    report = json.loads((out / "report.json").read_text())
    digest = hashlib.sha256(SUBCLASSED.encode()).hexdigest()
    assert list(report["user_code"].values()) == [digest] and report["passed"]
    assert report["keras_accuracy"] > 0.5 and report["variants"][0]["max_abs_diff"] <= 1e-4
    assert "--import-module" in (out / "report.md").read_text()
    again = _cli(tmp_path, "validate", "exported/mynet")
    assert again.returncode == 1 and "--import-module" in again.stderr, again.stderr[-2000:]
    assert _cli(tmp_path, "validate", "exported/mynet", "--import-module", "mynet.py").returncode == 0


def _small_convnet(keras, inp):
    h = keras.layers.Rescaling(1 / 255)(inp)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    return keras.layers.Flatten()(h)


def _mixed_precision(keras):
    """The Keras guide's recipe: float16 layers, the softmax in float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((28, 28, 1))
        logits = keras.layers.Dense(10)(_small_convnet(keras, inp))
        return keras.Model(inp, keras.layers.Activation("softmax", dtype="float32")(logits))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _uint8_input(keras):
    """Camera bytes in: the model converts them itself."""
    inp = keras.Input((28, 28, 1), dtype="uint8")
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(_small_convnet(keras, inp)))


def _two_heads(keras):
    """A class head and an auxiliary regression head."""
    inp = keras.Input((28, 28, 1))
    h = _small_convnet(keras, inp)
    return keras.Model(inp, [keras.layers.Dense(10, activation="softmax", name="classes")(h),
                             keras.layers.Dense(1, name="aux")(h)])


@pytest.mark.parametrize("kind", ["mixed", "uint8", "two-heads"])
def test_mixed_precision_uint8_input_and_two_heads_export_to_a_validated_set(kind, tmp_path, fashion_small):
    """From the first command to a set that validates and predicts (issue 34): a
    mixed-precision model (the fp16 converter refused its half-float16 graph), a uint8 input
    (the fp16 file did not load), two outputs (a traceback reading the output width)."""
    import keras

    keras.utils.set_random_seed(TEST_SEED)
    model = {"mixed": _mixed_precision, "uint8": _uint8_input, "two-heads": _two_heads}[kind](keras)
    x, y = fashion_small.x_train, fashion_small.y_train
    if kind == "two-heads":
        model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
        model.fit(x.astype(np.float32), [y, (y >= 5).astype(np.float32)], epochs=2, batch_size=64, verbose=0)
    else:
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x if kind == "uint8" else x.astype(np.float32), y, epochs=2, batch_size=64, verbose=0)
    folder = tmp_path / "user"
    folder.mkdir()
    model.save(folder / "mine.keras")

    exported = _cli(folder, "export", "mine.keras", "--isa", "host")
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    out = folder / "exported" / "mine"
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["keras_accuracy"] > 0.3
    from edgecnn.runtime import Predictor

    files = {v["variant"]: v for v in report["variants"]}
    assert set(files) == {"fp32", "int8", "dynint8", "fp16"}  # none dropped, each validated
    for v in files.values():
        predictor = Predictor(out / v["file"])  # every file kept loads and answers
        assert predictor.predict(fashion_small.x_test[:4]).probabilities.shape == (4, 10)
    info = Predictor(out / "model.onnx").info
    if kind == "mixed":
        assert info.compute == "float16" and "mixed precision" in exported.stderr
        assert not files["fp32"]["gate"].startswith("max |Δp|")  # judged as fp16: half-precision layers
    if kind == "two-heads":
        assert info.keras_output == "classes" and "exporting its output 'classes'" in exported.stderr
    if kind == "uint8":
        _check_reads_pixels(folder, out, exported.stderr, files, fashion_small.x_test[:64])
    validated = _cli(folder, "validate", "exported/mine")
    assert validated.returncode == 0, validated.stderr[-2000:]
    from PIL import Image

    Image.fromarray(fashion_small.x_test[0][..., 0]).save(folder / "x.png")
    predicted = _cli(folder, "predict", "exported/mine/model.fp16.onnx", "x.png", "--json")
    assert predicted.returncode == 0, predicted.stderr[-2000:]


def _check_reads_pixels(folder: Path, out: Path, log: str, files: dict, pixels: np.ndarray) -> None:
    """A model whose input is uint8 exports files that read uint8 pixels as they are (its
    Rescaling folded into the first conv, nothing but a Cast in front), which the Predictor
    feeds untouched and refuses floats for; --float-input exports the float file it was."""
    import onnx

    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime import Predictor

    assert "its input is uint8: model.onnx reads uint8 pixels" in log
    for v in files.values():
        assert Predictor(out / v["file"]).session.get_inputs()[0].type == "tensor(uint8)", v["file"]
    graph = onnx.load(out / "model.onnx").graph
    [cast] = [n for n in graph.node if graph.input[0].name in n.input]
    assert cast.op_type == "Cast"
    assert not [n for n in graph.node if n.op_type in ("Mul", "Div")]  # Rescaling folded into the conv
    shipped = Predictor(out / "model.onnx")
    with pytest.raises(EdgeCNNError, match="reads uint8 pixels"):
        shipped.predict(pixels.astype(np.float32))
    floats = _cli(folder, "export", "mine.keras", "--float-input", "--no-quantize", "--no-validate",
                  "--no-time", "--out", "exported/float")
    assert floats.returncode == 0, floats.stderr[-2000:]
    as_float = Predictor(folder / "exported" / "float" / "model.onnx")
    assert as_float.session.get_inputs()[0].type == "tensor(float)" and as_float.info.input_dtype == "float32"
    np.testing.assert_allclose(as_float.predict(pixels).probabilities, shipped.predict(pixels).probabilities,
                               atol=1e-5)


def test_a_float_model_exported_with_uint8_input_has_its_preprocessing_in_the_graph(tmp_path, fashion_small):
    """--uint8-input on a model that reads pixels / 255: the scale goes into the graph (folded
    into the first conv), every variant reads uint8, and each holds its gates against Keras."""
    import keras
    import onnx

    from edgecnn.runtime import Predictor

    keras.utils.set_random_seed(TEST_SEED)
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(fashion_small.x_train / np.float32(255), fashion_small.y_train, epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "plain.keras")
    done = _cli(tmp_path, "export", "plain.keras", "--isa", "host", "--uint8-input")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "preprocessing in the graph (--uint8-input)" in done.stderr
    out = tmp_path / "exported" / "plain"
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and {v["variant"] for v in report["variants"]} == {"fp32", "int8", "dynint8", "fp16"}
    assert report["variants"][0]["max_abs_diff"] <= 1e-4
    for v in report["variants"]:
        assert Predictor(out / v["file"]).session.get_inputs()[0].type == "tensor(uint8)", v["file"]
    graph = onnx.load(out / "model.onnx").graph
    assert not [n for n in graph.node if n.op_type in ("Mul", "Div")]  # 1/255 folded into the conv
    pixels = fashion_small.x_test[:32]
    np.testing.assert_allclose(Predictor(out / "model.onnx").predict(pixels).probabilities,
                               model.predict(pixels / np.float32(255), verbose=0), atol=1e-5)


def test_a_savedmodel_with_two_outputs_exports_the_one_named(tmp_path):
    """A SavedModel's outputs are read like a Keras model's (by running its signature once):
    two of unknown head are one line asking for --output-name; named, that output is exported
    and validated against the same output of the signature."""
    import keras

    keras.utils.set_random_seed(TEST_SEED)
    inp = keras.Input((28, 28, 1))
    h = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inp))
    keras.Model(inp, [keras.layers.Dense(10, activation="softmax")(h), keras.layers.Dense(1)(h)]).export(
        str(tmp_path / "served"))
    args = ("export", "served", "--unsafe", "--output", "softmax", "--scale", "1", "--offset", "0", "--isa",
            "host", "--no-quantize", "--no-time")
    asked = _cli(tmp_path, *args)
    assert asked.returncode == 1 and "Traceback" not in asked.stderr, asked.stderr[-2000:]
    assert "'output_0' (unknown head, 10 units), 'output_1' (unknown head, 1 units)" in asked.stderr
    assert "--output-name" in asked.stderr and not (tmp_path / "exported").exists()
    named = _cli(tmp_path, *args, "--output-name", "output_0")
    assert named.returncode == 0, named.stderr[-3000:]
    report = json.loads((tmp_path / "exported" / "served" / "report.json").read_text())
    assert report["passed"] and report["variants"][0]["max_abs_diff"] <= 1e-5
    assert _cli(tmp_path, "validate", "exported/served", "--unsafe").returncode == 0


def test_a_model_with_outputs_of_no_clear_class_head_is_one_line_before_anything_is_written(tmp_path):
    import keras

    inp = keras.Input((28, 28, 1))
    h = keras.layers.Flatten()(inp)
    keras.Model(inp, [keras.layers.Dense(10, activation="softmax", name="a")(h),
                      keras.layers.Dense(5, activation="softmax", name="b")(h)]).save(tmp_path / "two.keras")
    result = _cli(tmp_path, "export", "two.keras")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "name the class head to export with --output-name" in result.stderr and "'b' (softmax, 5 units)" in result.stderr
    assert not (tmp_path / "exported").exists()
    wrong = _cli(tmp_path, "export", "two.keras", "--output-name", "c")
    assert "has no output named 'c'" in wrong.stderr and not (tmp_path / "exported").exists()


UNTRUSTED_SAVEDMODEL = """
import sys, tensorflow as tf
class Served(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([784, 10], seed=[0, 1]))
    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def serve(self, x):
        tf.io.write_file(sys.argv[2], "written by the graph")
        tf.print(tf.io.read_file(sys.argv[3]))
        y = tf.py_function(lambda t: t, [x], tf.float32) if sys.argv[4] == "pyfunc" else x
        return {"out": tf.nn.softmax(tf.reshape(y / 255, [-1, 784]) @ self.w)}
m = Served()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


def test_a_savedmodel_is_code_loaded_only_with_unsafe_from_a_folder_of_its_own_files(tmp_path):
    """A SavedModel's graph that writes a file and prints a local secret: refused in one line
    before it runs (no file written, no secret printed, nothing exported) unless --unsafe, which
    the output says and the report records; validate asks for it too. Symlinks out of the
    folder, a symlinked folder and a FIFO are refused; a tf.py_function is one line."""
    secret = tmp_path / "secret.txt"
    secret.write_text("THE-SECRET-TEXT")
    written = tmp_path / "written-by-the-graph"

    def saved(name, mode="plain"):
        built = subprocess.run([sys.executable, "-c", UNTRUSTED_SAVEDMODEL, str(tmp_path / name), str(written),
                                str(secret), mode], capture_output=True, text=True, timeout=300)
        assert built.returncode == 0, built.stderr[-2000:]
        written.unlink(missing_ok=True)
        return name

    args = ("--isa", "host", "--output", "softmax", "--scale", "1", "--offset", "0", "--no-quantize",
            "--no-time", "--dataset", "fashion-mnist")
    refused = _cli(tmp_path, "export", saved("served"), *args)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert "is a TensorFlow SavedModel: loading one runs its graph" in refused.stderr and "--unsafe" in refused.stderr
    assert not written.exists() and "THE-SECRET" not in refused.stdout + refused.stderr
    assert not (tmp_path / "exported").exists()

    trusted = _cli(tmp_path, "export", "served", "--unsafe", *args)
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    assert "Loading the SavedModel served (--unsafe): its graph runs" in trusted.stderr + trusted.stdout
    out = tmp_path / "exported" / "served"
    assert json.loads((out / "report.json").read_text())["unsafe"] is True
    assert "**Unsafe load:**" in (out / "report.md").read_text()
    again = _cli(tmp_path, "validate", "exported/served")
    assert again.returncode == 1 and "--unsafe" in again.stderr and "Traceback" not in again.stderr

    def one_line(folder, expected):
        result = _cli(tmp_path, "export", folder, "--unsafe", *args)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1 and len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr and not (tmp_path / "exported" / Path(folder).name).exists()

    (tmp_path / "linked").mkdir()
    for case in ("assets-out", "variables-out", "fifo"):
        shutil.copytree(tmp_path / "served", tmp_path / "linked" / case)
    (tmp_path / "linked" / "assets-out" / "assets" / "vocab.txt").symlink_to(secret)
    one_line("linked/assets-out", "is a symlink out of the SavedModel folder")
    shutil.rmtree(tmp_path / "linked" / "variables-out" / "variables")
    (tmp_path / "linked" / "variables-out" / "variables").symlink_to(tmp_path / "served" / "variables")
    one_line("linked/variables-out", "is a symlink out of the SavedModel folder")
    os.mkfifo(tmp_path / "linked" / "fifo" / "assets" / "pipe")
    one_line("linked/fifo", "is not a file (a FIFO, socket or device)")
    one_line(saved("pyfunc", "pyfunc"), "it calls a tf.py_function, Python code that a SavedModel does not keep")
