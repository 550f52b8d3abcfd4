"""Accuracy per instruction-set class: detection, emulation, and an int8 scheme that holds on
every class (the committed shapes-toy, whose U8S8 int8 lost 14.67 pp on x86 without VNNI)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.accuracy.same_outputs import PROBE_IMAGES, TOLERANCE
from edgecnn.errors import EdgeCNNError
from edgecnn.runners.plan import class_runner
from edgecnn.runners.qemu import unavailable_reason
from edgecnn.runtime.isa import (
    ISA_CLASSES,
    classify_arm64,
    classify_x86,
    host_isa,
    parse_isa_list,
)
from tests.conftest import committed_tolerance, need_isa

SHAPES = Path(__file__).resolve().parents[1] / "exported" / "shapes-toy"
EMULATED_IN_CI = ("x86-avx2", "arm64-dot")


def test_classes_from_cpu_flags_and_hwcaps():
    assert classify_x86({"avx2", "avx512f", "avx512_vnni"}) == "x86-vnni"
    assert classify_x86({"avx2", "avx_vnni"}) == "x86-vnni"
    assert classify_x86({"avx2", "avx512f", "avx512bw"}) == "x86-avx2"  # Skylake-X: no VNNI
    assert classify_x86({"sse4_1", "sse4_2"}) == "x86-sse4"
    assert classify_arm64(0b11, 0) == "arm64-neon"
    assert classify_arm64(1 << 20, 0) == "arm64-dot"
    assert classify_arm64(1 << 20, 1 << 13) == "arm64-i8mm"
    assert host_isa() in ISA_CLASSES  # every CI and developer machine is x86-64 or arm64 Linux


def test_isa_lists():
    assert parse_isa_list("all") == list(ISA_CLASSES)
    assert parse_isa_list(None) == [host_isa()]
    assert parse_isa_list("arm64-dot, x86-avx2,arm64-dot") == ["x86-avx2", "arm64-dot"]
    with pytest.raises(EdgeCNNError, match="Unknown instruction-set class 'x86-avx3'.*arm64-dot"):
        parse_isa_list("x86-avx3")


def test_avx_vnni_from_cpuinfo_is_not_claimed_under_emulation():
    """An AVX-VNNI host (Alder Lake, Sapphire Rapids) running qemu -cpu Haswell: /proc/cpuinfo
    still says avx_vnni, numpy (CPUID) sees no GFNI/VAES, so the emulated process is x86-avx2."""
    from edgecnn.runtime.isa import classify_x86, x86_flags

    host = {"sse4_1", "avx2", "fma", "f16c", "avx_vnni", "gfni", "vaes", "vpclmulqdq"}
    haswell = {"SSE41": True, "AVX2": True, "FMA3": True, "F16C": True, "GFNI": False, "VAES": False,
               "VPCLMULQDQ": False, "AVX512VNNI": False}
    assert classify_x86(x86_flags(host, haswell)) == "x86-avx2"
    native = {**haswell, "GFNI": True, "VAES": True, "VPCLMULQDQ": True}
    assert classify_x86(x86_flags(host, native)) == "x86-vnni"  # AVX-VNNI natively
    assert classify_x86(x86_flags(host, {**native, "AVX2": False})) == "x86-sse4"


def test_x86_vnni_is_never_emulated():
    if host_isa() != "x86-vnni":
        assert "only natively" in unavailable_reason("x86-vnni")


@pytest.mark.parametrize("isa", EMULATED_IN_CI)
def test_committed_shapes_toy_holds_on_emulated_classes(isa, tmp_path, monkeypatch):
    """The committed report's row for this class is what the emulated CPU measures now, run
    from a folder of the user's (the emulated interpreter must find edgecnn from anywhere)."""
    need_isa(isa)
    monkeypatch.chdir(tmp_path)
    from edgecnn.data import load_dataset

    report = json.loads((SHAPES / "report.json").read_text())
    data = load_dataset(report["dataset"])
    files = [SHAPES / v["file"] for v in report["variants"]]
    # A row that took the host's outputs (the same on a probe) is checked on its first 1,000.
    n = min(report["variants"][0]["by_isa"][isa]["images"], 1000)
    cell = class_runner(isa).run(files, data.x_test[:n])
    # A machine of this class runs it natively (an AVX2-only host is x86-avx2 itself).
    how = "native" if isa == host_isa() else "emulated"
    assert (cell.provenance.how, cell.provenance.isa) == (how, isa)
    for variant, probs in zip(report["variants"], cell.probs):
        row = variant["by_isa"][isa]
        assert row["emulated"] == (isa != report["machine"]["host_isa"]), variant["file"]
        if row.get("same_as"):  # took the host's outputs: it must compute them still
            assert row["accuracy"] == variant["by_isa"][row["same_as"]]["accuracy"], variant["file"]
            here = class_runner(host_isa()).run([SHAPES / variant["file"]], data.x_test[:PROBE_IMAGES]).probs[0]
            assert np.abs(probs[:PROBE_IMAGES] - here).max() <= TOLERANCE[variant["variant"]], variant["file"]
            continue
        accuracy = float((probs.argmax(1) == data.y_test[:n]).mean())
        assert accuracy == pytest.approx(row["accuracy"], abs=committed_tolerance(report)), variant["file"]
        keras = row["accuracy"] - row["accuracy_delta"]
        assert keras - accuracy <= report["gates"]["int8_max_accuracy_drop"] + 1e-12, variant["file"]


