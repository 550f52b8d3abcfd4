"""The report page, rendered in a real browser (headless Chromium): the numbers a person reads
equal the JSON they come from, it fetches nothing, and nothing from a file becomes markup."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from edgecnn.results.bench import read_bench
from edgecnn.results.page import render
from edgecnn.results.report import Report, read_report
from edgecnn.results.schema import from_json

ROOT = Path(__file__).resolve().parents[1]
FASHION = ROOT / "exported" / "fashion-cnn"


def _browser() -> str:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    if os.environ.get("EDGECNN_REQUIRE_BROWSER"):
        pytest.fail("no headless Chromium; make test installs Debian's chromium-headless-shell")
    pytest.skip("no headless Chromium installed")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_browser(), "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "report.html"
    path.write_text(render(read_report(FASHION), read_bench(ROOT / "bench" / "results" / "fashion-cnn.json")))
    # the expected values come from the JSON files as parsed here, not through the records
    report = json.loads((FASHION / "report.json").read_text())
    bench = json.loads((ROOT / "bench" / "results" / "fashion-cnn.json").read_text())
    return path, report, bench


def test_the_page_is_self_contained():
    """No script and nothing fetched: it opens anywhere, from a file, offline."""
    page = render(read_report(FASHION), read_bench(ROOT / "bench" / "results" / "fashion-cnn.json"))
    assert not re.search(r"<script|<link|<iframe|<img|@import|url\(", page, re.I)
    assert not re.search(r"\b(src|href)\s*=", page, re.I)


def test_page_shows_the_json_numbers_in_a_real_browser(page):
    path, report, bench = page
    out = _chromium("--dump-dom", path.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    shown = float(re.search(r'id="?keras-accuracy"?>([^<]+)<', dom).group(1))
    assert abs(shown - report["keras_accuracy"]) <= 5e-5  # 4 decimals, however they are formatted
    cells = {}
    for variant, isa, exact, text in re.findall(
            r'data-variant="([^"]+)" data-isa="([^"]+)" data-accuracy="([^"]+)">([^<]+)<', dom):
        cells[(variant, isa)] = float(exact)
        assert abs(float(text) - float(exact)) <= 5e-5, (variant, isa, text)
    expected = {(v["variant"], isa): row["accuracy"]
                for v in report["variants"] for isa, row in v["by_isa"].items()}
    assert cells == expected  # every cell of the variant x class matrix, exactly, and nothing else
    for isa in report["isa_rows"]:  # a person can answer "which file for this CPU" from the page
        recommendation = re.search(rf'id="?rec-{isa}"?.*?<code class="?file"?>([\w.]+)</code>', dom, re.S)
        assert recommendation, isa
        chosen = next(v for v in report["variants"] if v["file"] == recommendation.group(1))
        assert chosen["by_isa"][isa]["passed"]
    host_int8 = next(r for r in bench["results"] if (r["engine"], r["variant"], r["target"], r["batch"])
                     == ("onnxruntime", "int8", "cpu-1t", 1))
    point = re.search(r"int8 ([0-9.]+) ms</text>", dom)  # the latency chart's point for int8
    assert point and abs(float(point.group(1)) - host_int8["p50_ms"]) <= 5e-4


@pytest.mark.parametrize("b1, b64, shipped", [
    # p50 in ms at batch 1 and at 64 on one thread; the file the page must name, by hand
    ({"fp32": 0.30, "int8": 0.20, "dynint8": 0.10, "fp16": 0.40}, {"fp32": 4.0, "int8": 2.0, "dynint8": 3.9, "fp16": 5.0},
     "model.dynint8.onnx"),
    ({"fp32": 0.30, "int8": 0.20, "dynint8": 0.10, "fp16": 0.40}, {"fp32": 4.0, "int8": 2.0, "dynint8": 4.1, "fp16": 5.0},
     "model.int8.onnx"),  # dynint8 is slower than fp32 at 64
    ({"fp32": 0.30, "int8": 0.20, "dynint8": 0.25, "fp16": 0.05}, {"fp32": 4.0, "int8": 4.5, "dynint8": 4.2, "fp16": 3.0},
     "model.fp16.onnx"),
    ({"fp32": 0.30, "int8": 0.20, "dynint8": 0.25, "fp16": 0.40}, {"fp32": 4.0, "int8": 4.5, "dynint8": 4.2, "fp16": 5.0},
     "model.onnx"),  # every file faster at batch 1 loses at 64
])
def test_the_host_recommendation_is_the_fastest_passing_file(tmp_path, b1, b64, shipped):
    """On the host, the page names the passing file fastest at batch 1 on one thread, of those
    not slower than fp32 at batch 64 (every fashion-cnn variant passes on its host row)."""
    report = read_report(FASHION)
    assert all(v.by_isa[report.machine.native_row].passed for v in report.variants)
    bench = read_bench(ROOT / "bench" / "results" / "fashion-cnn.json")
    bench.results = [r for r in bench.results if not (r.engine == "onnxruntime" and r.target == "cpu-1t")]
    template = read_bench(ROOT / "bench" / "results" / "fashion-cnn.json").rows(engine="onnxruntime", target="cpu-1t")[0]
    for batch, p50 in ((1, b1), (64, b64)):
        bench.results += [replace(template, variant=v, batch=batch, p50_ms=ms) for v, ms in p50.items()]
    html = render(report, bench)
    shown = re.search(rf'id="rec-{report.machine.native_row}".*?<code class="file">([^<]+)</code>', html, re.S)
    assert shown.group(1) == shipped


def test_screenshot_of_the_page(page, tmp_path):
    """What a person sees: the matrix's cells green (every fashion-cnn variant passes), the
    per-class bars in both colours, the recommendation boxes, on a page longer than a screen."""
    from PIL import Image

    path, _, _ = page
    shot = tmp_path / "report.png"
    out = _chromium("--window-size=1100,1800", f"--screenshot={shot}", path.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 1800)
    counts = {colour: n for n, colour in image.getcolors(1100 * 1800)}

    def share(hex_colour: str) -> float:
        return counts.get(tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)), 0) / (1100 * 1800)

    assert share("#e6f4e6") > 0.01  # passing matrix cells
    assert share("#f8d7d7") == 0  # no failing cell
    assert share("#eef3fb") > 0.02  # the six recommendation boxes
    assert share("#55aa99") > 0 and share("#cc5555") > 0  # per-class gains and losses
    assert share("#ffffff") < 0.9  # not a blank page


def test_page_refuses_a_benchmark_of_other_files(tmp_path):
    """Another export of the same zoo model is another model: its latency is not shown."""
    from edgecnn.results.page import write_report_page

    folder = tmp_path / "fashion-cnn"
    folder.mkdir()
    shutil.copy(FASHION / "report.json", folder / "report.json")
    page = write_report_page(folder, ROOT / "bench" / "results" / "fashion-cnn.json")
    text = page.read_text()
    assert "Accuracy against latency" not in text and "no benchmark of this model" in text


def test_the_page_finds_its_latency_from_its_folder_wherever_the_command_runs(tmp_path, monkeypatch):
    """The latency comes from the export's own bench.json, matched to its files by sha256."""
    from edgecnn.results.page import write_report_page
    from edgecnn.store.files import sha256_file

    folder = shutil.copytree(FASHION, tmp_path / "elsewhere" / "fashion-cnn")
    bench = json.loads((FASHION / "bench.json").read_text())
    bench["files"] = [str(folder / Path(f).name) for f in bench["files"]]
    bench["file_sha256"] = [sha256_file(f) for f in bench["files"]]
    (folder / "bench.json").write_text(json.dumps(bench))
    monkeypatch.chdir(tmp_path)  # no bench/results here
    assert "Accuracy against latency" in write_report_page(folder).read_text()
    bench["file_sha256"][1] = "0" * 64  # the int8 file timed was another one
    (folder / "bench.json").write_text(json.dumps(bench))
    assert "Accuracy against latency" not in write_report_page(folder).read_text()


