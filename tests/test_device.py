"""SSH devices: a real OpenSSH server on 127.0.0.1 stands in for a Raspberry Pi.

The "device" is this machine reached through sshd, with its own runtime-only venv (numpy +
onnxruntime, made by ``edgecnn device setup`` from wheels pushed from here, never TensorFlow)
and its own cache folder. Its CPU class is therefore this host's, so the device's cells must
equal the native row to the last image, which is what these tests hold it to.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import EdgeCNNError
from edgecnn.runners import worker
from edgecnn.runners.devices import (
    Device,
    load_devices,
    resolve_device,
    resolve_devices,
)
from edgecnn.runtime.isa import host_isa
from tests.sshd import Sshd, free_port

ROOT = Path(__file__).resolve().parents[1]
FASHION = ROOT / "exported" / "fashion-cnn"
EDGECNN = [sys.executable, "-c", "from edgecnn.cli.main import main; main()"]
IMAGES = 1000  # test images a validation here uses: what a device says is checked on each


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


def _toml(path: Path, sshd: Sshd, name: str, workdir: Path, *, python: str | None = None,
          config: Path | None = None) -> Path:
    python = python or str(Path(sys.base_prefix) / "bin" / "python3")  # not this venv: no TF there
    path.write_text(f'[devices.{name}]\nssh = "loop"\nssh_config = "{config or sshd.config}"\n'
                    f'python = "{python}"\nworkdir = "{workdir}"\n')
    return path


@pytest.fixture(scope="module")
def loop(sshd, tmp_path_factory):
    """The loopback device, set up once: a runtime-only venv from wheels pushed from here."""
    from edgecnn.runners.setup import setup_device

    folder = tmp_path_factory.mktemp("device")
    targets = _toml(folder / "devices.toml", sshd, "loop", folder / "work")
    device = load_devices(targets)["loop"]
    found = setup_device(device, push_wheels=True)
    assert found["onnxruntime"], found
    return device, targets, folder / "work"


def _sharing_the_runtime(loop, workdir: Path) -> Path:
    """A device workdir of its own (its own cache) whose venv is the loopback device's, set up
    once: ``device setup`` takes half a minute, and is tested by the fixture."""
    workdir.mkdir(parents=True)
    (workdir / "venv").symlink_to(loop[2] / "venv")
    return workdir


@pytest.fixture()
def export(tmp_path):
    folder = tmp_path / "fashion-cnn"
    shutil.copytree(FASHION, folder)
    return folder


def _copies(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "copying" in r.getMessage()]


def _half_written(workdir: Path) -> list[str]:
    """Files of the device's cache that are not what their name says (a blob is named by its
    sha256), or unreadable results; ``.part`` files are never used."""
    import hashlib

    import numpy as np

    bad = []
    for blob in (workdir / "blobs").glob("*"):
        if not blob.name.startswith(".part") and hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name.split(".")[0]:
            bad.append(blob.name)
    for result in (workdir / "out").glob("*.npz"):
        try:
            np.load(result)["p0"]
        except Exception:  # noqa: BLE001 - any failure to read is a half-written result
            bad.append(result.name)
    return bad


def test_device_info_is_read_there_and_its_venv_has_no_tensorflow(loop):
    from edgecnn.runners.ssh import SshDevice

    device, _, workdir = loop
    found = SshDevice(device).info()
    assert found["isa"] == host_isa() and found["cores"] == os.cpu_count()
    assert Path(found["executable"]).parent == workdir / "venv" / "bin"
    assert found["onnxruntime"] == __import__("onnxruntime").__version__
    assert "CPUExecutionProvider" in found["providers"]
    python = workdir / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True, text=True)
    assert done.returncode != 0 and "No module named 'tensorflow'" in done.stderr
    for module in ("numpy", "onnxruntime"):
        assert subprocess.run([str(python), "-c", f"import {module}"]).returncode == 0


def test_device_info_cli_prints_the_class_and_runtime(loop):
    _, targets, _ = loop
    done = subprocess.run([*EDGECNN, "device", "info", "loop", "--targets-file", str(targets)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"CPU class:   {host_isa()}" in done.stdout and "onnxruntime: 1." in done.stdout


def test_validate_on_the_device_matches_the_native_row_to_the_last_image(loop, export, caplog):
    from edgecnn.results.page import write_report_page
    from edgecnn.validate.run import validate

    device, _, _ = loop
    report = validate(export, devices=[device], limit=IMAGES)
    native = report.machine.native_row
    assert report.isa_rows[:1] == [native] and "loop" in report.isa_rows
    assert report.devices["loop"].isa == host_isa() and report.devices["loop"].machine.cores == os.cpu_count()
    for variant in report.variants:
        here, there = variant.by_isa[native], variant.by_isa["loop"]
        assert (there.how, there.isa, there.emulated) == ("device", host_isa(), False)
        assert there.images == here.images == report.test_images  # every test image, natively
        assert there.accuracy == here.accuracy and there.agreement == here.agreement, variant.file
        assert there.max_abs_diff == pytest.approx(here.max_abs_diff, abs=1e-6)
    page = (export / "report.html").read_text()
    assert 'data-isa="loop"' in page and 'id="rec-loop"' in page and "device, " in page
    # A second run copies nothing: every file is in the device's cache by its sha256.
    with caplog.at_level(logging.INFO, logger="edgecnn"):
        again = validate(export, devices=[device], limit=IMAGES)
    assert _copies(caplog) == []
    assert again.variants[1].by_isa["loop"].accuracy == report.variants[1].by_isa["loop"].accuracy
    write_report_page(export)


@pytest.mark.parametrize("damage", ["fewer rows", "another class count", "NaN"])
def test_a_device_answer_that_is_not_the_table_asked_for_is_refused(loop, export, damage):
    """What a device returns is data to check: its result cut to 10 of the test images (or with
    a column less, or NaN) is one line naming the device, never a column judged on what came
    back (before, 10 rows of 10,000 passed every variant)."""
    import numpy as np

    from edgecnn.validate.run import validate

    device, _, workdir = loop
    validate(export, devices=[device], limit=IMAGES)  # the device's results, cached in its out/ folder
    before = (export / "report.json").read_bytes()
    for result in (workdir / "out").glob("*.npz"):
        with np.load(result) as arrays:
            data = dict(arrays)
        for key in [k for k in data if k.startswith("p")]:
            data[key] = {"fewer rows": data[key][:10], "another class count": data[key][:, :-1],
                         "NaN": np.full_like(data[key], np.nan)}[damage]
        np.savez(result.with_suffix(".tmp.npz"), **data)
        result.with_suffix(".tmp.npz").replace(result)
    try:
        with pytest.raises(EdgeCNNError, match=r"loop returned .* not used"):
            validate(export, devices=[device], limit=IMAGES)
    finally:  # the next test's device computes afresh
        for result in (workdir / "out").glob("*.npz"):
            result.unlink()
    assert (export / "report.json").read_bytes() == before


def test_the_device_proves_which_bytes_it_ran(loop, export, caplog):
    """The device's cache holds the fp32 file's bytes under the int8 file's name: the worker's
    hash of what it loaded gives it away, the entry is removed and sent again, and the device's
    int8 column is int8's (before: fp32's answers, max |Δp| 6e-7, reported as int8 passing)."""
    from edgecnn.store.files import sha256_file
    from edgecnn.validate.run import validate

    device, _, workdir = loop
    int8_blob = workdir / "blobs" / (sha256_file(export / "model.int8.onnx") + ".onnx")
    validate(export, devices=[device], limit=IMAGES)
    int8_blob.write_bytes((export / "model.onnx").read_bytes())
    for result in (workdir / "out").glob("*.npz"):
        result.unlink()  # computed afresh, from the wrong bytes
    with caplog.at_level(logging.WARNING, logger="edgecnn"):
        report = validate(export, devices=[device], limit=IMAGES)
    assert any("held other bytes than their name says" in r.getMessage() for r in caplog.records)
    int8 = report.variant("int8")
    here, there = int8.by_isa[report.machine.native_row], int8.by_isa["loop"]
    assert there.max_abs_diff == here.max_abs_diff and there.accuracy == here.accuracy
    assert sha256_file(int8_blob) == int8_blob.name.split(".")[0]


def test_a_garbled_cached_result_is_computed_again_not_refetched(loop, export, caplog):
    """A result in the device's cache that is not an npz (a disk error, a cut write by hand): the
    entry is removed and the models run again, once; before, the error said re-run, and the
    re-run failed the same way."""
    import numpy as np

    from edgecnn.validate.run import validate

    device, _, workdir = loop
    validate(export, devices=[device], limit=IMAGES)
    for result in (workdir / "out").glob("*.npz"):
        result.write_bytes(b"garbled" * 100)
    with caplog.at_level(logging.WARNING, logger="edgecnn"):
        report = validate(export, devices=[device], limit=IMAGES)
    assert any("cached result could not be read" in r.getMessage() for r in caplog.records)
    assert report.passed and "loop" in report.variant("fp32").by_isa
    for result in (workdir / "out").glob("*.npz"):
        np.load(result).close()


def test_bench_on_the_device_records_the_device_and_keeps_keras_on_the_host(loop, export, caplog):
    from edgecnn.benchmark.run import run_benchmark
    from edgecnn.runners.ssh import SshDevice
    from edgecnn.store.files import sha256_file
    from edgecnn.timing.measure import Budget
    from edgecnn.timing.targets import resolve_targets

    device, _, _ = loop
    targets = resolve_targets(["cpu-1t"])
    budget = Budget(warmup=2, runs=10, duration=0.2, min_runs=3, rounds=1)
    result = run_benchmark(export, targets=targets, batches=(1, 4), budget=budget, other_engines=False,
                           device=SshDevice(device))
    assert result.device.name == "loop" and result.machine.isa == host_isa()
    assert result.host_machine is not None and result.machine.versions["onnxruntime"]
    onnx = [r for r in result.results if r.engine in ("onnxruntime", "predictor")]
    keras = [r for r in result.results if r.engine.startswith("keras-")]
    assert {r.variant for r in onnx} == {"fp32", "int8", "dynint8", "fp16"}
    assert {r.batch for r in onnx} == {1, 4} and all(r.threads == 1 for r in onnx)
    assert all(r.ran_on is None for r in onnx) and keras and all(r.ran_on == "host" for r in keras)
    assert all(r.speedup_vs_keras is None for r in onnx)  # two machines' latencies are no ratio
    # the Predictor's overhead, timed there (on the fp32 bytes, cached by their sha256) at batch 1
    # against bare sessions
    overhead = result.predictor_overhead["cpu-1t"]
    fp32_blob = sha256_file(export / "model.onnx") + ".onnx"
    assert (overhead.file, overhead.batch) == (fp32_blob, 1) and overhead.runs >= budget.min_runs
    p50 = overhead.p50_ms
    assert set(p50) == {"session", "session_prepared", "predictor"} and min(p50.values()) > 0
    assert overhead.ratio == pytest.approx(p50["predictor"] / p50["session"])
    assert overhead.ratio_strict == pytest.approx(p50["predictor"] / p50["session_prepared"])
    with caplog.at_level(logging.INFO, logger="edgecnn"):
        again = run_benchmark(export, targets=targets, batches=(1, 4), budget=budget, other_engines=False,
                              keras_baseline=False, device=SshDevice(device))
    assert _copies(caplog) == []  # the files and image batches are cached there
    assert len(again.rows(engine="onnxruntime")) == 8  # timed again: a timing is never cached


def test_bench_cli_writes_the_device_result_into_the_export_and_its_page(loop, export, tmp_path):
    _, targets, _ = loop
    done = subprocess.run([*EDGECNN, "bench", str(export), "--device", "loop", "--targets-file", str(targets),
                           "--target", "cpu-1t", "--batch", "1", "--runs", "10", "--duration", "0.2",
                           "--rounds", "1", "--warmup", "2", "--no-engines", "--baseline", "none",
                           "--no-plot", "--out", str(tmp_path / "results")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (export / "bench@loop.json").is_file() and (tmp_path / "results" / "fashion-cnn@loop.json").is_file()
    page = (export / "report.html").read_text()
    assert 'id="latency-loop"' in page and "Latency on device loop" in page


def test_a_connection_dropped_mid_run_loses_no_work_and_the_rerun_takes_the_result(loop, sshd, tmp_path, export):
    """sshd and its sessions are killed while the device runs the models: one line, exit 1,
    the report untouched, and the device's worker goes on. The re-run, started while that
    worker is still busy, waits for it instead of starting another (one worker in all) and
    takes its result: before, the worker died at its next progress line and the re-run
    computed everything again."""
    workdir = _sharing_the_runtime(loop, tmp_path / "work")
    targets = _toml(tmp_path / "devices.toml", sshd, "drop", workdir)
    before = (export / "report.json").read_bytes()
    hold = workdir / worker.HOLD_FILE
    hold.touch()  # the worker waits there before any model runs: the cut lands mid-run, always
    validate = [*EDGECNN, "validate", str(export), "--device", "drop", "--targets-file", str(targets),
                "--limit", str(IMAGES)]
    proc = subprocess.Popen(validate, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    _wait_for(workdir / worker.HELD_FILE, proc)
    sshd.stop()
    stderr = proc.stderr.read()
    try:
        assert proc.wait(timeout=60) == 1, stderr
    finally:
        sshd.start()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "connection to drop" in errors[0].lower(), stderr
    assert "Traceback" not in stderr
    assert (export / "report.json").read_bytes() == before
    assert _half_written(workdir) == []
    rerun = subprocess.Popen(validate, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    said = []
    for line in rerun.stderr:  # the re-run reaches the device while the first worker still holds
        said.append(line)
        if "drop: on the device" in line:
            break
    time.sleep(2)
    hold.unlink()
    stderr = "".join(said) + rerun.stderr.read()
    assert rerun.wait(timeout=300) == 0, stderr[-2000:]
    assert "copying" not in stderr  # resumed from what the device already had
    assert len((workdir / worker.HELD_FILE).read_text().split()) == 1  # one worker ran the job
    assert "drop" in (export / "report.json").read_text()
    assert sorted(p.suffix for p in (workdir / "out").iterdir()) == [".npz"]  # no lock, log or status left


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until the held worker wrote ``path`` (the validation failing first is a failure)."""
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the device's worker never started"
        time.sleep(0.05)