def _shapes_copy(tmp_path):
    folder = tmp_path / "shapes"
    folder.mkdir()
    for name in ("model.onnx", "model.keras", "train.json"):
        shutil.copy(SHAPES / name, folder)
    return folder


@pytest.mark.slow
def test_saturating_scheme_is_rejected_and_a_portable_one_kept(tmp_path, monkeypatch):
    """U8S8 loses ~15 pp on emulated AVX2; the scheme search must refuse it, and validation must
    flag it when it is forced."""
    need_isa("x86-avx2")
    from edgecnn.export.onnx_metadata import read_metadata
    from edgecnn.quantize.quantize import quantize
    from edgecnn.validate.run import validate

    # shapes-toy's conv reads the image: quantized, it saturates without VNNI; edgecnn keeps such
    # a conv in float (next test), so this one has it quantized to prove the scheme search.
    monkeypatch.setattr("edgecnn.quantize.quantize.float_image_convs", lambda model: [])
    folder = _shapes_copy(tmp_path)
    [chosen] = quantize(folder / "model.onnx", variants=["int8"], isa=["x86-avx2"],
                        schemes=["u8s8", "u8s8-reduce-range"])
    settings = read_metadata(chosen.path).quantization
    assert settings["scheme"] == "u8s8-reduce-range" and settings["reduce_range"]
    # u8s8 plain, then bias corrected (which cannot undo a saturation): both rejected there
    rejected = settings["rejected_schemes"]
    assert [(r["scheme"], r["bias_corrected"]) for r in rejected] == [("u8s8", False), ("u8s8", True)]
    assert all("on x86-avx2" in r["reason"] for r in rejected), rejected
    assert settings["isa_checked"]["x86-avx2"]["accuracy_drop"] <= 0.005

    # Forced for a class where u8s8 holds (Arm's int8 kernels do not saturate; this machine may
    # itself be AVX2-only); no speed search: it could move the saturating convs to float, and
    # this file must saturate
    need_isa("arm64-dot")
    quantize(folder / "model.onnx", variants=["int8"], isa=["arm64-dot"], schemes=["u8s8"], force=True,
             speed_search=False, auto_exclude=False)
    assert read_metadata(folder / "model.int8.onnx").quantization["scheme"] == "u8s8"
    report = validate(folder, isa=["x86-avx2", "arm64-dot"])
    int8 = report.variant("int8")
    assert not int8.passed and not int8.by_isa["x86-avx2"].passed
    # Where it saturates, it never takes another class's outputs (an emulated AVX2 row is
    # probed against a VNNI host and differs); on an AVX2 host, where the native row itself
    # saturates, arm64-dot computes otherwise, so it is measured and holds.
    assert int8.by_isa["x86-avx2"].same_as is None
    assert int8.by_isa["arm64-dot"].passed
    if host_isa() == "x86-avx2":
        assert int8.by_isa["arm64-dot"].same_as is None
    emulated = host_isa() != "x86-avx2"
    assert int8.by_isa["x86-avx2"].emulated == emulated
    assert "broken on x86-avx2" in int8.gate
    assert ("x86-avx2 (emulated)" if emulated else "x86-avx2") in (folder / "report.md").read_text()