@pytest.mark.parametrize("hostile", [
    '<script>alert(1)</script>', 'x onmouseover=alert(1)', '"><img src=x onerror=alert(1)>',
    "x' onfocus='alert(1)",
])
def test_values_from_the_report_file_cannot_inject_markup(hostile):
    """A class row, variant or file name edited into report.json lands escaped, inside quoted
    attributes: no tag or attribute of its own reaches the page."""
    report = json.loads((ROOT / "exported" / "shapes-toy" / "report.json").read_text())
    row = report["isa_rows"][1]
    report["isa_rows"][1] = hostile
    for v in report["variants"]:
        v["by_isa"][hostile] = v["by_isa"].pop(row)
    report["variants"][1]["variant"] = hostile
    report["variants"][1]["file"] = hostile
    page = render(from_json(Report, report), None)
    assert "<script" not in page and "<img" not in page
    for tag in re.findall(r"<[a-z]+\s[^>]*>", page):  # no event-handler attribute got in
        outside_quotes = re.sub(r'"[^"]*"' + r"|'[^']*'", '""', tag)
        assert not re.search(r"\son[a-z]+\s*=", outside_quotes), tag


def test_a_file_slower_than_fp32_at_batch_64_is_not_recommended():
    """int8 may win the call overhead at batch 1 and lose the arithmetic at 64: the file to ship
    must not lose to fp32 at any batch size, and the ship line says why int8 was passed over."""
    from edgecnn.results.matrix import recommendation
    from edgecnn.results.terminal import ship_line

    report = read_report(FASHION)
    bench = read_bench(FASHION / "bench.json")
    host = report.machine.native_row
    passing = {v.variant for v in report.variants if v.by_isa[host].passed}
    assert {"fp32", "int8", "dynint8"} <= passing
    p50 = {"fp32": 0.10, "int8": 0.05, "dynint8": 0.08}
    assert recommendation(report, host, p50)[0].variant == "int8"
    assert recommendation(report, host, p50, {"fp32": 4.0, "int8": 3.0, "dynint8": 4.5})[0].variant == "int8"
    assert recommendation(report, host, p50, {"fp32": 4.0, "int8": 4.4, "dynint8": 3.9})[0].variant == "dynint8"
    assert recommendation(report, host, p50, {"fp32": 4.0, "int8": 4.4, "dynint8": 4.1})[0].variant == "fp32"
    for row in bench.results:  # the committed quick timing, with int8 made slow at batch 64
        if row.engine == "onnxruntime" and row.variant == "int8" and row.batch == 64:
            row.p50_ms = 10 * bench.p50(engine="onnxruntime", variant="fp32", batch=64)
    if bench.p50(engine="onnxruntime", variant="int8", batch=64) is None:
        pytest.skip("the committed bench.json has no batch-64 rows")
    line = ship_line(report, bench, FASHION)
    assert "model.int8.onnx" not in line.split(":")[1] and "int8 is faster at batch 1 but slower" in line


