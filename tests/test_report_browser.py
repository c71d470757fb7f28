"""Open the rendered findings report in headless Chromium (Debian's package): the tables and the
SVG charts are in the DOM the browser built, and a screenshot (kept in tmp_path, out of git) is
a non-trivial PNG."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_report import Tables, make_report_inputs

from pipeline.core.report import report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    html, _ = report.render_report(make_report_inputs())
    path = out / "findings.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_tables_and_charts_in_browser_dom(page: Path):
    dom = _chromium(page.parent, "--dump-dom", page.as_uri()).stdout
    parsed = Tables()
    parsed.feed(dom)
    for question in ("worked", "improve"):
        table = parsed.table("findings", **{"data-question": question})
        assert len(table["rows"]) >= 2 and table["rows"][0][-1] == "Supporting quotes"
    ids = {s.get("id") for s in parsed.svgs}
    for question in ("worked", "improve"):
        assert {f"chart-rates-{question}", f"chart-heatmap-{question}",
                f"chart-trend-{question}"} <= ids
    for css in ("agreement", "keyword-quality", "by-school", "dq-files", "dq-quarantine"):
        parsed.table(css)
    assert "<script>alert" not in dom  # the hostile answer stayed text


def _png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_screenshot_is_a_non_trivial_png(page: Path):
    shot = page.parent / "findings.png"
    _chromium(page.parent, f"--screenshot={shot}", "--window-size=1280,2400",
              "--hide-scrollbars", page.as_uri())
    width, height, pixels = _png_size_and_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2400)
    assert shot.stat().st_size > 20_000
    assert len(set(pixels)) > 64  # text, bars and shades, not a blank page
