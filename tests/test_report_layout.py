"""The report's layout of issue 13: summary first, contents, detail by category and count,
the compared years as a setting, codes that fire together shown once, agreement per school
year and question, templates a user can override, and the codebook check's co-firing flag."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from test_marts import Y1, Y2, make_answers, make_codes, make_final_codes
from test_quotes import make_applications
from test_report import Tables, _row, make_agreement, make_report_inputs
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.coding.codebook import co_firing_groups
from pipeline.core.marts import marts, quotes, year_comparison
from pipeline.core.report import report
from pipeline.core.report.render import TEMPLATES_ENV
from pipeline.core.warehouse import connection as wh

Y3 = "2024-25"


def three_years(compare=None) -> report.ReportInputs:
    """Y1 keyword-coded, Y2 and Y3 human-coded (Y3: Y2's answers again, one code fewer)."""
    ans, fc, codes = make_answers(), make_final_codes(), make_codes()
    a3 = ans[ans.school_year == Y2].assign(school_year=Y3)
    a3["answer_id"] = a3["answer_id"] + "y3"
    f3 = fc[(fc.school_year == Y2) & (fc.answer_id != "a10")].assign(school_year=Y3)
    f3["answer_id"] = f3["answer_id"] + "y3"
    ans, fc = pd.concat([ans, a3], ignore_index=True), pd.concat([fc, f3], ignore_index=True)
    freq = marts.code_frequencies(fc, ans, codes)
    return report.ReportInputs(
        frequencies=freq, quotes=quotes.exemplar_quotes(fc, ans, None, codes),
        year_over_year=year_comparison.year_over_year(freq), trends=marts.code_trends(fc, ans, codes),
        coding_sources=marts.coding_sources(fc), codebook_codes=codes, compare_years=compare)


def parse(html: str) -> Tables:
    p = Tables()
    p.feed(html)
    return p


def test_order_summary_then_contents_then_detail():
    html, _ = report.render_report(make_report_inputs())
    positions = [html.index(s) for s in ('<section id="summary"', '<nav id="contents"',
                                         '<section id="q-worked"', '<section id="q-improve"',
                                         '<section id="agreement"', '<section id="data-quality"')]
    assert positions == sorted(positions)
    # every contents link has its target, every section is in the contents
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    links = re.findall(r'<a href="#([^"]+)"', html)
    assert links and set(links) <= ids
    for section in re.findall(r'<section id="([^"]+)"', html):
        assert section in links
    # quotes: one closed <details> per code with quotes, printed open by CSS alone
    assert html.count('<details class="quotes">') == 5   # 4 codes of worked, 1 of improve
    assert "details::details-content{content-visibility:visible" in html
    assert "@media print" in html and "break-before:page" in html


def test_compared_years_default_to_the_latest_two_coded_the_same_way():
    inp = three_years()
    ctx = report.build_context(inp)
    assert ctx.years == [Y1, Y2, Y3] and ctx.compared == (Y2, Y3)
    html, md = report.render_report(inp)
    p = parse(html)
    header = p.table("findings", **{"data-question": "worked"})["rows"][0]
    assert f"Change per 100 ({Y2} → {Y3}, 95% CI)" in header
    assert f"Compared: {Y2} → {Y3}." in md
    # the mart's pair (first and latest human year) is not what the report shows: recomputed
    assert set(inp.year_over_year["year_a"]) == {Y2} and set(inp.year_over_year["year_b"]) == {Y3}


def test_compared_years_from_the_setting():
    html, md = report.render_report(three_years(compare=[Y3, Y1]))
    p = parse(html)
    worked = p.table("findings", **{"data-question": "worked"})
    assert f"Change per 100 ({Y1} † → {Y3}, 95% CI)" in worked["rows"][0]
    cs = _row(worked, "Coaching support", col=0)
    assert cs[-3] == "-10.0 [-55.0, 40.9]"   # 2 of 4 substantive answers -> 2 of 5
    headline = next(x for x in p.paras if x["attrs"].get("class") == "headline"
                    and x["attrs"].get("data-question") == "worked")
    assert (headline["attrs"]["data-year-a"], headline["attrs"]["data-year-b"]) == (Y1, Y3)
    assert "not comparable" in headline["text"]
    assert f"Compared: {Y1} † → {Y3}." in md
    with pytest.raises(ValueError, match="years in the marts: 2020-21, 2023-24, 2024-25"):
        report.render_report(three_years(compare=[Y1, "2019-20"]))


def test_headline_names_the_surest_change_with_its_interval():
    inp = make_report_inputs(evil=False)
    yoy = inp.year_over_year.copy()
    depth = (yoy["level"] == "dimension") & (yoy["dimension"] == "depth") & (
        yoy["question_id"] == "worked")
    yoy.loc[depth, "p_adjusted"] = 0.01
    inp.year_over_year = yoy
    html, _ = report.render_report(inp)
    line = next(x for x in parse(html).paras if x["attrs"].get("class") == "headline")
    assert line["text"].startswith(f"Headline change, {Y1} † → {Y2}: Depth fell from 50.0 to "
                                   "20.0 per 100 answers (-30.0 points, 95% CI -68.6 to 25.")
    assert "BH-adjusted p 0.010). Note: not comparable" in line["text"]


def test_a_machine_coded_year_is_marked_in_every_table_and_chart():
    html, _ = report.render_report(make_report_inputs())
    p = parse(html)
    marked = f'class="machine-coded" data-year="{Y1}" data-coding-source="keyword"'
    for css in ("summary", "findings"):
        for q in ("worked", "improve"):
            table = re.search(rf'<table class="{css}" data-question="{q}">.*?</table>', html,
                              re.S).group(0)
            assert marked in table and f"{Y1} †" in table
    by_year = p.table("agreement-by-year")
    assert _row(by_year, f"{Y1} †", col=0)[2] == "no human double coding"
    for q in ("worked", "improve"):
        chart = re.search(rf'<svg id="chart-summary-{q}".*?</svg>', html, re.S).group(0)
        assert f'data-series="{Y1} †"' in chart


def with_co_firing(min_answers: int = 3) -> report.ReportInputs:
    """'support' always fires with 'coaching_support' (same category); 'working_together'
    (sustainability) always with 'collaboration' (depth)."""
    ans = make_answers()
    fc = make_final_codes()
    codes = pd.concat([make_codes(), pd.DataFrame([
        {"framework": "scale", "dimension": "sustainability", "code_id": "support",
         "label": "support"},
        {"framework": "scale", "dimension": "sustainability", "code_id": "working_together",
         "label": "Working together"}]).assign(description="", patterns="[]",
                                               codebook_version="v1")], ignore_index=True)
    extra = []
    for alias, code in (("support", "coaching_support"), ("working_together", "collaboration")):
        rows = fc[fc.code_id == code].assign(code_id=alias, dimension="sustainability")
        extra.append(rows)
    fc = pd.concat([fc, *extra], ignore_index=True)
    freq = marts.code_frequencies(fc, ans, codes)
    return report.ReportInputs(
        frequencies=freq, quotes=quotes.exemplar_quotes(fc, ans, make_applications(), codes),
        codebook_codes=codes, coding_sources=marts.coding_sources(fc),
        co_firing=co_firing_groups(marts.counted_codes(fc), min_answers))


def test_co_firing_groups():
    inp = with_co_firing()
    groups = inp.co_firing
    assert list(groups.columns) == ["question_id", "group", "framework", "code_id", "n_answers"]
    assert sorted(groups["group"].unique()) == [
        "scale/coaching_support+scale/support", "scale/collaboration+scale/working_together"]
    assert set(groups["n_answers"]) == {4, 3}   # a8's code is unresolved: not counted
    assert co_firing_groups(marts.counted_codes(make_final_codes())).empty
    assert len(co_firing_groups(marts.counted_codes(make_final_codes()), 5)) == 0


def test_codes_that_fire_together_are_shown_once_with_their_aliases():
    html, md = report.render_report(with_co_firing())
    worked = parse(html).table("findings", **{"data-question": "worked"})
    codes = [r[0] for r in worked["rows"][1:] if len(r) > 1]
    assert not any(c.startswith("support") for c in codes)          # merged into its twin
    cs = _row(worked, "Coaching supportsame answers as: support", col=0)
    assert cs[1:5] == ["2", "50.0", "2", "40.0"]
    # across categories both rows stay, each naming the other
    assert ("Collaborationfires on the same answers as: Working together (Sustainability)"
            in codes)
    assert ("Working togetherfires on the same answers as: Collaboration (Depth)" in codes)
    assert "| Coaching support<br>\\*same answers as: support\\* |" not in md
    assert "| Coaching support<br>*same answers as: support* | 2 |" in md


def test_agreement_per_school_year_and_question():
    base = make_agreement().iloc[0]
    rows = [base.to_dict() | {"level": "question", "framework": None, "school_year": Y2,
                              "question_id": q, "n_answers": n, "cohen_kappa": k}
            for q, n, k in (("worked", 5, 0.8), ("improve", 1, 0.5))]
    rows.append(base.to_dict() | {"level": "school_year", "framework": None,
                                  "school_year": Y2, "n_answers": 6, "cohen_kappa": 0.75})
    rows.append(base.to_dict() | {"level": "question", "framework": None,
                                  "school_year": None, "question_id": "worked",
                                  "n_answers": 5, "cohen_kappa": 0.8})
    inp = make_report_inputs(evil=False)
    inp.agreement = pd.concat([make_agreement(), pd.DataFrame(rows)], ignore_index=True)
    html, _ = report.render_report(inp)
    t = parse(html).table("agreement-by-year")
    body = [r[:5] + [r[6]] for r in t["rows"][1:]]
    assert body == [
        [f"{Y1} †", "All questions", "no human double coding", "", "", ""],
        [Y2, "worked", "coder_1", "coder_2", "5", "0.80 [0.60, 0.80]"],
        [Y2, "improve", "coder_1", "coder_2", "1", "0.50 [0.60, 0.80]"],
        [Y2, "All questions", "coder_1", "coder_2", "6", "0.75 [0.60, 0.80]"],
        ["All years", "worked", "coder_1", "coder_2", "5", "0.80 [0.60, 0.80]"]]


def test_templates_can_be_overridden_file_by_file(tmp_path, monkeypatch):
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "intro.html.j2").write_text("<p class=\"intro\">Our district's reading guide "
                                          "for {{ report.years|join(' and ') }}.</p>\n")
    (custom / "intro.md.j2").write_text("Our district's reading guide.\n")
    inp = make_report_inputs(evil=False)
    inp.templates = custom
    html, md = report.render_report(inp)
    assert f"Our district's reading guide for {Y1} and {Y2}." in html
    assert "A code counts for an answer" not in html
    assert md.count("Our district's reading guide.") == 1
    assert 'table class="findings"' in html   # the other templates are the package's
    inp.templates = None
    monkeypatch.setenv(TEMPLATES_ENV, str(custom))
    assert "Our district's reading guide" in report.render_report(inp)[0]
    monkeypatch.setenv(TEMPLATES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="SURVEY_REPORT_TEMPLATES"):
        report.render_report(inp)


