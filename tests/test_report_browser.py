"""Open the rendered findings report in headless Chromium (Debian's package): the tables and the
SVG charts are in the DOM the browser built, the contents links land on their sections, every
<details> opens, the compared years come from the setting, a machine-coded year is marked, and
printing (print media, then a PDF) opens the quotes and keeps the charts. Screenshots stay in
tmp_path, out of git. Driven over the DevTools protocol by tests/cdp.py (no extra package)."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from cdp import CHROMIUM, Browser
from test_marts import Y1
from test_report import Tables, make_report_inputs
from test_report_layout import Y3, three_years

from pipeline.core.report import report

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def _write(directory: Path, inputs: report.ReportInputs) -> Path:
    html, _ = report.render_report(inputs)
    path = directory / "findings.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The report with a keyword-coded year (2020-21 †)."""
    return _write(tmp_path_factory.mktemp("report"), make_report_inputs())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("cdp") / "profile")
    yield b
    b.close()


@pytest.fixture()
def tab(browser, page):
    t = browser.new_page(1280, 900)
    t.goto(page.as_uri())
    yield t
    t.call("Page.close")


def test_tables_and_charts_in_browser_dom(page: Path):
    dom = _chromium(page.parent, "--dump-dom", page.as_uri()).stdout
    parsed = Tables()
    parsed.feed(dom)
    for question in ("worked", "improve"):
        table = parsed.table("findings", **{"data-question": question})
        assert len(table["rows"]) >= 2 and table["rows"][0][-1] == "Supporting quotes"
        parsed.table("summary", **{"data-question": question})
    ids = {s.get("id") for s in parsed.svgs}
    for question in ("worked", "improve"):
        assert {f"chart-summary-{question}", f"chart-rates-{question}",
                f"chart-heatmap-{question}", f"chart-trend-{question}"} <= ids
    for css in ("agreement", "agreement-by-year", "keyword-quality", "by-school", "dq-files",
                "dq-quarantine"):
        parsed.table(css)
    assert "<script>alert" not in dom  # the hostile answer stayed text


def test_contents_links_land_on_their_sections(tab):
    links = tab.evaluate("[...document.querySelectorAll('nav.toc a')].map(a => a.hash)")
    assert len(links) >= 10 and len(set(links)) == len(links)
    for hash_ in links:
        landed = tab.evaluate(f"""(() => {{
            const a = document.querySelector('nav.toc a[href="{hash_}"]');
            window.scrollTo(0, 0);
            a.click();
            const target = document.getElementById(decodeURIComponent('{hash_}'.slice(1)));
            const top = target ? target.getBoundingClientRect().top : null;
            const atBottom = window.innerHeight + window.scrollY
                             >= document.documentElement.scrollHeight - 2;
            return {{hash: location.hash, found: !!target, top: top, atBottom: atBottom}};
        }})()""")
        assert landed["found"] and landed["hash"] == hash_, landed
        assert abs(landed["top"]) < 2 or (landed["atBottom"] and landed["top"] > 0), landed


def test_every_details_opens(tab):
    result = tab.evaluate("""(() => [...document.querySelectorAll('details')].map(d => {
        const content = d.querySelector(':scope > :not(summary)');
        const before = d.open || content.checkVisibility();
        d.querySelector(':scope > summary').click();
        return {before: before, open: d.open, visible: content.checkVisibility(),
                height: content.getBoundingClientRect().height};
    }))()""")
    quotes = 5   # one per code with quotes (4 in worked, 1 in improve)
    assert len(result) == quotes + 8   # and one "Chart data" per chart
    for d in result:
        assert not d["before"] and d["open"] and d["visible"] and d["height"] > 10, d


def test_charts_render(tab, page):
    charts = tab.evaluate("""[...document.querySelectorAll('svg.chart')].map(s => ({
        id: s.id, w: s.getBoundingClientRect().width, h: s.getBoundingClientRect().height,
        marks: [...s.querySelectorAll('rect.bar, rect.cell, polyline, circle')]
                 .filter(m => m.getBBox().width > 0 || m.getBBox().height > 0).length}))""")
    assert len(charts) == 8
    for c in charts:
        assert c["w"] > 200 and c["h"] > 80 and c["marks"] > 0, c
    shot = page.parent / "findings.png"
    shot.write_bytes(tab.screenshot())
    width, height, pixels = _png_size_and_pixels(shot.read_bytes())
    assert (width, height) == (1280, 900)
    assert len(set(pixels)) > 64  # text, notes and shades, not a blank page


def test_a_machine_coded_year_is_marked(tab):
    marked = tab.evaluate(f"""(() => {{
        const sel = '.machine-coded[data-year="{Y1}"][data-coding-source="keyword"]';
        const byTable = {{}};
        for (const el of document.querySelectorAll(sel)) {{
            const t = el.closest('table');
            if (t) byTable[t.className + ':' + (t.dataset.question || '')] = true;
        }}
        const chartLabels = [...document.querySelectorAll('svg.chart text')]
            .filter(t => t.textContent.includes('{Y1} †') || t.textContent.endsWith('†'))
            .map(t => t.closest('svg').id);
        return {{tables: Object.keys(byTable).sort(), charts: [...new Set(chartLabels)].sort()}};
    }})()""")
    for q in ("worked", "improve"):
        assert {f"summary:{q}", f"findings:{q}"} <= set(marked["tables"])
        assert {f"chart-summary-{q}", f"chart-rates-{q}", f"chart-heatmap-{q}",
                f"chart-trend-{q}"} <= set(marked["charts"])
    assert "agreement-by-year:" in marked["tables"] and "by-school:" in marked["tables"]


def test_compared_years_come_from_the_setting(browser, tmp_path):
    t = browser.new_page()
    try:
        t.goto(_write(tmp_path, three_years(compare=[Y1, Y3])).as_uri())
        seen = t.evaluate("""[...document.querySelectorAll('p.headline')].map(p => [
            p.dataset.question, p.dataset.yearA, p.dataset.yearB,
            document.querySelector(`table.findings[data-question="${p.dataset.question}"] th:nth-last-child(3)`).textContent])""")
        assert seen == [[q, Y1, Y3, f"Change per 100 ({Y1} † → {Y3}, 95% CI)"]
                        for q in ("worked", "improve")]
        t.goto(_write(tmp_path, three_years()).as_uri())   # the default: like with like
        assert t.evaluate("document.querySelector('p.headline').dataset.yearA") == "2023-24"
    finally:
        t.call("Page.close")


def test_printing_opens_the_quotes_and_breaks_pages(tab, page):
    tab.emulate_media("print")
    state = tab.evaluate("""({
        quotes: [...document.querySelectorAll('details.quotes > ol')].map(e => e.checkVisibility()),
        chartData: [...document.querySelectorAll('details.chart-data > table')]
                     .map(e => e.checkVisibility()),
        charts: [...document.querySelectorAll('svg.chart')].map(e => e.checkVisibility()),
        breaks: [...document.querySelectorAll('section.major')]
                  .map(s => getComputedStyle(s).breakBefore),
        rows: getComputedStyle(document.querySelector('table.findings tbody tr')).breakInside})""")
    assert state["quotes"] and all(state["quotes"])        # printed open, CSS only
    assert not any(state["chartData"])                      # the charts are printed instead
    assert all(state["charts"]) and set(state["breaks"]) == {"page"}
    assert state["rows"] == "avoid"
    pdf = tab.pdf()
    (page.parent / "findings.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) > 1
    tab.emulate_media("")
    assert json.dumps(tab.evaluate("document.querySelector('details.quotes > ol')"
                                   ".checkVisibility()")) == "false"


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