def test_a_closed_port_is_one_line_within_the_connect_timeout():
    port = free_port()  # bound and released: nothing listens there
    started = time.monotonic()
    done = subprocess.run([*EDGECNN, "device", "info", f"nobody@127.0.0.1:{port}"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert time.monotonic() - started < 20
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "connection refused" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_host_key_is_refused(sshd, tmp_path):
    from edgecnn.runners.ssh import SshDevice

    config = sshd.client_config("empty_known_hosts")
    targets = _toml(tmp_path / "devices.toml", sshd, "stranger", tmp_path / "work", config=config)
    with pytest.raises(EdgeCNNError, match="host key is not in known_hosts.*never turns host-key checking off"):
        SshDevice(load_devices(targets)["stranger"]).info()
    assert not (tmp_path / "work").exists()  # nothing ran there


def test_a_device_without_python_or_onnxruntime_names_what_to_install(sshd, tmp_path, export):
    from edgecnn.runners.ssh import SshDevice
    from edgecnn.validate.run import validate

    targets = _toml(tmp_path / "nopy.toml", sshd, "nopy", tmp_path / "w1", python="/nonexistent/python3")
    with pytest.raises(EdgeCNNError, match=r"has no Python \(/nonexistent/python3\): install Python"):
        SshDevice(load_devices(targets)["nopy"]).info()
    targets = _toml(tmp_path / "bare.toml", sshd, "bare", tmp_path / "w2")  # python, no venv made
    before = (export / "report.json").read_bytes()
    with pytest.raises(EdgeCNNError, match="has no onnxruntime.*run edgecnn device setup bare"):
        validate(export, devices=[load_devices(targets)["bare"]], limit=IMAGES)
    assert (export / "report.json").read_bytes() == before


def test_a_full_disk_on_the_device_is_one_line(loop, tmp_path, export):
    """The device's cache on a 1 MiB tmpfs: the 7.5 MiB of test images cannot be copied."""
    device, _, workdir = loop
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (small / "venv").symlink_to(workdir / "venv")  # the runtime is there; the space is not
        from dataclasses import replace

        from edgecnn.validate.run import validate

        with pytest.raises(EdgeCNNError, match="no space left for edgecnn's cache"):
            validate(export, devices=[replace(device, workdir=str(small))], limit=IMAGES)
        assert _half_written(small) == []
        assert not list((small / "blobs").glob(".part-*"))  # the failed upload's space is free again
    finally:
        subprocess.run(["umount", str(small)], check=False)


# -- the devices table ------------------------------------------------------------------------

def test_devices_table_and_ad_hoc_devices(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[devices.pi5]\nssh = "pi@raspberrypi.local"\nport = 2222\nworkdir = "edge"\n'
                    '[targets.pi]\nprovider = "cpu"\nintra_op_threads = 4\n')
    pi5 = resolve_device("pi5", path)
    assert (pi5.ssh, pi5.port, pi5.workdir, pi5.address) == ("pi@raspberrypi.local", 2222, "edge",
                                                             "pi@raspberrypi.local:2222")
    adhoc = resolve_device("ubuntu@10.0.0.7:2200")
    assert (adhoc.name, adhoc.ssh, adhoc.port) == ("10.0.0.7", "ubuntu@10.0.0.7", 2200)
    assert resolve_device("jetson").ssh == "jetson"  # a Host alias of ~/.ssh/config
    assert [d.name for d in resolve_devices(["pi5", "pi5", "jetson"], path)] == ["pi5", "jetson"]
    from edgecnn.timing.targets import load_targets

    (tmp_path / "only.toml").write_text('[devices.a]\nssh = "a"\n')
    assert load_targets(tmp_path / "only.toml") == {}  # a file of devices only is a targets file


@pytest.mark.parametrize("table, message", [
    ('[devices.x]\nport = 22\n', "has no ssh"),
    ('[devices.x]\nssh = "h"\nprot = 22\n', "unknown key.*prot"),
    ('[devices.x]\nssh = "h"\nport = "22"\n', "port must be an integer"),
    ('[devices.x]\nssh = "h"\nport = 70000\n', "not a TCP port"),
    ('[devices.x]\nssh = "-oProxyCommand=evil"\n', "not a destination"),
    ('[devices.arm64-dot]\nssh = "h"\n', "not a CPU class"),
])
def test_bad_devices_are_one_line(tmp_path, table, message):
    path = tmp_path / "t.toml"
    path.write_text(table)
    with pytest.raises(EdgeCNNError, match=message):
        load_devices(path)


def test_an_unknown_device_name_says_what_is_known(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[devices.pi5]\nssh = "pi@raspberrypi.local"\n')
    with pytest.raises(EdgeCNNError, match=r"Unknown device 'pi 5'.*pi5"):
        resolve_device("pi 5", path)
    assert isinstance(Device("a", "b"), Device)


# What a targets file and a device's name say: checked before any connection.

@pytest.mark.parametrize("key", ["ssh", "python", "workdir", "ssh_config"])
def test_a_nul_byte_in_a_device_string_is_one_line(tmp_path, key):
    values = {"ssh": "pi@host", "python": "python3", "workdir": "w", "ssh_config": "cfg"}
    values[key] = values[key][:2] + "\\u0000" + values[key][2:]
    path = tmp_path / "devices.toml"
    path.write_text("[devices.pi]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items()))
    with pytest.raises(EdgeCNNError, match=rf"devices\.pi\.{key} holds a NUL character"):
        load_devices(path)


def test_the_ssh_config_of_a_device_may_start_at_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "devices.toml"
    path.write_text('[devices.pi]\nssh = "pi@host"\nssh_config = "~/.ssh/edge"\n')
    assert load_devices(path)["pi"].ssh_config == str(tmp_path / "home" / ".ssh" / "edge")


def test_an_unknown_device_among_many_is_a_short_line(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text("".join(f'[devices.d{i}]\nssh = "h{i}"\n' for i in range(3000)))
    with pytest.raises(EdgeCNNError) as refused:
        resolve_device("pi 6", path)  # no device of the file, nor a host
    message = str(refused.value)
    assert len(message) < 400 and "d0, d1" in message and "and 2,992 more" in message


@pytest.mark.parametrize("command", [["bench", "--help"], ["validate", "--help"], ["device", "setup", "--help"]])
def test_the_help_names_the_devices_table(command):
    """Rich read [devices.NAME] as markup and printed 'a  of --targets-file'."""
    from typer.testing import CliRunner

    from edgecnn.cli.main import app

    shown = CliRunner().invoke(app, command, env={"COLUMNS": "200"}).output
    assert "[devices.NAME]" in shown and "a  of" not in shown


def _noisy_python(path: Path, first_line: str, then: str) -> Path:
    """A device interpreter that prints ``first_line`` on stdout, then runs ``then`` (a shell
    command taking the arguments), as a noisy login or a sitecustomize would."""
    path.write_text(f'#!/bin/sh\necho "{first_line}"\n{then}\n')
    path.chmod(0o755)
    return path


def test_a_device_that_prints_before_its_answer_is_still_read(loop, sshd, tmp_path):
    """A line on stdout before edgecnn's JSON (a banner, a stray print) was a JSONDecodeError."""
    from edgecnn.runners.ssh import SshDevice

    _, _, work = loop
    python = _noisy_python(tmp_path / "python", "Welcome to the device!", f'exec {work}/venv/bin/python "$@"')
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "noisy", tmp_path / "w", python=str(python)))["noisy"]
    found = SshDevice(device).info()
    assert found["onnxruntime"] and found["isa"] == host_isa()


@pytest.mark.parametrize("answer", ["[1, 2]", "not json at all", '"a string"'])
def test_a_device_answer_that_is_not_an_object_is_one_line(sshd, tmp_path, answer):
    from edgecnn.runners.ssh import SshDevice

    python = _noisy_python(tmp_path / "python", answer, "exit 0")
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "odd", tmp_path / "w", python=str(python)))["odd"]
    with pytest.raises(EdgeCNNError, match="not edgecnn's JSON object"):
        SshDevice(device).info()


def test_an_ad_hoc_ipv6_device_gets_a_usable_name():
    """user@[::1]:2222 was refused as the device name '--1'."""
    device = resolve_device("root@[::1]:2222")
    assert (device.name, device.ssh, device.port) == ("host--1", "root@::1", 2222)
    assert resolve_device("[fe80::2]").name == "fe80--2"


def test_a_device_platform_answer_never_names_a_path_here(sshd, tmp_path, monkeypatch):
    """device setup built its wheel cache folder from the machine name the device reports: one
    answering ../../../../OUTSIDE made a folder outside the cache."""
    from edgecnn.runners.setup import setup_device

    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "a" / "b" / "c"))  # ../ x4 from its wheels/: tmp_path
    answer = '{\\"machine\\": \\"../../../../OUTSIDE\\", \\"python\\": \\"3.11\\", \\"libc\\": \\"glibc 2.36\\"}'
    python = _noisy_python(tmp_path / "python", answer, "exit 0")
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "liar", tmp_path / "w", python=str(python)))["liar"]
    with pytest.raises(EdgeCNNError, match="answered a platform edgecnn has no runtime wheels for"):
        setup_device(device, push_wheels=True)
    assert not list(tmp_path.glob("**/OUTSIDE*"))


