"""The report and the bench result are read through their schema: any field missing or of the
wrong type, an unknown schema, or a latency that is not a finite positive number is one line
naming it -- for every field, not only the examples someone thought of."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli.main import app
from edgecnn.errors import EdgeCNNError
from edgecnn.results.bench import read_bench
from edgecnn.results.report import REPORT_SCHEMA, read_report, write_report
from edgecnn.results.schema import to_json

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "exported" / "shapes-toy"
BENCH = ROOT / "exported" / "fashion-cnn" / "bench.json"
runner = CliRunner()


def _leaves(value, path=()):
    """(path, value) of every scalar, list and object in parsed JSON, depth first."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):  # the first two items stand for the rest
            yield from _leaves(v, (*path, i))


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _wrong(value):
    """A value of another JSON type than ``value``'s, valid for no typed field that holds it."""
    return "text" if isinstance(value, (dict, list)) else {"not": "a scalar"}


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _report_fields():
    """Every field the committed report holds that the schema reads (it ignores unknown keys)."""
    data = json.loads((SHAPES / "report.json").read_text())
    known = {p for p, _ in _leaves(to_json(read_report(SHAPES)))}
    # a quantization record's own settings are free-form (each method records its own)
    return [p for p, _ in _leaves(data) if p and p in known and "quantization" not in p[:3]]


@pytest.mark.parametrize("path", _report_fields(), ids=lambda p: ".".join(map(str, p)))
def test_every_report_field_of_the_wrong_type_is_one_line_naming_it(path, tmp_path):
    folder = shutil.copytree(SHAPES, tmp_path / "shapes-toy")
    data = json.loads((folder / "report.json").read_text())
    old = data
    for key in path:
        old = old[key]
    _set(data, path, _wrong(old))
    (folder / "report.json").write_text(json.dumps(data))
    line = _one_line_error(runner.invoke(app, ["report", str(folder)]))
    assert str(path[-1]) in line and "report.json" in line


@pytest.mark.parametrize("content, says", [
    ("[1, 2]", "should be an object"),
    ('{"variants": []}', "has no 'model'"),
    ('{"model": "x"', "Cannot read"),
    (json.dumps({"schema": "edgecnn.report/999"}), "edgecnn.report/999"),
    (json.dumps({"schema": 999}), "999"),
])
def test_a_report_that_is_not_one_is_one_line(content, says, tmp_path):
    folder = shutil.copytree(SHAPES, tmp_path / "shapes-toy")
    (folder / "report.json").write_text(content)
    assert says in _one_line_error(runner.invoke(app, ["report", str(folder)]))
    listed = json.loads(runner.invoke(app, ["zoo", "shapes-toy", "--exported", str(tmp_path), "--json"]).output)
    assert says in listed[0]["export"]["unreadable"]  # zoo says so too, instead of "never exported"


def test_a_report_reads_back_as_written_and_the_unversioned_ones_still_read(tmp_path):
    old = read_report(SHAPES)  # committed before the schema had a version
    assert old.schema == REPORT_SCHEMA and old.passed and old.failures == []
    assert all(v.failed_on == [r for r, c in v.by_isa.items() if not c.passed] for v in old.variants)
    write_report(tmp_path, old)
    again = read_report(tmp_path)
    assert again == old and json.loads((tmp_path / "report.json").read_text())["schema"] == REPORT_SCHEMA


@pytest.mark.parametrize("value", ["0.1", None, float("nan"), float("inf"), -8.53, 0.0, [1]])
def test_bench_compare_refuses_a_latency_that_means_nothing(value, tmp_path):
    data = json.loads(BENCH.read_text())
    data["results"][3]["p50_ms"] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    line = _one_line_error(runner.invoke(app, ["bench-compare", str(BENCH), str(bad)]))
    assert "results[3].p50_ms" in line and "bad.json" in line


@pytest.mark.parametrize("content, says", [
    ("[]", "the top level should be an object, got list"),
    ('{"schema": "edgecnn.bench/1"}', "the top level has no 'created'"),
    ("not json", "Cannot read the bench result"),
    ("", "Cannot read the bench result"),
])
def test_bench_compare_refuses_what_is_not_a_result(content, says, tmp_path):
    """One line that names the file and what is wrong with it, whichever side it is on."""
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in ([str(bad), str(BENCH)], [str(BENCH), str(bad)]):
        line = _one_line_error(runner.invoke(app, ["bench-compare", *args]))
        assert str(bad) in line and says in line, line


def test_a_bench_result_reads_back_as_written(tmp_path):
    result = read_bench(BENCH)
    assert all(math.isfinite(r.p50_ms) and r.p50_ms > 0 for r in result.results)
    again = tmp_path / "again.json"
    again.write_text(json.dumps(to_json(result)))
    assert read_bench(again) == result
    with pytest.raises(EdgeCNNError, match="schema"):
        data = to_json(result) | {"schema": "edgecnn.bench/0"}
        again.write_text(json.dumps(data))
        read_bench(again)


PI5_CPUINFO = "".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
                      for i in range(4)) + "Revision\t: d04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"


@pytest.mark.parametrize("cpuinfo, tree, dmi, cpu, board", [
    (PI5_CPUINFO, "Raspberry Pi 5 Model B Rev 1.0\0", None, "Cortex-A76", "Raspberry Pi 5 Model B Rev 1.0"),
    ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n", None, ("Amazon EC2", "c7g.large"),
     "Neoverse-V1", "Amazon EC2 c7g.large"),
    ("CPU part\t: 0xd05\nCPU part\t: 0xd0b\n", "Rockchip RK3588\0", None, "Cortex-A55 + Cortex-A76", "Rockchip RK3588"),
    ("model name\t: AMD EPYC 7B13\n", None, ("To Be Filled By O.E.M.", "To Be Filled By O.E.M."), "AMD EPYC 7B13", None),
])
def test_the_machine_record_tells_a_pi_from_a_graviton(tmp_path, monkeypatch, cpuinfo, tree, dmi, cpu, board):
    """An Arm kernel names no CPU model: the cores come from their part numbers, and the board
    from the device tree or the firmware's DMI table (placeholders are no name)."""
    from edgecnn.timing import machine

    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(machine, "CPUINFO", str(tmp_path / "cpuinfo"))
    if tree is not None:
        (tmp_path / "model").write_text(tree)
    monkeypatch.setattr(machine, "_DEVICE_TREE_MODEL", (str(tmp_path / "model"),))
    for name, text in zip(("vendor", "product"), dmi or ()):
        (tmp_path / name).write_text(text + "\n")
    monkeypatch.setattr(machine, "_DMI", (str(tmp_path / "vendor"), str(tmp_path / "product")))
    info = machine.machine_info()
    assert (info["cpu"], info["board"]) == (cpu, board) and info["arch"]


@pytest.mark.parametrize("machine, says", [([], "machine should be an object"), ({"cpu": "x"}, "machine")])
def test_a_device_timing_answer_is_read_through_its_schema(machine, says):
    """bench --device whose machine record is a list was a traceback; every field is checked."""
    from edgecnn.results.bench import DeviceBench
    from edgecnn.results.schema import RecordError, from_json

    with pytest.raises(RecordError, match=says):
        from_json(DeviceBench, {"rows": [], "overhead": {}, "machine": machine}, "pi5's timing result")
