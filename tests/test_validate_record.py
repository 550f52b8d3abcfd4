"""Validation never approves answers the export did not record, and a narrower run never erases
broader evidence (the committed shapes-toy: no training needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli.main import app
from edgecnn.export.onnx_metadata import read_metadata, set_metadata
from edgecnn.validate.run import validate
from tests.conftest import OTHER_X86, impossible_gates, need_isa

SHAPES = Path(__file__).resolve().parents[1] / "exported" / "shapes-toy"


@pytest.fixture
def shapes(tmp_path) -> Path:
    return shutil.copytree(SHAPES, tmp_path / "shapes-toy")


def _rewrite_metadata(path: Path, **changes) -> None:
    import onnx

    proto = onnx.load(str(path))
    set_metadata(proto, read_metadata(path).replace(**changes))
    onnx.save(proto, str(path))


def _variant(report: dict, kind: str) -> dict:
    return next(v for v in report["variants"] if v["variant"] == kind)


def test_a_variant_whose_class_names_moved_round_by_one_fails(shapes):
    int8 = shapes / "model.int8.onnx"
    names = read_metadata(int8).class_names
    _rewrite_metadata(int8, class_names=(*names[1:], names[0]))
    result = CliRunner().invoke(app, ["validate", str(shapes)])
    assert result.exit_code == 3, result.output
    assert "model.int8.onnx: metadata differs" in result.output and "class_names" in result.output
    report = json.loads((shapes / "report.json").read_text())
    assert _variant(report, "int8")["mismatch"] == ["class_names"] and not report["passed"]
    assert _variant(report, "fp32")["passed"]  # its outputs were fine: its names were not


@pytest.mark.parametrize("field, value", [("preprocessing", None), ("keras_logits", True)])
def test_any_field_that_turns_outputs_into_answers_is_checked(shapes, field, value):
    from edgecnn.runtime.metadata import Preprocessing

    value = Preprocessing(scale=1.0, offset=0.0) if field == "preprocessing" else value
    _rewrite_metadata(shapes / "model.fp16.onnx", **{field: value})
    report = validate(shapes)
    assert report.variant("fp16").mismatch == [field] and not report.passed


def test_a_narrower_validation_keeps_the_classes_it_did_not_measure(shapes):
    need_isa(OTHER_X86)
    impossible = impossible_gates(fp16_min_agreement=1.01)
    broad = validate(shapes, isa=[OTHER_X86], gates=impossible)
    host = broad.machine.native_row
    assert broad.variant("fp16").failed_on == [host, OTHER_X86]
    # The README's next step measures the host only, with gates fp16 now passes
    narrow = validate(shapes)
    fp16 = narrow.variant("fp16")
    kept = fp16.by_isa[OTHER_X86]
    assert OTHER_X86 in narrow.isa_rows and kept.carried and kept.still_valid is True
    assert kept.measured_at == broad.validated_at and not kept.passed
    assert fp16.failed_on == [OTHER_X86] and narrow.not_for == {"fp16": [OTHER_X86]}
    assert fp16.by_isa[host].passed and not fp16.by_isa[host].carried
    required = validate(shapes, require=["fp32", "int8", "fp16"])
    assert not required.passed  # the failure on record still counts for a required variant
    assert f"{OTHER_X86} (earlier run" in (shapes / "report.md").read_text()
    # Files that changed make their earlier rows outdated: shown, judging nothing
    _rewrite_metadata(shapes / "model.fp16.onnx", edgecnn_version="another")
    changed = validate(shapes, require=["fp32", "int8", "fp16"])
    outdated = changed.variant("fp16").by_isa[OTHER_X86]
    assert outdated.still_valid is False and changed.passed and changed.not_for == {}
    assert changed.variant("int8").by_isa[OTHER_X86].still_valid is True


def test_rows_of_a_report_that_predates_file_hashes_still_count_their_failures(shapes):
    report = json.loads((shapes / "report.json").read_text())
    assert "sha256" not in report["variants"][0]  # the committed reports predate them
    narrow = validate(shapes)
    kept = [c for v in narrow.variants for c in v.by_isa.values() if c.carried]
    assert kept and all(c.still_valid is None for c in kept)
    assert set(narrow.isa_rows) == set(report["isa_rows"]) and narrow.passed
    # and a failure recorded in such a report is not dropped for want of a hash
    carried = next(row for row in report["isa_rows"] if row != narrow.machine.native_row)
    report["variants"][2]["by_isa"][carried]["passed"] = False
    (shapes / "report.json").write_text(json.dumps(report))
    again = validate(shapes)
    assert carried in again.variant(report["variants"][2]["variant"]).failed_on


def test_a_report_about_other_files_says_it_is_stale(tmp_path):
    """An export interrupted after writing new variants, before its new report: every reader of
    the report checks the files beside it (sha256) and says so in one line, never shows the old
    numbers for the new files."""
    folder = shutil.copytree(SHAPES, tmp_path / "exported" / "shapes-toy")
    validate(folder)  # the report now records each file's sha256
    runner = CliRunner()
    assert runner.invoke(app, ["report", str(folder)]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["zoo", "shapes-toy", "--exported", str(tmp_path / "exported"),
                                            "--json"]).output)
    assert listed[0]["export"]["keras_accuracy"] > 0.9
    _rewrite_metadata(folder / "model.int8.onnx", edgecnn_version="newer export")
    page = runner.invoke(app, ["report", str(folder)])
    assert page.exit_code == 1 and "stale" in page.output and "model.int8.onnx" in page.output
    listed = json.loads(runner.invoke(app, ["zoo", "shapes-toy", "--exported", str(tmp_path / "exported"),
                                            "--json"]).output)
    assert listed[0]["export"] == {"folder": str(folder), "stale": ["model.int8.onnx"]}