def test_a_device_that_never_answers_misses_its_deadline_in_one_line(sshd, tmp_path):
    """A device whose Python never answers: device info hung past 60 s; now its deadline
    (timeout_s of its table here) ends the call with one line naming it."""
    import time

    from edgecnn.runners.ssh import SshDevice

    python = _noisy_python(tmp_path / "python", "", "exec sleep 600")
    targets = _toml(tmp_path / "devices.toml", sshd, "mute", tmp_path / "w", python=str(python))
    targets.write_text(targets.read_text() + "timeout_s = 3\n")
    started = time.monotonic()
    with pytest.raises(EdgeCNNError, match=r"mute .* did not finish reading what mute is within 3 s"):
        SshDevice(load_devices(targets)["mute"]).info()
    assert time.monotonic() - started < 30
    time.sleep(0.5)  # and its process there was stopped, not left running
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == b"sleep\x00600\x00"]


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_model_run_that_misses_its_deadline_stops_the_detached_worker(loop, sshd, tmp_path, export):
    """A device whose run never finishes (its worker held) ends at its deadline in one line;
    the worker there, in a session of its own, is stopped too and leaves no lock, so the next
    run starts afresh."""
    workdir = _sharing_the_runtime(loop, tmp_path / "work")
    targets = _toml(tmp_path / "devices.toml", sshd, "slow", workdir)
    targets.write_text(targets.read_text() + "timeout_s = 8\n")
    (workdir / worker.HOLD_FILE).touch()
    late = subprocess.run([*EDGECNN, "validate", str(export), "--device", "slow", "--targets-file", str(targets),
                           "--limit", str(IMAGES)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    errors = [line for line in late.stderr.splitlines() if line.startswith("error:")]
    assert late.returncode == 1 and len(errors) == 1, late.stderr[-2000:]
    assert "did not finish running the models on slow within 8 s" in errors[0]
    held = int((workdir / worker.HELD_FILE).read_text().split()[0])
    time.sleep(0.5)
    assert not Path(f"/proc/{held}").exists() or b"zombie" in Path(f"/proc/{held}/status").read_bytes().lower()
    assert not list((workdir / "out").glob("*.run"))


def test_a_device_that_answers_with_150_mb_of_junk_is_cut_and_one_line(sshd, tmp_path):
    """device info answered by 150 MB of junk was read whole (350 MB peak RSS here): the answer
    is cut at MAX_ANSWER_BYTES on the device, and the rest is one line."""
    from edgecnn.runners import ssh

    python = _noisy_python(tmp_path / "python", "", "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 157286400; exit 0")
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "junk", tmp_path / "w", python=str(python)))["junk"]
    with pytest.raises(EdgeCNNError, match="junk") as refused:
        ssh.SshDevice(device).info()
    assert len(str(refused.value)) < 400 and "\n" not in str(refused.value)
    assert "answered reading what junk is with more than 8 MiB, cut there" in str(refused.value)


