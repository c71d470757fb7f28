"""The findings report: each question's table, the charts, notes, views, data quality, escaping,
no roster names, and a Markdown twin with the same content."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pandas as pd
import pytest
from test_marts import Y1, Y2, make_answers, make_codes, make_final_codes
from test_quotes import make_applications

from pipeline.core.marts import marts, quotes, year_comparison
from pipeline.core.report import report, svg

ROSTER = ["Marisol Okafor", "Teodora Vasquez-Lind", "Dwayne Abernathy"]
EVIL = 'Loved it <script>alert("x")</script> & the | pipes | kept us going all session long.'


def make_agreement() -> pd.DataFrame:
    rows = []
    for level, fw in (("framework", "scale"), ("framework", "relational_trust"),
                      ("overall", None), ("code", "scale")):
        rows.append({"coder_a": "coder_1", "coder_b": "coder_2", "level": level,
                     "framework": fw, "dimension": None, "code_id": None, "question_id": None,
                     "school_year": None, "n_units": 400, "prevalence": 0.05,
                     "percent_agreement": 0.97, "cohen_kappa": 0.71, "krippendorff_alpha": 0.7,
                     "gwet_ac1": 0.96, "pabak": 0.94, "cohen_kappa_ci_low": 0.6,
                     "cohen_kappa_ci_high": 0.8, "gwet_ac1_ci_low": 0.95,
                     "gwet_ac1_ci_high": 0.97, "krippendorff_alpha_ci_low": 0.59,
                     "krippendorff_alpha_ci_high": 0.79})
    return pd.DataFrame(rows)


def make_keyword_quality() -> pd.DataFrame:
    return pd.DataFrame([
        {"framework": "scale", "dimension": "sustainability", "code_id": "coaching_support",
         "n_answers": 6, "tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5, "f1": 0.5},
        {"framework": "scale", "dimension": "depth", "code_id": "collaboration",
         "n_answers": 6, "tp": 0, "fp": 0, "fn": 1, "precision": None, "recall": 0.0,
         "f1": 0.0},
        {"framework": None, "dimension": None, "code_id": None, "n_answers": 6, "tp": 3,
         "fp": 1, "fn": 3, "precision": 0.75, "recall": 0.5, "f1": 0.6},
    ])


def make_report_inputs(evil: bool = True) -> report.ReportInputs:
    ans, fc, codes = make_answers(), make_final_codes(), make_codes()
    if evil:
        extra = {**ans[ans.answer_id == "a9"].iloc[0].to_dict(), "answer_id": "e1",
                 "answer_text": EVIL}
        ans = pd.concat([ans, pd.DataFrame([extra])], ignore_index=True)
        fc = pd.concat([fc, pd.DataFrame([{**fc[fc.answer_id == "a10"].iloc[0].to_dict(),
                                           "answer_id": "e1"}])], ignore_index=True)
    freq = marts.code_frequencies(fc, ans, codes)
    sha = "ab12cd34ef56" + "0" * 52
    return report.ReportInputs(
        frequencies=freq,
        quotes=quotes.exemplar_quotes(fc, ans, make_applications(), codes),
        year_over_year=year_comparison.year_over_year(freq),
        trends=marts.code_trends(fc, ans, codes),
        agreement=make_agreement(),
        keyword_quality=make_keyword_quality(),
        export_files=pd.DataFrame([
            {"school_year": Y1, "file_name": "session-01.csv", "file_sha256": sha,
             "reader": "google-forms", "encoding": "cp1252", "n_records": 7, "status": "loaded"},
            {"school_year": Y2, "file_name": "export.csv", "file_sha256": "f" * 64,
             "reader": "qualtrics", "encoding": "utf-8-sig", "n_records": 6,
             "status": "loaded"}]),
        quarantine=pd.DataFrame([
            {"school_year": Y1, "file_name": "session-01.csv", "row_number": r,
             "column_name": "school", "stage": "staging", "level": "row",
             "reason": "unknown school"} for r in (3, 4)]
            + [{"school_year": Y2, "file_name": "export.csv", "row_number": 9,
                "column_name": None, "stage": "read", "level": "row",
                "reason": "ragged row"}]),
        redactions=pd.DataFrame({"school_year": [Y1, Y2], "n": [1, 3]}),
        codebook_codes=codes,
        by_school=marts.by_school(fc, ans, codes),
        by_coach=marts.by_coach(fc, ans, codes),
        generated_at="2024-12-01 10:00",
    )


class Tables(HTMLParser):
    """Collects tables (attrs + cell texts), svg ids and paragraph attrs from HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.svgs: list[dict] = []
        self.paras: list[dict] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"attrs": a, "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self.svgs.append(a)
        elif tag == "p":
            self.paras.append({"attrs": a, "text": ""})

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self.paras and self.getpos():
            self.paras[-1]["text"] += data

    def table(self, css: str, **attrs) -> dict:
        hits = [t for t in self.tables if css in t["attrs"].get("class", "").split()
                and all(t["attrs"].get(k) == v for k, v in attrs.items())]
        assert len(hits) == 1, (css, attrs, len(hits))
        return hits[0]


