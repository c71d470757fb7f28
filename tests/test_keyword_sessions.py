"""coding.keyword_applications written session by session (pipeline/core/coding/keyword_sessions.py
on pipeline/core/warehouse/session_rows.py): after every change the table holds what coding the
whole year at once gives, and only the sessions whose answers (or rows) changed are coded."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.core.coding import keyword_sessions
from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.coding.keyword import KEYWORD_COLUMNS, keyword_applications
from pipeline.core.result_cache import ResultCache

YEAR = "2023-24"
TEXTS = ["We collaborated and planned the unit together as a team.",
         "Honestly we ran out of time again.", "NA",
         "The coach listened and gave us clear next steps.",
         "Our norms helped us focus on student work.", "It was fine",
         "We tried it in a new team and built trust."]


@pytest.fixture(scope="module")
def books():
    return load_codebooks(Path(__file__).resolve().parents[1] / "codebooks")


def _answers() -> pd.DataFrame:
    rows = []
    for year, sessions in ((YEAR, [1, 2, 3, None]), ("2020-21", [1])):
        for s in sessions:
            for i, text in enumerate(TEXTS):
                rows.append({"answer_id": f"{year[:4]}-{s}-{i}", "school_year": year,
                             "question_id": "worked" if i % 2 else "improve",
                             "session_number": s, "answer_text": f"{text} ({s})",
                             "non_substantive": text == "NA"})
    frame = pd.DataFrame(rows)
    frame["session_number"] = frame["session_number"].astype("Int64")
    return frame


def _warehouse(answers: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")
    _load(con, answers)
    return con


def _load(con, answers: pd.DataFrame) -> None:
    con.register("frame", answers)
    con.execute("create or replace table staging.answers as select * from frame")
    con.unregister("frame")


def _table(con) -> pd.DataFrame:
    return con.execute("select * from coding.keyword_applications where school_year = ? "
                       "order by answer_id, framework, dimension, code_id", [YEAR]).df()


def _whole_year(con, books) -> pd.DataFrame:
    answers = con.execute("select * from staging.answers where school_year = ?", [YEAR]).df()
    want = keyword_applications(answers, books)[KEYWORD_COLUMNS]
    return want.sort_values(["answer_id", "framework", "dimension", "code_id"]).reset_index(
        drop=True)


def test_the_year_written_per_session_equals_the_year_coded_at_once(books, tmp_path):
    con = _warehouse(_answers())
    cache = ResultCache(tmp_path / "kept", max_files=100)

    def run(stale):
        done = keyword_sessions.code_year(con, books, YEAR, cache)
        assert done.plan.computed == stale
        pd.testing.assert_frame_equal(_table(con), _whole_year(con, books), check_dtype=False)
        return done

    every = [f"{YEAR} session {s}" for s in ("1", "2", "3", "?")]
    first = run(every)
    assert first.written == len(_table(con)) > 10
    assert run([]).written == 0                       # nothing changed: nothing coded
    edited = _answers()
    edited.loc[edited["answer_id"] == f"{YEAR[:4]}-2-0", "answer_text"] = "Ran out of time."
    _load(con, edited)
    run([f"{YEAR} session 2"])                        # one answer's text: its session only
    _load(con, edited[edited["session_number"].ne(3).fillna(True)
                      | edited["school_year"].ne(YEAR)])
    run([])                                           # a session withdrawn: its rows go
    assert not _table(con)["answer_id"].str.startswith(f"{YEAR[:4]}-3-").any()
    con.execute("update coding.keyword_applications set evidence = '[]' "
                "where answer_id = ?", [f"{YEAR[:4]}-1-0"])
    run([f"{YEAR} session 1"])                        # a row changed in the table: recoded
    other = con.execute("select count(*) from coding.keyword_applications "
                        "where school_year = '2020-21'").fetchone()[0]
    assert other == 0                                 # another year's rows: never touched
    no_cache = keyword_sessions.code_year(con, books, YEAR, None)
    assert len(no_cache.plan.computed) == 3           # without a cache: every session
    pd.testing.assert_frame_equal(_table(con), _whole_year(con, books), check_dtype=False)


def test_what_the_span_check_found_stays_with_a_kept_session(books, tmp_path, monkeypatch):
    """A session kept from an earlier run still counts the mismatches its rows had: the
    check covers every row of the year, not just the sessions coded this run."""
    con = _warehouse(_answers())
    cache = ResultCache(tmp_path / "kept", max_files=100)
    real = keyword_sessions.span_mismatches

    def one_bad(apps, answers):
        found = real(apps, answers)
        first = apps[apps["answer_id"] == f"{YEAR[:4]}-1-0"].head(1)
        return found + [{"answer_id": a, "code_id": c, "start": 0, "end": 1,
                         "matched_text": "x"} for a, c in zip(first["answer_id"],
                                                              first["code_id"], strict=True)]

    monkeypatch.setattr(keyword_sessions, "span_mismatches", one_bad)
    first = keyword_sessions.code_year(con, books, YEAR, cache)
    assert first.mismatches == 1 and first.sample[0]["answer_id"] == f"{YEAR[:4]}-1-0"
    monkeypatch.setattr(keyword_sessions, "span_mismatches", real)
    edited = _answers()
    edited.loc[edited["answer_id"] == f"{YEAR[:4]}-2-0", "answer_text"] = "Ran out of time."
    _load(con, edited)
    again = keyword_sessions.code_year(con, books, YEAR, cache)
    assert again.plan.computed == [f"{YEAR} session 2"]
    assert again.mismatches == 1                      # session 1's finding, from its record
    assert again.evidence_items == _table(con)["n_evidence"].sum()   # every session's


def test_unknown_codes_and_the_summary_come_from_the_table(books):
    con = _warehouse(_answers())
    keyword_sessions.code_year(con, books, YEAR, None)
    codes = pd.DataFrame([(b.framework, c.dimension, c.code_id) for b in books for c in b.codes],
                         columns=["framework", "dimension", "code_id"])
    assert keyword_sessions.unknown_codes(con, YEAR, codes).empty
    assert len(keyword_sessions.unknown_codes(con, YEAR, codes.iloc[1:])) == (
        _table(con)["code_id"] == codes.iloc[0]["code_id"]).sum()
    # any table of codes applied to answers (reconcile_year checks coding.final_codes so)
    con.execute("create table coding.final_codes as select answer_id, school_year, "
                "framework, dimension, code_id from coding.keyword_applications")
    dropped = _table(con)["code_id"].iloc[0]
    assert len(keyword_sessions.unknown_codes(con, YEAR, codes[codes["code_id"] != dropped],
                                              "coding.final_codes")) == (
        _table(con)["code_id"] == dropped).sum() > 0
    summary = keyword_sessions.year_summary(con, YEAR)
    table = _table(con)
    assert summary["rows"] == len(table)
    assert summary["answers_coded"] == table["answer_id"].nunique()
    assert summary["substantive"] == 4 * (len(TEXTS) - 1)
    assert summary["uncoded"] == summary["substantive"] - summary["answers_coded"]
    assert summary["per_code"]["answers"].sum() == len(table)