def test_onnxruntime_warnings_on_the_device_are_kept_on_success(loop, sshd, tmp_path, export, caplog):
    """A device whose runtime says on stderr that it could not read the CPU (which changes the
    kernels that run): the line was dropped when the run succeeded; now it is a warning naming
    the device, through the detached worker's log too."""
    from edgecnn.validate.run import validate

    _, _, work = loop
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "Error in cpuinfo: failed to parse the list of possible processors" >&2\n'
                      f'exec {work}/venv/bin/python "$@"\n')
    python.chmod(0o755)
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "odd", tmp_path / "w", python=str(python)))["odd"]
    with caplog.at_level(logging.WARNING, logger="edgecnn"):
        validate(export, devices=[device], isa="host", limit=IMAGES)
    said = [r.getMessage() for r in caplog.records if "cpuinfo" in r.getMessage()]
    assert said and all(m.startswith("  odd: Error in cpuinfo") for m in said), said
    assert not list((tmp_path / "w" / "out").glob("*.log"))
    # and recorded, for whoever reads the report later
    warning = "Error in cpuinfo: failed to parse the list of possible processors"
    from edgecnn.results.report import read_report

    assert read_report(export).devices["odd"].warnings == [warning]
    assert warning in (export / "report.md").read_text() and warning in (export / "report.html").read_text()


