"""Faults, untrusted files and hostile input: nothing crashes, nothing is lost, errors are clear."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgecnn.errors import EdgeCNNError
from edgecnn.files import TMP_PREFIX, sweep_stale_temporaries, write_bytes
from edgecnn.runtime import Predictor
from tests.conftest import make_tiny_onnx

DTYPES = st.sampled_from([np.uint8, np.int8, np.int16, np.int64, np.uint16, np.float16,
                          np.float32, np.float64, np.bool_, np.complex64])
SHAPES = st.sampled_from([(8, 8), (8, 8, 1), (3, 8, 8), (3, 8, 8, 1), (0, 8, 8, 1), (8,), (),
                          (8, 8, 3), (2, 8, 8, 2), (1, 1, 8, 8, 1), (9, 8), (2, 7, 8, 1)])


@pytest.fixture(scope="module")
def predictor(tiny_onnx):
    return Predictor(tiny_onnx, providers="cpu")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), shape=SHAPES, dtype=DTYPES)
def test_random_inputs_give_a_valid_answer_or_a_clear_error(predictor, data, shape, dtype):
    images = data.draw(hnp.arrays(dtype, shape, elements=None if dtype != np.bool_ else st.booleans()))
    try:
        result = predictor.predict(images)
    except EdgeCNNError as exc:
        assert str(exc)
        return
    probs = result.probabilities
    # Only well-formed input gets an answer, and the answer is a probability table.
    assert images.dtype in (np.uint8, np.float16, np.float32, np.float64)
    batched = images.ndim == 4 or (images.ndim == 3 and images.shape != (8, 8, 1))
    assert probs.shape == ((images.shape[0] if batched else 1), 3)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-5)
    if images.dtype.kind == "f":
        assert np.isfinite(images).all() and images.min() >= -0.01 and images.max() <= 1.01


def test_one_huge_batch_is_chunked(tiny_onnx):
    predictor = Predictor(tiny_onnx, providers="cpu", max_batch=4096)
    images = np.random.default_rng(0).integers(0, 256, (100_000, 8, 8), dtype=np.uint8)
    result = predictor.predict(images)
    assert result.probabilities.shape == (100_000, 3)
    np.testing.assert_allclose(result.probabilities[:5], predictor.predict(images[:5]).probabilities,
                               atol=1e-6)


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    models = tmp_path / "models"
    models.mkdir()
    model = onnx.load(str(make_tiny_onnx(models / "base.onnx")))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin",
                                   size_threshold=100)
    onnx.save_model(model, str(models / "ok.onnx"))
    assert Predictor(models / "ok.onnx").predict(np.zeros((8, 8), np.uint8)).probabilities.shape == (1, 3)
    (tmp_path / "secret.bin").write_bytes((models / "w.bin").read_bytes())
    for location in ("../secret.bin", str(tmp_path / "secret.bin")):
        evil = onnx.load(str(models / "ok.onnx"), load_external_data=False)
        for tensor in evil.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(evil, str(models / "evil.onnx"))
        with pytest.raises(EdgeCNNError, match="outside the model's folder|Could not load"):
            Predictor(models / "evil.onnx")


def test_truncated_png_is_a_clear_error(tiny_onnx, tmp_path):
    from PIL import Image

    from edgecnn.runtime.images import read_image

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])
    assert read_image(good, (8, 8, 1)).shape == (8, 8, 1)
    with pytest.raises(EdgeCNNError, match="not a readable image"):
        read_image(bad, (8, 8, 1))


def test_stale_temporaries_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{TMP_PREFIX}{dead}-abc.onnx"
    stale.write_bytes(b"half a model")
    mine = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def.onnx"
    mine.write_bytes(b"a write in progress")
    write_bytes(tmp_path / "model.onnx", b"x")
    assert not stale.exists() and mine.exists()
    assert sweep_stale_temporaries(tmp_path) == []


_MISSING = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from edgecnn.cli.main import app
sys.argv = ["edgecnn", *sys.argv[2:]]
app()
"""


@pytest.mark.parametrize(
    ("blocked", "args", "hint"),
    [
        ("tensorflow,keras,tf2onnx", ["train", "shapes-toy", "--out", "{tmp}"], "edgecnn[export]"),
        ("onnxruntime", ["predict", "{model}", "{model}"], "edgecnn[cpu]"),
        ("tf2onnx", ["export", "{keras}", "--out", "{tmp}", "--no-quantize", "--no-validate"],
         "edgecnn[export]"),
    ],
)
def test_missing_dependency_is_one_line_with_the_fix(blocked, args, hint, tmp_path, tiny_onnx):
    keras_file = tmp_path / "m.keras"
    if "{keras}" in args:
        import keras

        keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(3, activation="softmax")]).save(keras_file)
    args = [a.format(tmp=tmp_path / "out", model=tiny_onnx, keras=keras_file) for a in args]
    out = subprocess.run([sys.executable, "-c", _MISSING, blocked, *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-1500:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and hint in errors[0] and "Traceback" not in out.stderr


def _artifacts_intact(folder: Path, originals: dict[str, bytes]) -> None:
    leftovers = list(folder.glob(TMP_PREFIX + "*"))
    assert leftovers == [], leftovers
    for name in originals:
        path = folder / name
        assert path.exists(), name
        if name.endswith(".onnx"):
            Predictor(path).predict(np.zeros((8, 8), np.uint8))


@pytest.mark.slow
def test_export_killed_part_way_leaves_previous_artifacts_intact(tmp_path):
    """SIGTERM an export at several moments; every artifact stays old-or-new and loadable."""
    out = tmp_path / "shapes"
    cmd = [sys.executable, "-c", "from edgecnn.cli.main import main; main()", "export", "shapes-toy",
           "--out", str(out), "--epochs", "2", "--calibration", "100"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode in (0, 3), first.stderr[-2000:]
    originals = {p.name: p.read_bytes() for p in out.iterdir()}
    started = time.perf_counter()
    full = subprocess.run([*cmd, "--retrain", "--force"], capture_output=True, text=True, timeout=300)
    duration = time.perf_counter() - started
    assert full.returncode in (0, 3)
    kills = 0
    for fraction in (0.45, 0.6, 0.7, 0.8, 0.9):
        proc = subprocess.Popen([*cmd, "--retrain", "--force"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            kills += 1
        proc.wait(timeout=120)
        _artifacts_intact(out, originals)
    assert kills >= 3
    # A SIGKILL cannot clean up: its temporary file is swept by the next write.
    proc = subprocess.Popen([*cmd, "--retrain", "--force"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(duration * 0.7)
    proc.kill()
    proc.wait()
    rerun = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode in (0, 3), rerun.stderr[-2000:]
    _artifacts_intact(out, originals)


def test_soak_shared_predictor_identical_results_and_bounded_memory(tiny_onnx):
    from edgecnn.bench.soak import soak

    images = np.random.default_rng(0).integers(0, 256, (256, 8, 8), dtype=np.uint8)
    result = soak(tiny_onnx, images, calls=4000, threads=8, warmup_calls=200)
    assert result["calls"] == 4000 and result["mismatches"] == 0
    assert result["rss_growth_mb"] < 50, result["rss_samples_mb"]
    assert result["rss_growth_second_half_mb"] < 10, result["rss_samples_mb"]
