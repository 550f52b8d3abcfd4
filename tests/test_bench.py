"""edgecnn bench: schema and sanity of the numbers (never a speed assertion), targets, errors."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgecnn.benchmark.diff import diff_results
from edgecnn.benchmark.report import markdown
from edgecnn.benchmark.run import run_benchmark
from edgecnn.cli.main import app
from edgecnn.errors import EdgeCNNError
from edgecnn.results.bench import BENCH_SCHEMA
from edgecnn.runtime.isa import host_isa
from edgecnn.timing.coldstart import cold_start
from edgecnn.timing.measure import Budget
from edgecnn.timing.targets import BUILTIN, load_targets, resolve_targets

runner = CliRunner()
TINY_BUDGET = Budget(warmup=2, runs=15, duration=0.2, min_runs=5)
STAT_KEYS = ("min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def _check_rows(rows):
    assert rows
    rows = [r if isinstance(r, dict) else vars(r) for r in rows]
    for r in rows:
        for key in (*STAT_KEYS, "mean_ms", "throughput_ips", "session_s", "first_run_ms", "rss_mb"):
            assert r[key] > 0, (key, r)
        values = [r[k] for k in STAT_KEYS]
        assert values == sorted(values), r
        assert r["min_ms"] <= r["mean_ms"] <= r["max_ms"] and r["std_ms"] >= 0
        assert 5 <= r["runs"] <= 15
        # images per second over the same timed runs as the mean, batch included
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 1e3 / r["mean_ms"])


def test_bench_tiny_model_schema_and_ordered_numbers(tiny_onnx, tmp_path):
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    shutil.copy(tiny_onnx, model_dir / "model.onnx")
    out = tmp_path / "results"
    result = runner.invoke(app, ["bench", str(model_dir), "--target", "cpu-1t", "--batch", "1,4",
                                 "--runs", "15", "--duration", "0.2", "--warmup", "2",
                                 "--no-cold", "--no-engines", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "tiny.json").read_text())
    assert data["schema"] == BENCH_SCHEMA
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["onnxruntime"]
    assert data["machine"]["isa"] == host_isa()
    assert {(r["engine"], r["batch"]) for r in data["results"]} == {
        ("onnxruntime", 1), ("onnxruntime", 4), ("predictor", 1), ("predictor", 4)}
    _check_rows(data["results"])
    assert any("Keras baseline skipped" in n for n in data["notes"])
    assert (out / "tiny.md").read_text().startswith("# Benchmark: tiny")
    assert (out / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(c["check"].startswith("predictor overhead") for c in data["checks"])

    # B/A ratios: a copy whose onnxruntime rows take 3x as long, one row left out
    slower = dict(data, results=[dict(r, p50_ms=3 * r["p50_ms"], throughput_ips=r["throughput_ips"] / 3)
                                 for r in data["results"] if (r["engine"], r["batch"]) != ("predictor", 4)])
    (out / "slower.json").write_text(json.dumps(slower))
    ratios = diff_results(out / "tiny.json", out / "slower.json")
    assert {(r.engine, r.batch) for r in ratios} == {("onnxruntime", 1), ("onnxruntime", 4), ("predictor", 1)}
    assert all(r.p50_ratio == pytest.approx(3) and r.throughput_ratio == pytest.approx(1 / 3) for r in ratios)
    compared = runner.invoke(app, ["bench-compare", str(out / "tiny.json"), str(out / "slower.json")])
    assert compared.exit_code == 0 and compared.output.count("3.00") >= 3, compared.output


@pytest.mark.slow
def test_bench_with_keras_baseline(fashion_export):
    result = run_benchmark(fashion_export, targets=[BUILTIN["cpu-1t"], BUILTIN["cpu"]], batches=[1, 2],
                           budget=TINY_BUDGET, other_engines=False, cold=False)
    _check_rows(result.results)
    engines = {r.engine for r in result.results}
    assert {"keras-eager", "keras-predict", "keras-predict_on_batch", "keras-tf.function"} <= engines
    for batch in (1, 2):
        rows = result.rows(batch=batch)
        keras = [r for r in rows if r.engine.startswith("keras-")]
        # against the fastest Keras path of the same batch: it alone is 1, every other Keras
        # path below 1, and a row faster than it above 1 (against the slowest path, or another
        # batch, some of these would break)
        fastest = result.keras_fastest[str(batch)]
        assert [r.engine for r in keras if r.speedup_vs_keras == pytest.approx(1.0)] == [fastest]
        assert all(r.speedup_vs_keras <= 1.0 for r in keras)
        floor = min(r.p50_ms for r in keras)
        for r in rows:
            assert (r.speedup_vs_keras > 1) == (r.p50_ms < floor) or r.p50_ms == floor
        # a speed-up is a ratio of latencies: halving a row's p50 doubles it
        assert rows[0].speedup_vs_keras * rows[0].p50_ms == pytest.approx(floor)
    # ONNX against Keras at equal threads only (Keras runs on one thread count per process)
    keras_threads = result.settings.keras.threads
    compared = {c.check.split("(")[1].split(")")[0] for c in result.checks
                if c.check.startswith("ONNX fp32 (")}
    assert compared == {t.name for t in result.targets if t.threads == keras_threads}
    assert compared  # the "cpu" target uses every core, as Keras does here


def test_cuda_without_cuda_exits_with_one_line(tiny_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["bench", str(tiny_onnx), "--provider", "cuda", "--no-cold"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "CUDAExecutionProvider" in lines[0] and "edgecnn[gpu]" in lines[0]


def test_user_targets_from_toml(tmp_path):
    path = tmp_path / "targets.toml"
    path.write_text('[targets.pi4]\nprovider = "cpu"\nintra_op_threads = 4\n'
                    'graph_optimization = "extended"\n')
    assert load_targets(path)["pi4"].intra_op_threads == 4
    [t1, t2] = resolve_targets(["pi4"], path, threads=[1, 2])
    assert (t1.name, t1.threads, t2.threads) == ("pi4@1t", 1, 2)
    with pytest.raises(EdgeCNNError, match="Unknown target 'nope'"):
        resolve_targets(["nope"], path)
    path.write_text('[targets.bad]\ngraph_optimization = "max"\n')
    with pytest.raises(EdgeCNNError, match="graph_optimization"):
        load_targets(path)


def test_bad_bench_arguments(tiny_onnx, tmp_path):
    # usage errors exit 2, like every other bad option value
    for option, value in (("--batch", "0"), ("--batch", "abc"), ("--batch", "1.5"), ("--threads", "0"),
                          ("--provider", "nonsense")):
        result = runner.invoke(app, ["bench", str(tiny_onnx), option, value])
        assert result.exit_code == 2 and "Invalid value" in result.output, (option, value)
    missing = runner.invoke(app, ["bench", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "Nothing to benchmark" in missing.output
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    out = runner.invoke(app, ["bench-compare", str(bad), str(bad)])
    assert out.exit_code == 1 and "not an edgecnn bench result" in out.output


def test_cold_start_runtime_does_not_load_tensorflow(tiny_onnx):
    measured = cold_start(tiny_onnx, repeats=1, tensorflow=False)
    result = measured.runtime
    assert result.tensorflow_loaded is False and result.error is None
    assert 0 < result.import_s < result.total_s
    assert result.total_s == pytest.approx(result.import_s + result.session_s + result.first_result_s)
    # the floor is timed in other processes: only its presence is checked, never an order
    # between timings of different processes (noise decides that on a busy machine)
    floor = measured.libraries_import
    assert floor.import_s > 0 and floor.repeats == 1 and floor.error is None
    assert measured.tensorflow_import is None


def test_profile_gives_per_operator_times_in_separate_sessions(tiny_onnx):
    result = run_benchmark(tiny_onnx, targets=[BUILTIN["cpu-1t"]], batches=[1, 4],
                           budget=TINY_BUDGET, keras_baseline=False, other_engines=False,
                           cold=False, profile=True)
    profiles = result.profiles["cpu-1t"]["fp32"]
    assert set(profiles) == {"1", "4"}
    for rows in profiles.values():
        # the optimised graph: MatMul + Add fused into one Gemm
        assert sorted(r.op for r in rows) == ["Gemm", "Reshape", "Softmax"]
        assert sum(r.share for r in rows) == pytest.approx(1.0)
        assert [r.us for r in rows] == sorted((r.us for r in rows), reverse=True)
    assert {r.engine for r in result.results} == {"onnxruntime", "predictor"}
    assert "Per-operator profiles" in markdown(result)


def test_a_model_name_from_its_metadata_never_leaves_the_output_folder(tiny_onnx, tmp_path):
    """The name is the model file's, so untrusted: bench --out writes inside --out whatever it
    says, and prints it without its escape sequences."""
    import onnx

    from edgecnn.export.onnx_metadata import read_metadata, set_metadata

    model_dir = tmp_path / "m" / "tiny"
    model_dir.mkdir(parents=True)
    proto = onnx.load(str(tiny_onnx))
    set_metadata(proto, read_metadata(tiny_onnx).replace(name="../../OUTSIDE/pwned\x1b[2J"))
    onnx.save(proto, str(model_dir / "model.onnx"))
    out = tmp_path / "m" / "results"
    result = runner.invoke(app, ["bench", str(model_dir), "--target", "cpu-1t", "--batch", "1", "--runs", "5",
                                 "--duration", "0.1", "--warmup", "1", "--rounds", "1", "--no-cold",
                                 "--no-engines", "--no-plot", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "OUTSIDE").exists() and not list(tmp_path.glob("**/pwned*"))
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".md"]
    assert "\x1b" not in result.output