def test_a_device_run_shows_its_progress_while_it_runs(loop, export, caplog):
    """The worker's line as each model finishes reached the host only with the result, and was
    never shown: a device run of minutes was silent. Its log now streams to the host as it
    grows (a detached job whose first line comes seconds before its result), and each model's
    line is shown."""
    from edgecnn.runners.ssh import SshDevice, detached_job

    device, _, _ = loop
    on_device = SshDevice(device)
    came: list[tuple[float, str]] = []
    start = time.monotonic()
    answer = on_device._call(detached_job("out/streamed", "echo first; sleep 4; echo second; echo done > out/streamed"),
                             "a slow job", on_line=lambda line: came.append((time.monotonic(), line.strip())))
    ended = time.monotonic()
    assert answer.strip() == b"done" and [line for _, line in came] == ["first", "second"]
    assert ended - came[0][0] >= 3 and came[0][0] - start < ended - start - 3
    from edgecnn.data.fashion_mnist import load_fashion_mnist

    files = sorted(export.glob("model*.onnx"))
    with caplog.at_level(logging.INFO, logger="edgecnn"):
        on_device.run(files, load_fashion_mnist().x_test[:64])
    shown = [r.getMessage() for r in caplog.records if " done (" in r.getMessage()]
    assert len(shown) == len(files), shown
    for i, (line, file) in enumerate(zip(shown, files), 1):
        assert line.startswith(f"  loop: {file.name} done ({i} of {len(files)}), "), shown


