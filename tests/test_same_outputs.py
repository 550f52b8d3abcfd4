"""A CPU class that computes the host's outputs on a probe inherits the host's verdict; one that
does not (fp16 on an Arm core with half precision, a saturating int8 kernel) is measured."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.accuracy.same_outputs import PROBE_IMAGES, TOLERANCE, same_as
from edgecnn.results.report import Place
from edgecnn.runners.base import CellRun, Provenance
from edgecnn.runners.plan import probed, run_all
from tests.conftest import need_isa

FASHION = Path(__file__).resolve().parents[1] / "exported" / "fashion-cnn"


class Fake:
    """A runner whose models answer a softmax of three pixels, the first moved by the model's
    offset: an offset makes a class that computes otherwise. It records what it was asked to run."""

    def __init__(self, row: str, emulated: bool, offsets: dict[str, float] | None = None) -> None:
        self.row = self.isa = row
        self.emulated = emulated
        self.offsets = offsets or {}
        self.calls: list[tuple[list[str], int]] = []

    def run(self, models, images):
        self.calls.append(([Path(m).name for m in models], len(images)))
        probs = []
        for m in models:
            z = images.reshape(len(images), -1)[:, :3].astype(np.float64) / 255
            z[:, 0] += self.offsets.get(Path(m).name, 0.0)
            e = np.exp(z - z.max(1, keepdims=True))
            probs.append((e / e.sum(1, keepdims=True)).astype(np.float32))
        how = Place.EMULATED if self.emulated else Place.NATIVE
        return CellRun(probs, Provenance(how, self.row, self.row))


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 4, 4), dtype=np.uint8)


def test_a_class_that_computes_the_same_takes_the_hosts_outputs_and_one_that_differs_is_measured():
    models = [Path("model.onnx"), Path("model.fp16.onnx")]
    host = Fake("x86-avx2", False)
    other = Fake("arm64-dot", True, {"model.fp16.onnx": 0.01})  # fp16 off by ~2e-3
    images = _images(2000)
    cells = run_all([host, other], models, images, 1000, ["fp32", "fp16"], "x86-avx2")
    cell = cells["arm64-dot"]
    same = cell.same(0)
    assert same is not None and same.row == "x86-avx2" and same.images == PROBE_IMAGES
    assert same.max_abs_diff <= TOLERANCE["fp32"]
    assert cell.probs[0] is cells["x86-avx2"].probs[0] and len(cell.probs[0]) == 2000
    assert cell.same(1) is None and len(cell.probs[1]) == 1000  # measured on its own images
    assert np.allclose(cell.probs[1], Fake("", True, other.offsets).run(models, images[:1000]).probs[1])
    # the probe first, then only the model that differed, on the rest of its images
    assert other.calls == [(["model.onnx", "model.fp16.onnx"], PROBE_IMAGES),
                           (["model.fp16.onnx"], 1000 - PROBE_IMAGES)]
    # the host ran the probe as one batch of its own, beside its run on every image
    assert sorted(host.calls) == sorted([(["model.onnx", "model.fp16.onnx"], 2000),
                                         (["model.onnx", "model.fp16.onnx"], PROBE_IMAGES)])


def test_without_a_host_row_every_class_is_measured():
    models = [Path("model.onnx")]
    cells = run_all([Fake("x86-avx2", False), Fake("x86-sse4", True)], models, _images(600), 300)
    assert cells["x86-sse4"].same(0) is None and len(cells["x86-sse4"].probs[0]) == 300


def test_outputs_that_are_not_probabilities_are_never_the_same():
    reference = np.full((4, 2), 0.5, np.float32)
    assert same_as("int8", reference.copy(), reference, "x86-avx2") is not None
    assert same_as("int8", np.full((4, 2), np.nan, np.float32), reference, "x86-avx2") is None
    assert same_as("int8", np.full((3, 2), 0.5, np.float32), reference, "x86-avx2") is not None  # a prefix
    assert same_as("int8", np.full((4, 3), 1 / 3, np.float32), reference, "x86-avx2") is None
    assert same_as("int8", reference[:0], reference, "x86-avx2") is None


def test_a_probe_that_returns_other_shapes_is_one_line():
    from edgecnn.errors import EdgeCNNError

    class Short(Fake):
        def run(self, models, images):
            return super().run(models, images[:-1])

    with pytest.raises(EdgeCNNError, match=r"arm64-dot returned .* shape \(255, 3\).*not \(256, 3\)"):
        probed(Short("arm64-dot", True), [Path("model.onnx")], _images(1000), ["fp32"],
               Fake("x86-avx2", False), lambda: None)


@pytest.mark.slow
def test_fp16_on_an_arm_core_with_half_precision_is_measured_and_the_rest_inherited(tmp_path):
    """The committed fashion-cnn on arm64-dot (half-precision arithmetic: fp16 moves outputs by
    ~5e-3) and on another x86 class (the same float and integer arithmetic as the host)."""
    need_isa("arm64-dot")
    from edgecnn.validate.run import validate
    from tests.conftest import OTHER_X86

    folder = tmp_path / "fashion"
    shutil.copytree(FASHION, folder)
    report = validate(folder, isa=["arm64-dot", OTHER_X86], limit=2000, emulated_images=400)
    native = report.machine.native_row
    for v in report.variants:
        dot, x86 = v.by_isa["arm64-dot"], v.by_isa[OTHER_X86]
        assert x86.same_as == native and x86.images == 2000, v.variant
        assert x86.decided.startswith(f"same outputs as {native} on {PROBE_IMAGES} images"), v.variant
        if v.variant == "fp16":
            assert dot.same_as is None and dot.images == 400 and dot.decided == "measured on 400 images"
        else:
            assert dot.same_as == native and dot.accuracy == v.by_isa[native].accuracy, v.variant
    text = (folder / "report.md").read_text()
    assert "How each emulated cell was decided" in text and "fp16 measured on 400 images" in text