def test_codebook_check_flags_codes_that_fire_together(tmp_path):
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    db = tmp_path / "w.duckdb"
    rows = [{"answer_id": f"x{i}", "school_year": Y2, "question_id": "worked",
             "framework": "scale", "dimension": "depth", "code_id": code,
             "provenance": "agreed", "decided_by": "a+b"}
            for i in range(4) for code in ("our_practice", "collaboration")]
    rows.append({**rows[0], "answer_id": "y", "code_id": "collaboration"})   # not always
    rows += [{**rows[0], "answer_id": f"z{i}", "code_id": c} for i in range(3)
             for c in ("focused", "data_analysis")]
    frame = pd.DataFrame(rows)
    for col in wh.column_names("coding.final_codes"):
        if col not in frame:
            frame[col] = None
    with wh.connect(db) as con:
        wh.replace_rows(con, "coding.final_codes", frame)
    res = CliRunner().invoke(app, ["codebook", "check", str(root / "codebooks"),
                                   "--warehouse", str(db)])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if "fire together" in line]
    assert warnings == ["warning: codes fire together on the same 3 answers to 'worked': "
                        "scale/data_analysis, scale/focused (one code to a reader: merge them, "
                        "or tell them apart with exclusions)"]
    res = CliRunner().invoke(app, ["codebook", "check", str(root / "codebooks"),
                                   "--warehouse", str(db), "--min-answers", "4"])
    assert "fire together" not in res.output