def test_a_float_image_conv_does_not_saturate(tmp_path):
    """U8S8 holds on emulated AVX2 when the conv that reads the image stays in float, as edgecnn
    keeps it: the int8 layers after it do not overflow their int16 pair sums."""
    need_isa("x86-avx2")
    from edgecnn.export.onnx_metadata import read_metadata
    from edgecnn.quantize.quantize import quantize

    folder = _shapes_copy(tmp_path)
    [chosen] = quantize(folder / "model.onnx", variants=["int8"], isa=["x86-avx2"], schemes=["u8s8"])
    settings = read_metadata(chosen.path).quantization
    assert settings["scheme"] == "u8s8" and not settings["rejected_schemes"]
    assert settings["isa_checked"]["x86-avx2"]["accuracy_drop"] <= 0.005


def test_emulation_refuses_a_cpu_that_is_not_what_was_asked(monkeypatch):
    """A run whose emulated CPU features do not match its class is an error, not a row."""
    need_isa("x86-sse4")
    from edgecnn.runners import qemu

    # An SSE4 class that a slip had pointed at an AVX2 CPU model.
    wrong = qemu.Emulation("qemu-x86_64", "Haswell", (frozenset({"SSE41"}), frozenset({"AVX2"})))
    monkeypatch.setitem(qemu.EMULATIONS, "x86-sse4", wrong)
    images = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(EdgeCNNError, match="not what was asked for"):
        class_runner("x86-sse4").run([SHAPES / "model.onnx"], images)


def test_the_setup_hint_names_a_command_that_exists(monkeypatch, tmp_path):
    """Errors tell users to run SETUP_HINT's command: the CLI must accept it as written (the
    build itself is replaced here; ``make isa`` runs it for real)."""
    from typer.testing import CliRunner

    from edgecnn.cli.main import app
    from edgecnn.runners.qemu import SETUP_HINT

    built = []
    monkeypatch.setattr("edgecnn.runners.qemu.setup_arm64", lambda force=False: built.append(force) or tmp_path)
    command = SETUP_HINT.split("&& ", 1)[1].rstrip(")").split()
    assert command[0] == "edgecnn"
    result = CliRunner().invoke(app, command[1:])
    assert result.exit_code == 0 and built == [False], result.output


def test_an_emulated_class_says_which_variant_it_is_on_every_few_seconds(monkeypatch, caplog, tmp_path):
    """Minutes of qemu must not read as a hang: a line per interval names the class and variant."""
    import logging

    from edgecnn.runners import qemu

    monkeypatch.setattr(qemu, "_PROGRESS_EVERY_S", 0.3)
    worker = ("import sys, time\nfrom edgecnn.runners.worker import progress_line\nfor k in (1, 2):\n"
              "    time.sleep(0.8)\n    print(progress_line(k, 2), flush=True)\nprint('oops', file=sys.stderr)\n")
    models = [tmp_path / "model.onnx", tmp_path / "model.int8.onnx"]
    with caplog.at_level(logging.INFO, logger="edgecnn"):
        code, stderr = qemu._run_with_progress([sys.executable, "-c", worker], "x86-avx2", models)
    assert code == 0 and stderr.strip() == "oops"
    lines = [r.getMessage() for r in caplog.records]
    assert any("x86-avx2: model.onnx (1 of 2)" in line for line in lines), lines
    assert any("x86-avx2: model.int8.onnx (2 of 2)" in line for line in lines), lines