def test_report_md_holds_untrusted_names_as_text():
    """Class names come from model files and folders: an ESC, a <script> or a | in one is text
    in report.md (before: written raw, so `cat report.md` ran the escape and a | split the table)."""
    from edgecnn.results.markdown import render_markdown

    report = read_report(FASHION)
    hostile = ["T-shirt\x1b[2J", "<script>alert(1)</script>", "a|b", *[f"c{i}" for i in range(7)]]
    for variant in report.variants:
        variant.per_class_accuracy = dict(zip(hostile, variant.per_class_accuracy.values()))
        variant.per_class_delta = dict(zip(hostile, variant.per_class_delta.values()))
    text = render_markdown(report)
    assert "\x1b" not in text and "<script>" not in text
    table = text.split("## Per-class accuracy", 1)[1].split("\n\n")[1].splitlines()
    cells = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert len(cells) == 1, table  # every row of the table has the header's columns


def test_a_carried_column_without_a_date_says_earlier_run():
    from edgecnn.results.matrix import Column

    assert Column("x86-avx2", None, "x86-avx2").label == "x86-avx2 (earlier run)"
    assert Column("x86-avx2", None, "x86-avx2", "2026-12-01T10:00:00").label == "x86-avx2 (earlier run, 2026-12-01)"
