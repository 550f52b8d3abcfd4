"""Faults, untrusted files and hostile input: nothing crashes, nothing is lost, errors are clear."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from edgecnn.store.files import TMP_PREFIX, sweep_stale_temporaries, write_bytes
from tests.conftest import TEST_SEED, make_tiny_onnx

DTYPES = st.sampled_from([np.uint8, np.int8, np.int16, np.int64, np.uint16, np.float16,
                          np.float32, np.float64, np.bool_, np.complex64])
SHAPES = st.sampled_from([(8, 8), (8, 8, 1), (3, 8, 8), (3, 8, 8, 1), (0, 8, 8, 1), (8,), (),
                          (8, 8, 3), (2, 8, 8, 2), (1, 1, 8, 8, 1), (9, 8), (2, 7, 8, 1)])


@pytest.fixture(scope="module")
def predictor(tiny_onnx):
    return Predictor(tiny_onnx, providers="cpu")


# The shapes the tiny model (8x8x1) takes, and how many images each holds.
ACCEPTED_SHAPES = {(8, 8): 1, (8, 8, 1): 1, (3, 8, 8): 3, (3, 8, 8, 1): 3}


def _answerable(images: np.ndarray) -> bool:
    """What the Predictor's docs promise an answer for, written here independently: uint8
    pixels or finite floats already in the model's 0-1 range (a 0.1 % slack), in a shape it
    takes, with at least one image."""
    if images.shape not in ACCEPTED_SHAPES:
        return False
    if images.dtype == np.uint8:
        return True
    if images.dtype.kind != "f":
        return False
    with np.errstate(over="ignore"):
        floats = images.astype(np.float32)
    return bool(np.isfinite(floats).all() and floats.min() >= -1e-3 and floats.max() <= 1 + 1e-3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), shape=SHAPES, dtype=DTYPES)
def test_random_inputs_give_a_valid_answer_or_a_clear_error(predictor, data, shape, dtype):
    """Exactly the well-formed inputs are answered, with a probability table; every other one
    is an EdgeCNNError (a Predictor refusing everything, or answering garbage, fails)."""
    unit = st.floats(0, 1, width=16 if dtype == np.float16 else 32 if dtype == np.float32 else 64)
    elements = st.booleans() if dtype == np.bool_ else data.draw(st.sampled_from([None, unit])) \
        if np.dtype(dtype).kind == "f" else None
    images = data.draw(hnp.arrays(dtype, shape, elements=elements))
    if not _answerable(images):
        with pytest.raises(EdgeCNNError):
            predictor.predict(images)
        return
    probs = predictor.predict(images).probabilities
    assert probs.shape == (ACCEPTED_SHAPES[images.shape], 3)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-5)


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


# Runs `edgecnn export` and signals itself just before the N-th artifact is renamed into place:
# the worst instant, when a complete temporary file exists beside the old artifact.
_KILL_AT_RENAME = """
import os, signal, sys
n, signum = int(sys.argv[1]), getattr(signal, sys.argv[2])
real_replace, seen = os.replace, [0]
def replace(src, dst, *args, **kwargs):
    if os.path.basename(str(src)).startswith(".edgecnn-tmp-"):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signum)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from edgecnn.cli.main import main