@pytest.mark.parametrize("sources, pair", [
    ({"2019-20": "human", "2020-21": "keyword", "2021-22": "human", "2022-23": "keyword"},
     ("2020-21", "2022-23")),                  # the later pair, though keyword-coded
    ({"2019-20": "keyword", "2020-21": "keyword", "2021-22": "human"},
     ("2019-20", "2020-21")),                  # only the keyword years are like with like
    ({"2020-21": "human", "2021-22": "zero_shot_suggestion", "2022-23": "human",
      "2023-24": "zero_shot_suggestion"}, ("2021-22", "2023-24")),
    ({"2020-21": "human", "2021-22": "human", "2022-23": "human"}, ("2021-22", "2022-23")),
    ({"2020-21": "keyword", "2021-22": "mixed"}, ("2020-21", "2021-22")),   # no pair: latest two
    ({"2020-21": "human"}, None),
])
def test_compare_pair_default(sources, pair):
    from pipeline.core.report.years import Years, compare_pair

    freq = pd.DataFrame({"school_year": list(sources), "coding_source": list(sources.values())})
    assert compare_pair(Years(freq)) == pair


def test_compare_setting_from_run_config_or_environment(monkeypatch):
    from pipeline.defs.report import COMPARE_ENV, ReportConfig, compare_setting

    monkeypatch.delenv(COMPARE_ENV, raising=False)
    assert compare_setting(ReportConfig()) is None            # the default pair
    monkeypatch.setenv(COMPARE_ENV, " 2021-22, 2023-24 ")
    assert compare_setting(ReportConfig()) == ["2021-22", "2023-24"]
    assert compare_setting(ReportConfig(compare_years=[Y1, Y2])) == [Y1, Y2]   # config first


def test_markdown_contents_links_have_anchors():
    _, md = report.render_report(make_report_inputs())
    links = re.findall(r"\]\(#([^)]+)\)", md)
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
    assert len(links) >= 10 and set(links) <= anchors
    assert '| <a id="q-worked-sustainability"></a>**Sustainability · Scale (Coburn)' in md
