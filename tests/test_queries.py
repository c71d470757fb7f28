"""Every warehouse/queries/*.sql runs against a small DuckDB built from hand-made frames and the
marts computed from them, and returns the expected columns (and rows where they are known)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_marts import Y1, Y2, make_answers, make_codes, make_final_codes
from test_quotes import make_applications
from test_report import make_keyword_quality

from pipeline.core.marts import marts, quotes, year_comparison
from pipeline.core.warehouse import connection as warehouse

QUERIES = Path(__file__).resolve().parents[1] / "warehouse" / "queries"


def _agreement() -> pd.DataFrame:
    rows = []
    for code, alpha in (("collaboration", 0.8), ("coaching_support", 0.5)):
        rows.append({"coder_a": "coder_1", "coder_b": "coder_2", "level": "code",
                     "framework": "scale", "dimension": "x", "code_id": code,
                     "question_id": None, "school_year": None, "n_units": 10,
                     "prevalence": 0.2, "percent_agreement": 0.9, "cohen_kappa": alpha,
                     "krippendorff_alpha": alpha, "gwet_ac1": 0.9, "pabak": 0.8})
    rows.append({**rows[0], "level": "overall", "framework": None, "code_id": None})
    return pd.DataFrame(rows)


def _discrepancies() -> pd.DataFrame:
    return pd.DataFrame([{
        "discrepancy_id": "D1", "answer_id": "a8", "school_year": Y2, "question_id": "worked",
        "framework": "scale", "dimension": "sustainability", "code_id": "coaching_support",
        "answer_text": "...", "coder_a": "coder_1", "decision_a": "applied",
        "coder_b": "coder_2", "decision_b": "not applied", "keyword_applied": True,
        "keyword_evidence": None}])


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("wh") / "survey.duckdb"
    con = duckdb.connect(str(path))
    ans, fc, codes = make_answers(), make_final_codes(), make_codes()
    warehouse.ensure_tables(con, ["staging.answers", "raw.quarantine", "raw.export_files"])
    warehouse.replace_rows(con, "staging.answers", ans)
    quarantine = pd.DataFrame([
        {"school_year": Y1, "file_name": f, "row_number": r, "column_name": None,
         "stage": "staging", "level": "row", "reason": reason, "quarantined_at": None}
        for f, r, reason in (("s1.csv", 3, "unknown school"), ("s2.csv", 4, "unknown school"),
                             ("s1.csv", 9, "ragged row"))])
    warehouse.replace_rows(con, "raw.quarantine", quarantine)
    con.execute("create schema coding")
    coding = {"final_codes": fc, "codebook_codes": codes, "agreement": _agreement(),
              # 13_coded_answers reads the keyword coder's table
              "keyword_applications": make_applications().query("coder == 'keyword'"),
              "discrepancies": _discrepancies(),
              "keyword_quality": make_keyword_quality()}
    for name, frame in coding.items():
        con.register("_f", frame)
        con.execute(f"create table coding.{name} as select * from _f")
        con.unregister("_f")
    # 13_coded_answers reads coding.suggestions and codebook_codes.dimension_label (added to a
    # table made without it, as in a warehouse built before the column existed)
    warehouse.ensure_tables(con, ["coding.suggestions", "coding.codebook_codes"])
    freq = marts.code_frequencies(fc, ans, codes)
    built = {
        "marts.code_frequencies": freq,
        "marts.code_trends": marts.code_trends(fc, ans, codes),
        "marts.year_over_year": year_comparison.year_over_year(freq),
        "marts.by_school": marts.by_school(fc, ans, codes),
        "marts.by_coach": marts.by_coach(fc, ans, codes),
        "marts.exemplar_quotes": quotes.exemplar_quotes(fc, ans, make_applications(), codes),
    }
    for table, frame in built.items():  # through the DDL: the frames fit the contract
        warehouse.register_table(table, marts.MART_TABLES[table])
        warehouse.replace_rows(con, table, frame)
        assert warehouse.table_columns(con, table) == list(frame.columns)
    yield con
    con.close()


EXPECTED_COLUMNS = {
    "01_top_codes_by_year": ["school_year", "question_id", "rank", "framework", "dimension",
                             "code_id", "label", "n_answers", "rate_per_100", "n_schools",
                             "coding_source"],
    "02_codes_that_grew": ["question_id", "framework", "dimension", "code_id", "label",
                           "year_a", "rate_a", "year_b", "rate_b", "diff_per_100",
                           "diff_ci_low", "diff_ci_high", "test", "p_value", "p_adjusted",
                           "significant_fdr_5pct", "mixed_methods"],
    "03_agreement_by_code": ["coder_a", "coder_b", "framework", "dimension", "code_id", "label",
                             "n_units", "prevalence", "percent_agreement", "cohen_kappa",
                             "krippendorff_alpha", "gwet_ac1", "pabak"],
    "04_school_profile": ["school_id", "school_year", "question_id", "level", "framework",
                          "dimension", "code_id", "label", "n_answers", "n_substantive",
                          "rate_per_100"],
    "05_answers_with_no_code": ["school_year", "question_id", "answer_id", "school_id",
                                "session_number", "answer_text"],
    "06_unresolved_discrepancies": ["school_year", "question_id", "answer_id", "framework",
                                    "dimension", "code_id", "label", "coder_a", "decision_a",
                                    "coder_b", "decision_b", "answer_text"],
    "07_quarantine_by_reason": ["school_year", "stage", "level", "reason", "n_rows", "n_files",
                                "example_file"],
    "08_keyword_precision_by_code": ["framework", "dimension", "code_id", "label", "n_answers",
                                     "tp", "fp", "fn", "human_support", "precision", "recall",
                                     "f1"],
    "09_dimension_trends_by_session": ["school_year", "session_number", "question_id",
                                       "framework", "dimension", "n_answers", "n_substantive",
                                       "rate_per_100"],
    "10_coding_source_by_year": ["school_year", "n_agreed", "n_adjudicated", "n_unresolved",
                                 "n_keyword", "coding_source"],
    "11_quotes_for_a_code": ["question_id", "framework", "dimension", "code_id", "label",
                             "rank", "school_year", "session_number", "quote", "provenance",
                             "reason"],
    "12_coach_summary_suppressed": ["coach_id", "school_year", "question_id", "framework",
                                    "coded_answers", "substantive_answers", "rate_per_100"],
    "13_coded_answers": ["answer_id", "school_year", "session_number", "school_id", "role",
                         "question_id", "question", "answer_text", "non_substantive", "n_codes",
                         "codes", "categories", "provenance", "decided_by", "evidence",
                         "undecided"],
}


def run(con, name: str) -> pd.DataFrame:
    return con.execute((QUERIES / f"{name}.sql").read_text(encoding="utf-8")).df()


def test_every_query_is_listed_documented_and_runs(con):
    files = sorted(p.stem for p in QUERIES.glob("*.sql"))
    assert len(files) >= 8 and files == sorted(EXPECTED_COLUMNS)
    for name in files:
        text = (QUERIES / f"{name}.sql").read_text(encoding="utf-8")
        assert text.startswith("-- ") and "?" in text.split("\n")[0], name
        assert list(run(con, name).columns) == EXPECTED_COLUMNS[name], name


def test_top_codes_and_growth(con):
    top = run(con, "01_top_codes_by_year")
    first = top[(top.school_year == Y1) & (top.question_id == "worked")]
    assert list(first.code_id) == ["coaching_support", "collaboration"]
    assert list(first.n_answers) == [2, 2] and set(first.coding_source) == {"keyword"}
    grew = run(con, "02_codes_that_grew")
    assert set(zip(grew.question_id, grew.code_id, strict=True)) == {
        ("worked", "knowledgeable"), ("worked", "time_allocated"), ("improve", "time_allocated")}
    assert grew.mixed_methods.all() and not grew.significant_fdr_5pct.any()


def test_agreement_quality_and_sources(con):
    ag = run(con, "03_agreement_by_code")
    assert list(ag.code_id) == ["coaching_support", "collaboration"]
    assert ag.label.iloc[0] == "Coaching support"
    kq = run(con, "08_keyword_precision_by_code")
    assert list(kq.code_id.fillna("ALL")) == ["collaboration", "coaching_support", "ALL"]
    src = run(con, "10_coding_source_by_year")
    assert list(src.coding_source) == ["keyword", "human"]
    assert src.n_unresolved.tolist() == [0, 1] and src.n_keyword.tolist() == [5, 0]


def test_school_profile_default_and_variable(con):
    prof = run(con, "04_school_profile")
    assert set(prof.school_id) == {"school_a"} and len(prof)
    con.execute("set variable school_id = 'school_d'")
    try:
        prof = run(con, "04_school_profile")
    finally:
        con.execute("reset variable school_id")
    assert set(prof.school_id) == {"school_d"}
    assert set(prof.code_id.dropna()) == {"knowledgeable", "time_allocated"}


def test_uncoded_unresolved_and_quarantine(con):
    assert set(run(con, "05_answers_with_no_code").answer_id) == {"a4", "b2", "a8"}
    un = run(con, "06_unresolved_discrepancies")
    assert un[["answer_id", "code_id", "decision_a", "decision_b"]].values.tolist() == [
        ["a8", "coaching_support", "applied", "not applied"]]
    q = run(con, "07_quarantine_by_reason")
    assert q[["reason", "n_rows", "n_files"]].values.tolist() == [
        ["unknown school", 2, 2], ["ragged row", 1, 1]]


def test_trends_quotes_and_suppressed_coach_view(con):
    tr = run(con, "09_dimension_trends_by_session")
    assert len(tr) and tr.session_number.notna().all()
    q = run(con, "11_quotes_for_a_code")
    assert set(q.code_id) == {"coaching_support"} and len(q) == 4
    con.execute("set variable code_id = 'time_allocated'")
    try:
        q = run(con, "11_quotes_for_a_code")
    finally:
        con.execute("reset variable code_id")
    assert q.question_id.tolist() == ["improve", "improve", "worked"]
    coach = run(con, "12_coach_summary_suppressed")
    assert (coach.coded_answers == "<5").any()
    assert coach[coach.coded_answers == "<5"].rate_per_100.isna().all()
