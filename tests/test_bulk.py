"""Bulk inference (`edgecnn predict --out`) and the validation matrix, in one process and on Ray.

The Ray tests run a local Ray (two CPUs, as on CI) and assert that its rows are the very rows
the single process writes, on real Fashion-MNIST test images stored as PNG files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bulk import predict_bulk
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime import Predictor
from tests.conftest import OTHER_X86, need_isa

ROOT = Path(__file__).resolve().parents[1]
INT8 = ROOT / "exported" / "fashion-cnn" / "model.int8.onnx"
N_IMAGES = 2500


@pytest.fixture(scope="module")
def ray_local():
    import ray  # `make test` installs edgecnn[scale]

    started = not ray.is_initialized()
    if started:
        # labelled as another x86 class too, so that the matrix test exercises the placement, and
        # as its own class, which its tasks then run natively
        from edgecnn.runtime.isa import host_isa

        ray.init(num_cpus=2, resources={f"isa:{OTHER_X86}": 1, f"isa:{host_isa()}": 1}, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory, fashion):
    """The first N_IMAGES real test images as PNG files in nested folders, with their labels."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs")
    for i, image in enumerate(fashion.x_test[:N_IMAGES]):
        sub = root / f"part{i // 1000}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(image[..., 0]).save(sub / f"{i:05d}.png")
    return root, fashion.x_test[:N_IMAGES], fashion.y_test[:N_IMAGES]


def _table(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path)


def test_ray_writes_the_same_rows_as_one_process(png_folder, ray_local, tmp_path):
    folder, images, labels = png_folder
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    one = predict_bulk(INT8, [folder], out=local, engine="local", batch_size=128)
    many = predict_bulk(INT8, [folder], out=on_ray, engine="ray", batch_size=128, concurrency=2)
    assert (one.images, many.images, many.engine, many.workers) == (N_IMAGES, N_IMAGES, "ray", 2)
    a, b = _table(local), _table(on_ray)
    assert a.num_rows == N_IMAGES and a.equals(b)
    rows = a.to_pydict()
    # in input order (sorted paths), each row the Predictor's own answer on those pixels
    assert rows["index"] == list(range(N_IMAGES))
    assert rows["input"] == sorted(str(p) for p in folder.rglob("*.png"))
    predictor = Predictor(INT8)
    expected = predictor.predict(images)
    assert rows["label"] == expected.names
    top = np.array([p[0] for p in rows["top_probabilities"]], dtype=np.float32)
    assert np.array_equal(top, expected.probabilities.max(axis=1))
    accuracy = float(np.mean(expected.labels == labels))
    assert accuracy > 0.88  # the committed model's accuracy on real images, not a constant answer
    assert set(rows["variant"]) == {"int8"} and len(set(rows["model_sha256"])) == 1
    assert all(e is None for e in rows["error"]) and all(len(c) == 3 for c in rows["top_classes"])