def test_a_models_work_is_its_multiply_accumulates(tmp_path):
    """A remote run's deadline follows the model: Conv (grouped too), Gemm and MatMul MACs per
    image, read from the graph, the batch dimension left out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runners import work

    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name) for name, shape in
            [("w1", (8, 3, 3, 3)), ("w2", (8, 1, 3, 3)), ("w3", (512, 10)), ("g", (10, 512))]]
    init.append(numpy_helper.from_array(np.array([-1, 512], np.int64), "shape"))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),              # 8x8x8 x 27
             helper.make_node("Conv", ["a", "w2"], ["b"], pads=[1, 1, 1, 1], group=8),     # 8x8x8 x 9
             helper.make_node("Reshape", ["b", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "w3"], ["m"]),                                 # 10 x 512
             helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)]                          # 10 x 512
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10]),
                               helper.make_tensor_value_info("m", TensorProto.FLOAT, ["n", 10])], initializer=init)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert work.graph_macs(path) == 512 * 27 + 512 * 9 + 2 * 10 * 512
    assert work.graph_macs(FASHION / "model.onnx") > 1e6  # the tutorial nets: 1-4 M
    # 70x the MACs (a 224 px MobileNet against a 28x28 net) is about 70x the work, at any rate
    small, large = (work.work_s(m, 1000, 4, 1e9) - 4 * work.SESSION_S for m in (4e6, 280e6))
    assert large == pytest.approx(70 * small)


def test_a_run_deadline_follows_the_work_at_the_rate_the_device_measured(loop, sshd, tmp_path, export, monkeypatch):
    """The deadline was 50 ms per image and file whatever the model (a 224 px MobileNet on a Pi
    Zero would be cut, a hung tutorial net waited minutes): it is now the model's MACs at a
    twentieth of the one-thread matmul rate the device measured in its info, and a held worker
    is stopped there, in one line."""
    from edgecnn.runners import ssh, work

    workdir = _sharing_the_runtime(loop, tmp_path / "work")
    device = load_devices(_toml(tmp_path / "devices.toml", sshd, "measured", workdir))["measured"]
    on_device = ssh.SshDevice(device)
    on_device.check_ready()
    assert 1e7 < on_device.rate < 1e12, on_device.rate  # measured there: MACs per second, one thread
    monkeypatch.setattr(ssh, "_SLACK_S", 0.0)
    monkeypatch.setattr(work, "SESSION_S", 1.0)
    monkeypatch.setattr(work, "RATE_MARGIN", on_device.rate / 2e8)  # as if it measured 2e8 MACs/s
    files = [export / "model.onnx", export / "model.int8.onnx"]
    images = np.zeros((120, 28, 28), dtype=np.uint8)
    (workdir / worker.HOLD_FILE).touch()
    expected = device.connect_timeout + work.work_s(work.graph_macs(files[0]), 120, 2, on_device.rate)
    assert 2 * 120 * 4e6 / 2e8 < expected - device.connect_timeout - 2 < 2 * 120 * 5e6 / 2e8
    started = time.monotonic()
    with pytest.raises(EdgeCNNError, match=rf"within {expected:.0f} s"):
        on_device.run(files, images)
    assert time.monotonic() - started < expected + 20