sys.argv = ["edgecnn", *sys.argv[3:]]
main()
"""
# model.keras, train.json, model.onnx, int8, dynint8, fp16, report.json, report.md, report.html,
# then the timing that names the file to ship: bench.json, and report.html again with it
_FILES, _RENAMES = 10, 11


@pytest.mark.slow
def test_export_killed_at_any_write_leaves_previous_artifacts_intact(tmp_path):
    """SIGTERM an export at several of its writes, SIGKILL it at one: the folder keeps the old
    set whole (never new files beside an old report), and nothing staged outlives the next run."""
    import shutil

    from edgecnn.pipeline import run_pipeline

    base = tmp_path / "base"
    run_pipeline("shapes-toy", out_dir=base, train_options={"epochs": 1, "verbose": 0},
                 calibration=100, isa="host", seed=TEST_SEED)
    originals = {p.name: p.read_bytes() for p in base.iterdir()}
    assert len(originals) == _FILES
    plans = [(1, "SIGTERM"), (3, "SIGTERM"), (6, "SIGTERM"), (9, "SIGTERM"), (_RENAMES, "SIGTERM"),
             (4, "SIGKILL")]
    procs = []
    for n, signame in plans:
        out = tmp_path / f"{signame}-{n}"
        shutil.copytree(base, out)
        args = ["export", "shapes-toy", "--out", str(out), "--epochs", "1", "--calibration", "100",
                "--isa", "host", "--retrain", "--force", "--seed", str(TEST_SEED)]
        procs.append((out, signame, subprocess.Popen(
            [sys.executable, "-c", _KILL_AT_RENAME, str(n), signame, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
    for out, signame, proc in procs:
        _, err = proc.communicate(timeout=300)
        expected = 128 + signal.SIGTERM if signame == "SIGTERM" else -signal.SIGKILL
        assert proc.returncode == expected, err[-2000:]
        # the new set is written beside the folder and replaces it in one step at the end:
        # interrupted anywhere, the folder still holds exactly the old set, report included
        assert {p.name: p.read_bytes() for p in out.iterdir()} == originals, (signame, n)
        _artifacts_intact(out, originals)
        leftovers = list(tmp_path.glob(f"{TMP_PREFIX}*stage-{out.name}-*"))
        if signame == "SIGTERM":
            assert not leftovers
        else:  # a SIGKILL cannot clean up: its staged set is swept by the next write
            assert leftovers
            run_pipeline("shapes-toy", out_dir=out, calibration=100, isa="host", force=True,
                         seed=TEST_SEED)
            _artifacts_intact(out, originals)
            assert not any(p.exists() for p in leftovers)


def test_soak_shared_predictor_identical_results_and_bounded_memory(tiny_onnx):
    from edgecnn.benchmark.soak import soak

    images = np.random.default_rng(0).integers(0, 256, (256, 8, 8), dtype=np.uint8)
    result = soak(tiny_onnx, images, calls=4000, threads=8, warmup_calls=200)
    assert result["calls"] == 4000 and result["mismatches"] == 0
    assert result["rss_growth_mb"] < 50, result["rss_samples_mb"]
    assert result["rss_growth_second_half_mb"] < 10, result["rss_samples_mb"]


def test_every_writer_of_an_export_folder_takes_its_lock(tmp_path):
    """validate, quantize and report write into the export folder: while one runs, another is
    refused in one line and nothing it would have written is lost or mixed."""
    import fcntl
    import json
    import os
    import shutil
    import time

    from tests.conftest import need_isa

    need_isa("x86-avx2")  # an emulated row keeps validate busy long enough to overlap
    folder = shutil.copytree(Path(__file__).resolve().parents[1] / "exported" / "shapes-toy",
                             tmp_path / "shapes-toy")
    before = {p.name: p.read_bytes() for p in folder.glob("model*.onnx")}
    cli = [sys.executable, "-c", "from edgecnn.cli.main import main; main()"]
    validating = subprocess.Popen([*cli, "validate", str(folder), "--isa", "x86-avx2,x86-sse4"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fd = os.open(folder, os.O_RDONLY)
    try:  # wait until the validation holds the folder
        for _ in range(600):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                time.sleep(0.05)
            except BlockingIOError:
                break
        else:
            pytest.fail("validate never took the folder's lock")
    finally:
        os.close(fd)
    for args in (["quantize", str(folder / "model.onnx"), "--variant", "dynint8", "--force"],
                 ["report", str(folder)]):
        refused = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 1 and "Another edgecnn process is writing" in lines[-1], refused.stderr
    _, err = validating.communicate(timeout=600)
    assert validating.returncode == 0, err[-2000:]
    report = json.loads((folder / "report.json").read_text())
    assert {"x86-avx2", "x86-sse4"} <= set(report["isa_rows"]) and report["passed"]
    assert {p.name: p.read_bytes() for p in folder.glob("model*.onnx")} == before
    done = subprocess.run([*cli, "quantize", str(folder / "model.onnx"), "--variant", "dynint8",
                           "--force"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _bad_outputs(tmp_path: Path) -> dict[str, str]:
    """Output paths no command can write: a folder where a file goes, a path under a file, a
    virtual file system, a file where a folder goes."""
    (tmp_path / "a-file").write_text("mine\n")
    (tmp_path / "a-folder").mkdir(exist_ok=True)
    return {"folder for a file": str(tmp_path / "a-folder"),
            "under a file": str(tmp_path / "a-file" / "sub" / "x.jsonl"),
            "under /proc": "/proc/edgecnn-test/x.jsonl",
            "file for a folder": str(tmp_path / "a-file")}


@pytest.mark.parametrize("command", ["predict", "export", "bench", "soak", "train"])
def test_every_command_refuses_a_bad_output_path_in_one_line(tmp_path, command):
    shapes = Path(__file__).resolve().parents[1] / "exported" / "shapes-toy"
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 8, 8), np.uint8))
    for case, out in _bad_outputs(tmp_path).items():
        if command != "predict" and case == "folder for a file":
            continue  # a folder is what the others write into
        args = {"predict": ["predict", str(shapes / "model.onnx"), str(tmp_path / "x.npz"), "--out", out],
                "export": ["export", "shapes-toy", "--out", out, "--no-validate", "--no-quantize"],
                "bench": ["bench", str(shapes), "--out", out, "--no-engines", "--no-cold", "--runs", "2"],
                "soak": ["soak", str(shapes / "model.int8.onnx"), "--out", out, "--calls", "10"],
                "train": ["train", "shapes-toy", "--out", out, "--epochs", "1"]}[command]
        done = subprocess.run([sys.executable, "-c", "from edgecnn.cli.main import main; main()", *args],
                              capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 1 and "Traceback" not in done.stderr, (case, done.stderr[-1500:])
        assert len(lines) == 1, (case, done.stderr[-1500:])
    assert (tmp_path / "a-file").read_text() == "mine\n"  # nothing a user made was touched


def test_an_export_whose_int8_holds_nowhere_keeps_its_files_but_no_report_of_others(tmp_path):
    """Exit 3 with its files in place (to inspect, or validate without int8), and never the old
    report beside the new files."""
    import shutil

    from edgecnn.errors import GateFailedError
    from edgecnn.pipeline import run_pipeline
    from tests.conftest import impossible_gates

    folder = shutil.copytree(Path(__file__).resolve().parents[1] / "exported" / "shapes-toy",
                             tmp_path / "shapes-toy")
    (folder / "model.onnx").unlink()  # a new export of the same Keras model
    with pytest.raises(GateFailedError, match="no static int8 scheme holds"):
        run_pipeline("shapes-toy", out_dir=folder, isa="host", calibration=100, force=True,
                     gates=impossible_gates(int8_max_accuracy_drop=-1.0, int8_loss_significance=2.0))
    names = {p.name for p in folder.iterdir()}
    assert {"model.onnx", "model.dynint8.onnx", "model.fp16.onnx", "model.keras"} <= names
    assert not names & {"report.json", "report.md", "report.html", "model.int8.onnx"}, names


def test_an_error_in_a_staged_export_names_the_export_folder():
    from edgecnn.errors import EdgeCNNError
    from edgecnn.pipeline import _named_as

    stage = Path("exported") / ".edgecnn-tmp-1-stage-mine-abc"
    with pytest.raises(EdgeCNNError, match=r"^exported/mine/model\.onnx: expected one input\.$"):
        with _named_as(stage, Path("exported/mine")):
            raise EdgeCNNError(f"{stage}/model.onnx: expected one input.")
