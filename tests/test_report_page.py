"""The report page, rendered in a real browser (headless Chromium): it loads without console
errors and the numbers a person reads equal the JSON they come from."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgecnn.report_page import render

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
    report = json.loads((FASHION / "report.json").read_text())
    bench = json.loads((ROOT / "bench" / "results" / "fashion-cnn.json").read_text())
    path = tmp_path_factory.mktemp("page") / "report.html"
    path.write_text(render(report, bench))
    return path, report, bench


def test_page_renders_without_console_errors_and_shows_the_json_numbers(page):
    path, report, bench = page
    out = _chromium("--dump-dom", path.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "Failed to load" in line]
    assert console == []
    dom = out.stdout
    assert re.search(r'id="?keras-accuracy"?>([0-9.]+)<', dom).group(1) == f"{report['keras_accuracy']:.4f}"
    cells = {(m[0], m[1]): m[2] for m in re.findall(
        r'data-variant="?([\w]+)"? data-isa="?([\w-]+)"? data-accuracy="?([0-9.]+)"?', dom)}
    expected = {(v["variant"], isa): f"{row['accuracy']:.4f}"
                for v in report["variants"] for isa, row in v["by_isa"].items()}
    assert cells == expected  # every cell of the variant x class matrix, and nothing else
    for isa in report["isa_rows"]:  # a person can answer "which file for this CPU" from the page
        recommendation = re.search(rf'id="?rec-{isa}"?.*?<code class="?file"?>([\w.]+)</code>', dom, re.S)
        assert recommendation, isa
        chosen = next(v for v in report["variants"] if v["file"] == recommendation.group(1))
        assert chosen["by_isa"][isa]["passed"]
    host_int8 = next(r for r in bench["results"] if (r["engine"], r["variant"], r["target"], r["batch"])
                     == ("onnxruntime", "int8", "cpu-1t", 1))
    assert f"int8 {host_int8['p50_ms']:.3f} ms" in dom  # the latency chart's point for int8


def test_screenshot_of_the_page(page, tmp_path):
    path, _, _ = page
    shot = tmp_path / "report.png"
    out = _chromium("--window-size=1100,1800", f"--screenshot={shot}", path.as_uri())
    assert out.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page with tables and charts, not a blank one


def test_page_refuses_a_benchmark_of_other_files(tmp_path):
    """Another export of the same zoo model is another model: its latency is not shown."""
    from edgecnn.report_page import write_report_page

    folder = tmp_path / "fashion-cnn"
    folder.mkdir()
    shutil.copy(FASHION / "report.json", folder / "report.json")
    page = write_report_page(folder, ROOT / "bench" / "results" / "fashion-cnn.json")
    text = page.read_text()
    assert "Accuracy against latency" not in text and "no benchmark of this model" in text


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
    page = render(report, None)
    assert "<script" not in page and "<img" not in page
    for tag in re.findall(r"<[a-z]+\s[^>]*>", page):  # no event-handler attribute got in
        outside_quotes = re.sub(r'"[^"]*"' + r"|'[^']*'", '""', tag)
        assert not re.search(r"\son[a-z]+\s*=", outside_quotes), tag