def test_parquet_and_npz_inputs_give_the_same_answers_on_both_engines(png_folder, ray_local, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, images, _ = png_folder
    files = sorted(folder.rglob("*.png"))[:600]
    # Hugging Face's layout: a struct column "image" with the encoded bytes, no id column
    images_column = [{"bytes": f.read_bytes(), "path": None} for f in files]
    source = tmp_path / "images.parquet"
    pq.write_table(pa.table({"image": images_column}), source, row_group_size=100)
    np.savez(tmp_path / "images.npz", x_test=images[:600])
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        predict_bulk(INT8, [source, tmp_path / "images.npz"], out=out, engine=engine, batch_size=64)
        outputs[engine] = out.read_text()
    assert outputs["local"] == outputs["ray"]
    import json

    rows = [json.loads(line) for line in outputs["local"].splitlines()]
    assert len(rows) == 1200 and [r["index"] for r in rows] == list(range(1200))
    assert rows[0]["input"] == f"{source}[0]" and rows[600]["input"] == f"{tmp_path / 'images.npz'}[0]"
    # the PNG bytes and the raw pixels are the same images
    assert [r["label"] for r in rows[:600]] == [r["label"] for r in rows[600:]]


def _with_a_bad_image(folder: Path, dest: Path, count: int, name: str, content: bytes) -> Path:
    """``dest`` holding the first ``count`` PNGs of ``folder`` and the file ``name`` with ``content``."""
    dest.mkdir()
    for f in sorted(folder.rglob("*.png"))[:count]:
        (dest / f.name).write_bytes(f.read_bytes())
    (dest / name).write_bytes(content)
    return dest


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_an_unreadable_image_stops_the_run_or_becomes_an_error_row(png_folder, ray_local, tmp_path, engine):
    bad = _with_a_bad_image(png_folder[0], tmp_path / "bad", 20, "00007.png", b"not a png")
    out = tmp_path / "r.parquet"
    with pytest.raises(EdgeCNNError, match=r"00007\.png is not a readable image"):
        predict_bulk(INT8, [bad], out=out, engine=engine, batch_size=8)
    assert not out.exists() and not list(tmp_path.glob(".edgecnn-tmp-*"))  # no partial file
    summary = predict_bulk(INT8, [bad], out=out, engine=engine, batch_size=8, skip_unreadable=True)
    rows = _table(out).to_pydict()
    assert summary.unreadable == 1 and len(rows["index"]) == 20
    assert rows["label"][7] is None and "not a readable image" in rows["error"][7]
    assert rows["top_classes"][7] == [] and rows["label"][6] is not None
    with pytest.raises(EdgeCNNError, match="already exists"):
        predict_bulk(INT8, [bad], out=out, engine=engine, skip_unreadable=True)


def _ray_processes() -> set[int]:
    """PIDs of Ray's daemons and workers on this machine."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[0]) for line in ps.splitlines()
            if any(name in line for name in ("ray::", "raylet", "gcs_server", "ray/dashboard"))}


def test_an_error_on_a_ray_it_started_ends_the_run_and_every_process_it_started(png_folder, tmp_path):
    """An unreadable image among 601: one line, exit 1 within seconds, no Ray process left
    (a Ray Data executor left running after ray.shutdown() used to start a second Ray and hang)."""
    import time

    bad = _with_a_bad_image(png_folder[0], tmp_path / "bad", 600, "00300_empty.png", b"")
    before = _ray_processes()
    start = time.monotonic()
    cli = [sys.executable, "-c", "from edgecnn.cli.main import main; main()"]
    done = subprocess.run([*cli, "predict", str(INT8), str(bad), "--engine", "ray", "--out",
                           str(tmp_path / "r.parquet"), "--batch-size", "64"],
                          capture_output=True, text=True, timeout=180,
                          env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1 and "00300_empty.png" in errors[0], done.stderr
    assert time.monotonic() - start < 90
    deadline = time.monotonic() + 20  # Ray's daemons exit shortly after the driver
    while (left := _ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left and not (tmp_path / "r.parquet").exists()


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (1, 28, 28), (1, 28, 28, 1), (3, 28, 28)])
def test_an_npz_gives_one_row_per_image_as_the_predictor_counts_them(tmp_path, fashion, shape):
    """One 28x28 image is one row, not 28 (the row count and the Predictor read one rule)."""
    import json

    n = int(np.prod(shape)) // (28 * 28)
    images = fashion.x_test[:n, :, :, 0].reshape(shape)
    np.savez(tmp_path / "x.npz", x=images)
    predict_bulk(INT8, [tmp_path / "x.npz"], out=tmp_path / "rows.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    expected = Predictor(INT8).predict(images).names
    assert [r["label"] for r in rows] == list(expected) and len(rows) == n
    assert all(r["error"] is None for r in rows)


def test_bulk_refuses_bad_inputs_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "table.parquet").write_bytes(b"PAR1 not really")
    for inputs, message in (([tmp_path / "empty"], "holds no image files"),
                            ([str(tmp_path / "*.jpg")], "No files match"),
                            ([tmp_path / "table.parquet"], "not a readable Parquet file")):
        with pytest.raises(EdgeCNNError, match=message):
            predict_bulk(INT8, inputs, out=tmp_path / "r.parquet")
    with pytest.raises(EdgeCNNError, match=r"\.parquet or \.jsonl"):
        predict_bulk(INT8, [tmp_path], out=tmp_path / "r.csv")


def test_cli_writes_parquet_and_engine_ray_without_ray_names_the_extra(png_folder, tmp_path):
    folder, _, _ = png_folder
    cli = [sys.executable, "-c", "from edgecnn.cli.main import main; main()"]
    done = subprocess.run([*cli, "predict", str(INT8), str(folder / "part0"), "--out",
                           str(tmp_path / "r.parquet")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1,000 images" in done.stderr and _table(tmp_path / "r.parquet").num_rows == 1000
    no_ray = "import sys; sys.modules['ray'] = None; from edgecnn.cli.main import main; main()"
    done = subprocess.run([sys.executable, "-c", no_ray, "predict", str(INT8), str(folder / "part0"),
                           "--engine", "ray"], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "pip install 'edgecnn[scale]'" in lines[0]


@pytest.mark.slow
def test_validation_matrix_as_ray_tasks_agrees_with_the_serial_run(tmp_path, ray_local):
    import shutil

    from edgecnn.runners import ray_cluster
    from edgecnn.validate.run import validate

    need_isa(OTHER_X86)
    assert OTHER_X86 in ray_cluster.labelled_isas()  # its cells are placed on that node
    reports = {}
    for engine in ("local", "ray"):
        folder = tmp_path / engine
        shutil.copytree(ROOT / "exported" / "shapes-toy", folder)
        reports[engine] = validate(folder, isa=OTHER_X86, engine=engine, emulated_images=300)
    serial, parallel = reports["local"], reports["ray"]
    assert serial.isa_rows == parallel.isa_rows and OTHER_X86 in serial.isa_rows
    for a, b in zip(serial.variants, parallel.variants):
        assert a.file == b.file

        def measured(cell):  # everything but when and where it was measured
            return replace(cell, measured_at=None, where=None)

        native = serial.machine.native_row
        assert measured(a.by_isa[native]) == measured(b.by_isa[native])
        # Ray measures the class on its own images; here it was probed against the native row
        # and either took its outputs (the same computation) or was measured just as on Ray
        here, there = a.by_isa[OTHER_X86], b.by_isa[OTHER_X86]
        assert there.same_as is None and there.decided == "measured on 300 images"
        if here.same_as is None:
            assert measured(here) == measured(there)
        else:
            assert here.same_as == native and here.accuracy == a.by_isa[native].accuracy
            assert here.passed == there.passed
        # this node is not of that class, whatever its label says: its task emulated the class
        cell = b.by_isa[OTHER_X86]
        assert cell.emulated and cell.images == 300 and cell.where.startswith("Ray node ")
        assert (cell.how, cell.isa) == ("emulated", OTHER_X86)


def test_a_ray_node_of_the_class_runs_its_cells_natively_on_every_image(ray_local, fashion):
    """A node labelled with the class it really is runs the cell natively, on all the images,
    and says so (validate used to call every Ray cell emulated, on 2,000 images)."""
    from edgecnn.runners.ray import run_on_ray
    from edgecnn.runtime.isa import host_isa

    images = fashion.x_test[:500]
    cells = run_on_ray([host_isa()], [INT8], images, emulated_images=100, labelled={host_isa()})
    cell = cells[host_isa()]
    assert (cell.provenance.how, cell.provenance.isa) == ("native", host_isa())
    assert cell.provenance.where.startswith("Ray node ") and len(cell.probs[0]) == 500
    assert (cell.probs[0] == Predictor(INT8).predict(images).probabilities).all()


@pytest.mark.parametrize("row_group", [1000, 12000])
def test_a_parquet_source_holds_a_batch_not_the_file(tmp_path, row_group):
    """pyarrow pre-buffers a whole file by default: the source streams the pages it needs, so
    memory follows the batch, not the file -- nor one large row group (12,000 rows here)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from edgecnn.bulk.sources import ParquetSource

    rng = np.random.default_rng(0)
    cells = [rng.integers(0, 256, 4096, dtype=np.uint8).tobytes() for _ in range(12000)]
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"image": cells}), path, row_group_size=row_group, compression="none")
    peak = 0
    for batch in ParquetSource(path).batches(64):
        peak = max(peak, pa.total_allocated_bytes())
        assert batch["kind"][0] == "bytes" and len(batch["data"][0]) == 4096
    assert peak < path.stat().st_size / 3, (peak, path.stat().st_size)