@pytest.fixture(scope="module")
def rendered() -> tuple[str, str, Tables]:
    html, md = report.render_report(make_report_inputs())
    parsed = Tables()
    parsed.feed(html)
    return html, md, parsed


def _row(table: dict, first: str, col: int = 2) -> list[str]:
    hits = [r for r in table["rows"] if len(r) > col and r[col] == first]
    assert len(hits) == 1, first
    return hits[0]


def test_each_question_has_the_study_table(rendered):
    _, _, p = rendered
    worked = p.table("findings", **{"data-question": "worked"})
    header = worked["rows"][0]
    # one row per code under a row per category (the design of issue 13: no framework and
    # category columns); 2020-21 is keyword-coded: its columns are marked (a dagger)
    assert header[0] == "Code"
    assert f"{Y1} † answers" in header and f"{Y2} per 100" in header
    assert header[-1] == "Supporting quotes"
    cs = _row(worked, "Coaching support", col=0)
    assert cs[1:5] == ["2", "50.0", "2", "33.3"]  # 2 of 6 (a6, a7; the EVIL answer counts)
    assert cs[-1].startswith("4 quotes")   # the <details> summary, then the quotes
    assert "[External Coach name] gave coaching support" in cs[-1]
    # categories largest first (all years: 5, 3, 2 answers), codes by count within each
    body = worked["rows"][1:]
    assert [r[0].split(" · ")[0] for r in body if len(r) == 1] == [
        "Sustainability", "Depth", "Competence in core responsibilities"]
    assert [r[0] for r in body] [:3] == [
        f"Sustainability · Scale (Coburn) · answers with any of its codes: {Y1} †: 2; {Y2}: 3",
        "Coaching support", "Time allocated"]
    improve = p.table("findings", **{"data-question": "improve"})
    ta = _row(improve, "Time allocated", col=0)
    assert ta[1:5] == ["1", "50.0", "1", "100.0"]
    summary = p.table("summary", **{"data-question": "worked"})
    assert [r[0] for r in summary["rows"][1:5]] == [
        "Categories", "Sustainability", "Depth", "Competence in core responsibilities"]


def test_charts_are_inline_svg_and_well_formed(rendered):
    html, _, p = rendered
    ids = {s.get("id") for s in p.svgs}
    for q in ("worked", "improve"):
        assert {f"chart-rates-{q}", f"chart-heatmap-{q}", f"chart-trend-{q}"} <= ids
    for chunk in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        root = ET.fromstring(chunk)
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    bars = re.search(r'<svg id="chart-rates-worked".*?</svg>', html, re.S).group(0)
    assert bars.count('class="bar"') == 4 * 2  # 4 codes used x 2 years
    heat = re.search(r'<svg id="chart-heatmap-worked".*?</svg>', html, re.S).group(0)
    assert heat.count('class="cell"') == 3 * 5  # 3 dimensions used x 5 sessions


def test_self_contained_and_escaped(rendered):
    html, md, _ = rendered
    assert html.startswith("<!DOCTYPE html>")
    for bad in ("<script", "<link", "src=", "@import", "url("):
        assert bad not in html
    assert "https://" not in html
    assert set(re.findall(r"http://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    # escaped by Jinja2's autoescape (markupsafe writes a double quote as &#34;)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; the | pipes" in html
    assert "<script>" not in md and "the \\| pipes \\|" in md


def test_keyword_standin_note_per_year(rendered):
    _, md, p = rendered
    notes = {n["attrs"].get("data-year"): n for n in p.paras if "data-year" in n["attrs"]}
    assert "keyword-standin" in notes[Y1]["attrs"]["class"]
    assert "keyword coder standing in" in notes[Y1]["text"]
    assert "keyword-standin" not in notes[Y2]["attrs"]["class"]
    assert f"> **Note:** {Y1}: no human coding yet" in md


def test_agreement_and_keyword_quality(rendered):
    _, _, p = rendered
    ag = p.table("agreement")
    assert ag["rows"][0][0] == "School year"
    assert [r[3] for r in ag["rows"][1:]] == [
        "Scale (Coburn)", "Relational trust (Bryk & Schneider)", "All codes"]
    assert _row(ag, "Scale (Coburn)", col=3)[7] == "0.71 [0.60, 0.80]"
    assert {r[0] for r in ag["rows"][1:]} == {"All years"}
    kq = p.table("keyword-quality")
    assert kq["rows"][1][0] == "All codes" and kq["rows"][1][6:9] == ["0.75", "0.50", "0.60"]
    assert [r[2] for r in kq["rows"][2:]] == ["coaching_support", "collaboration"]


def test_views_suppress_small_cells(rendered):
    _, _, p = rendered
    for css in ("by-school", "by-coach"):
        t = p.table(css)
        assert len(t["rows"]) > 1
        for row in t["rows"][1:]:
            for cell in row[4:6]:
                assert cell == "<5" or cell == "0" or int(cell.replace(",", "")) >= 5
            if "<5" in row[4:6]:
                assert row[6] == ""
        assert any("<5" in r for r in t["rows"][1:])


def test_data_quality(rendered):
    html, _, p = rendered
    files = p.table("dq-files")
    assert _row(files, "ab12cd34ef56", col=2)[1] == "session-01.csv"
    assert "ab12cd34ef560000" not in html  # prefix only
    q = p.table("dq-quarantine")
    assert [r[3:] for r in q["rows"][1:]] == [["unknown school", "2"], ["ragged row", "1"]]
    # the keyword-coded year is marked here too (every table)
    assert p.table("dq-redactions")["rows"][1:] == [[f"{Y1} †", "1"], [Y2, "3"]]
    assert [r[0] for r in q["rows"][1:]] == [f"{Y1} †", Y2]
    assert p.table("dq-codebooks")["rows"][1:] == [
        ["Scale (Coburn)", "v1", "3"], ["Relational trust (Bryk & Schneider)", "v1", "1"]]


def test_no_roster_name_in_report(rendered):
    from pipeline.core.privacy.name_scan import NameScanner
    from pipeline.core.privacy.redact import RosterEntry

    scanner = NameScanner([RosterEntry(n, "teacher") for n in ROSTER])
    html, md, _ = rendered
    for text in (html, md):
        assert scanner.find(text) == []
    assert scanner.find("thanks to marisol today") == ["marisol"]
    assert scanner.find("Vasquez-Lind helped") == ["vasquez lind"]


def test_markdown_twin(rendered):
    _, md, _ = rendered
    assert "## “What worked from today's coaching session?”" in md
    assert "## “In what ways can we improve today's coaching session?”" in md
    assert md.count("| Supporting quotes |") == 2
    assert "| Coaching support | 2 | 50.0 | 2 | 33.3 |" in md
    assert "**Sustainability · Scale (Coburn) · answers with any of its codes:" in md
    assert "<br>2. “\\[External Coach name\\] gave coaching support" in md
    assert md.count("**Chart:**") == 8   # per question: the summary's and three in the detail
    # the same sections in the same order as the HTML, with anchors the contents link to
    assert md.index("## Summary") < md.index("## Contents") < md.index("## “What worked")
    assert "1. [Summary](#summary)" in md and '<a id="q-worked"></a>' in md
    assert "| unknown school | 2 |" in md and "&lt;5" in md


def test_minimal_inputs():
    inp = make_report_inputs(evil=False)
    html, md = report.render_report(report.ReportInputs(frequencies=inp.frequencies,
                                                        quotes=inp.quotes.iloc[:0]))
    assert "No human double coding yet" in html and "cannot be measured" in md
    assert 'id="chart-rates-worked"' in html and "chart-heatmap" not in html
    single = inp.frequencies[inp.frequencies.school_year == Y2]
    html, _ = report.render_report(report.ReportInputs(frequencies=single, quotes=inp.quotes))
    assert "Change per 100" not in html and 'data-question="worked"' in html


def test_write_report(tmp_path):
    html_path, md_path = report.write_report(make_report_inputs(evil=False), tmp_path / "r")
    assert html_path.name == "findings.html" and md_path.name == "findings.md"
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert md_path.read_text(encoding="utf-8").startswith("# Coaching feedback")


def test_a_kept_report_is_keyed_by_its_inputs_templates_and_roster(tmp_path):
    """core/report/kept.py: the key moves with any input frame, setting, template file or
    roster entry, and nothing else; what is stored comes back whole, a damaged record as
    nothing."""
    from dataclasses import replace

    from pipeline.core.privacy.redact import RosterEntry
    from pipeline.core.report import kept
    from pipeline.core.result_cache import ResultCache

    inp = make_report_inputs(evil=False)
    roster = [RosterEntry(full_name=n, role="coach") for n in ROSTER]
    key = kept.report_key(inp, roster)
    assert kept.report_key(make_report_inputs(evil=False), list(reversed(roster))) == key
    freq = inp.frequencies.copy()
    freq.loc[freq.index[0], "n_answers"] += 1
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "style.css").write_text("body { color: black }", encoding="utf-8")
    changed = [replace(inp, frequencies=freq), replace(inp, min_cell=10),
               replace(inp, templates=str(overrides))]
    keys = {kept.report_key(c, roster) for c in changed}
    keys.add(kept.report_key(inp, roster[:2]))
    (overrides / "style.css").write_text("body { color: red }", encoding="utf-8")
    keys.add(kept.report_key(changed[-1], roster))
    assert key not in keys and len(keys) == 5

    cache = ResultCache(tmp_path / "cache")
    assert kept.load(cache, key) is None
    made = kept.Rendered("<html>ü</html>", "# md", ("2020-21", "2023-24"))
    kept.store(cache, key, made)
    assert kept.load(cache, key) == made
    cache.store(key, b"not json")
    assert kept.load(cache, key) is None
    # a frame pandas cannot hash: no key, nothing kept, the report made every time
    odd = replace(inp, by_school=pd.DataFrame({"codes": [["a", "b"]]}))
    assert kept.report_key(odd, roster) is None
    kept.store(cache, None, made)
    assert kept.load(cache, None) is None


def test_svg_helpers():
    bars = svg.grouped_bars("b", "T <&>", ["A & B"], ["y1", "y2"], {("A & B", "y1"): 3.0})
    root = ET.fromstring(bars)
    assert root.get("id") == "b" and "T <&>" in root.find("{*}title").text
    assert "n/a" in bars
    line = svg.line_chart("l", "t", ["1", "2", "3", "4"], {"s": [1.0, 2.0, 3.0, None]},
                          groups=["a", "a", "b", "b"])
    assert line.count("<polyline") == 1  # 1-2 joined; 3 alone (new group); 4 missing
    heat = svg.heatmap("h", "t", ["r"], ["c1", "c2"], {("r", "c1"): 0.0})
    assert heat.count('fill="#eeeeee"') == 1
    ET.fromstring(line)
    ET.fromstring(heat)
    assert [svg._nice_max(v) for v in (0, 28.4, 50, 51, 0.7)] == [10.0, 30, 50, 60, 0.8]


# ----------------------------------------------------------------------------- suggestions

def make_suggestion_quality() -> pd.DataFrame:
    rows = []
    for evaluation, kappa in (("stored", 0.61), ("school_grouped_cv", 0.55)):
        for level, dim in (("dimension", "sustainability"), ("dimension", "depth"),
                           ("code", "sustainability"), ("framework", None)):
            rows.append({"evaluation": evaluation, "source": "trained", "level": level,
                         "framework": "scale", "dimension": dim,
                         "code_id": "coaching_support" if level == "code" else None,
                         "question_id": "worked", "school_year": Y2, "n_answers": 5, "tp": 2,
                         "fp": 1, "fn": 0, "tn": 2, "precision": 0.667, "recall": 1.0,
                         "f1": 0.8, "cohen_kappa": kappa, "keyword_precision": 0.5,
                         "keyword_recall": 0.5, "keyword_f1": 0.5, "keyword_kappa": 0.2})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module", params=["zero_shot_suggestion", "trained_suggestion"])
def suggested(request) -> tuple[str, str, str, Tables]:
    """The report with 2020-21 coded by a suggester instead of the keyword coder."""
    source = request.param
    ans, codes = make_answers(), make_codes()
    fc = make_final_codes()
    kw = fc["provenance"] == "keyword"
    fc.loc[kw, "provenance"] = source
    fc.loc[kw, "decided_by"] = "suggester 0123456789ab"
    freq = marts.code_frequencies(fc, ans, codes)
    inp = report.ReportInputs(
        frequencies=freq, quotes=quotes.exemplar_quotes(fc, ans, make_applications(), codes),
        year_over_year=year_comparison.year_over_year(freq), trends=marts.code_trends(fc, ans, codes),
        by_school=marts.by_school(fc, ans, codes), by_coach=marts.by_coach(fc, ans, codes),
        suggestion_quality=make_suggestion_quality(), coding_sources=marts.coding_sources(fc))
    html, md = report.render_report(inp)
    parsed = Tables()
    parsed.feed(html)
    return source, html, md, parsed


def test_a_suggested_year_is_marked_and_names_the_suggester(suggested):
    source, html, md, p = suggested
    model = {"zero_shot_suggestion": "zero-shot", "trained_suggestion": "trained"}[source]
    notes = {n["attrs"].get("data-year"): n for n in p.paras if "data-year" in n["attrs"]}
    assert notes[Y1]["attrs"]["class"] == "note suggestion-standin"
    assert notes[Y1]["attrs"]["data-coding-source"] == source
    assert (f"codes suggested by the {model} model standing in for the two researchers; its "
            "measured agreement with humans: see coding.suggestion_quality") in notes[Y1]["text"]
    assert "keyword coder" not in notes[Y1]["text"]
    assert notes[Y2]["attrs"]["class"] == "note human-coded"
    assert f"> **Note:** {Y1}: no human coding yet" in md
    # every column / row of the machine-coded year is marked, never the human year's
    marked = f'class="machine-coded" data-year="{Y1}" data-coding-source="{source}"'
    assert html.count(f'data-year="{Y2}" data-coding-source') == 1   # its note only
    worked = p.table("findings", **{"data-question": "worked"})
    assert f"{Y1} † answers" in worked["rows"][0] and f"{Y2} answers" in worked["rows"][0]
    assert html.count(f'<th scope="col" {marked}>{Y1} † answers</th>') == 2   # worked, improve
    for css in ("by-school", "by-coach"):
        rows = p.table(css)["rows"][1:]
        assert {r[1] for r in rows} == {f"{Y1} †", Y2}
    n_marked_rows = html.count(f"<tr {marked}>")
    assert n_marked_rows == sum(r[1] == f"{Y1} †" for css in ("by-school", "by-coach")
                                for r in p.table(css)["rows"][1:])
    assert f"{_short(Y1)} S1 †" in html and f"{_short(Y2)} S1 †" not in html   # chart labels
    # quotes say who coded them; the change is flagged as mixing two methods
    tag = {"zero_shot_suggestion": "zero-shot suggester",
           "trained_suggestion": "trained suggester"}[source]
    cs = _row(worked, "Coaching support", col=0)
    assert f"({Y1} †, session 1; {tag})" in cs[-1]
    assert f"({Y2}, session 1)" in cs[-1]
    assert "not comparable: year a coded by the" in md


def _short(year: str) -> str:
    return year[2:]


def test_suggestion_quality_table(suggested):
    _, _, md, p = suggested
    t = p.table("suggestion-quality")
    assert t["rows"][0][-2:] == ["Cohen's kappa", "Keyword coder's kappa"]
    body = t["rows"][1:]
    assert [(r[0].split()[0], r[5]) for r in body] == [
        ("stored", "Depth"), ("stored", "Sustainability"),
        ("school-grouped", "Depth"), ("school-grouped", "Sustainability")]
    assert [r[-2:] for r in body] == [["0.61", "0.20"]] * 2 + [["0.55", "0.20"]] * 2
    assert "## Suggestions against the human codes" in md


def test_no_suggestion_quality_no_table(rendered):
    html, _, _ = rendered
    assert "suggestion-quality" not in html


def test_trained_year_with_zero_shot_codes_names_both_models():
    ans, codes = make_answers(), make_codes()
    fc = make_final_codes()
    kw = fc["provenance"] == "keyword"
    fc.loc[kw, "provenance"] = fc.loc[kw, "code_id"].map(
        {"coaching_support": "trained_suggestion"}).fillna("zero_shot_suggestion")
    freq = marts.code_frequencies(fc, ans, codes)
    html, _ = report.render_report(report.ReportInputs(
        frequencies=freq, quotes=quotes.exemplar_quotes(fc, ans, None, codes),
        coding_sources=marts.coding_sources(fc)))
    p = Tables()
    p.feed(html)
    note = next(n for n in p.paras if n["attrs"].get("data-year") == Y1)
    assert note["attrs"]["class"] == "note suggestion-standin"
    assert note["attrs"]["data-coding-source"] == "trained_suggestion"
    assert "codes suggested by the trained and the zero-shot models" in note["text"]
    assert "2 trained, 3 zero-shot" in note["text"]
    assert (f'class="machine-coded" data-year="{Y1}" data-coding-source="trained_suggestion"'
            in html)
