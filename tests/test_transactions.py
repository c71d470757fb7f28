"""Tables of one stage are replaced as one unit (issue 15.3): `replace_many` writes every slice
in one DuckDB transaction, so a failure half-way (a bad frame, a killed step, the views failing)
leaves every table of the stage as it was, and another connection never sees a mix."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.core.warehouse import catalog
from pipeline.core.warehouse import connection as wh


def _final(answer: str, year: str = "2020-21") -> pd.DataFrame:
    frame = catalog.empty_frame("coding.final_codes").astype(object)
    frame.loc[0] = {"answer_id": answer, "school_year": year, "question_id": "worked",
                    "framework": "scale", "dimension": "depth", "code_id": "collaboration",
                    "provenance": "agreed", "decided_by": "a+b", "discrepancy_id": None}
    return frame


def _disc(answer: str, year: str = "2020-21") -> pd.DataFrame:
    frame = catalog.empty_frame("coding.discrepancies").astype(object)
    frame.loc[0] = {"discrepancy_id": "D" + answer, "answer_id": answer, "school_year": year,
                    "question_id": "worked", "framework": "scale", "dimension": "depth",
                    "code_id": "collaboration", "answer_text": "t", "coder_a": "a",
                    "decision_a": "applied", "coder_b": "b", "decision_b": "not applied",
                    "keyword_applied": False, "keyword_evidence": ""}
    return frame


def _ids(con, table):
    return sorted(r[0] for r in con.execute(f"select answer_id from {table}").fetchall())


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    wh.replace_many(con, [("coding.discrepancies", _disc("Aold"), None),
                          ("coding.final_codes", _final("Aold"), None)])
    yield con
    con.close()


def test_all_slices_are_replaced_together(con):
    year = {"school_year": "2020-21"}
    counts = wh.replace_many(con, [("coding.discrepancies", _disc("Anew"), year),
                                   ("coding.final_codes", _final("Anew"), year)])
    assert counts == {"coding.discrepancies": 1, "coding.final_codes": 1}
    assert _ids(con, "coding.discrepancies") == _ids(con, "coding.final_codes") == ["Anew"]


def test_a_failing_second_table_leaves_the_first_untouched(con):
    broken = _final("Anew").assign(answer_id=None)  # NOT NULL: the insert fails
    with pytest.raises(duckdb.ConstraintException):
        wh.replace_many(con, [("coding.discrepancies", _disc("Anew"), None),
                              ("coding.final_codes", broken, None)])
    assert _ids(con, "coding.discrepancies") == _ids(con, "coding.final_codes") == ["Aold"]


def test_a_failure_after_the_writes_rolls_them_back(con):
    def views_fail(_con):
        raise KeyboardInterrupt  # a killed step: not even an Exception

    with pytest.raises(KeyboardInterrupt):
        wh.replace_many(con, [("coding.discrepancies", _disc("Anew"), None),
                              ("coding.final_codes", _final("Anew"), None)], after=views_fail)
    assert _ids(con, "coding.discrepancies") == _ids(con, "coding.final_codes") == ["Aold"]


def test_another_connection_sees_all_old_until_the_commit(tmp_path):
    path = tmp_path / "wh.duckdb"
    writer = duckdb.connect(str(path))
    wh.replace_many(writer, [("coding.discrepancies", _disc("Aold"), None),
                             ("coding.final_codes", _final("Aold"), None)])
    reader = writer.cursor()  # a second connection to the same database

    def look(_con):  # runs inside the transaction, after both tables were written
        seen.append((_ids(reader, "coding.discrepancies"), _ids(reader, "coding.final_codes")))

    seen: list = []
    wh.replace_many(writer, [("coding.discrepancies", _disc("Anew"), None),
                             ("coding.final_codes", _final("Anew"), None)], after=look)
    assert seen == [(["Aold"], ["Aold"])]
    assert _ids(reader, "coding.discrepancies") == _ids(reader, "coding.final_codes") == ["Anew"]
    writer.close()


def test_replace_rows_is_one_slice_of_replace_many(con):
    wh.replace_rows(con, "coding.final_codes", _final("Ax", "2023-24"), {"school_year": "2023-24"})
    assert _ids(con, "coding.final_codes") == ["Aold", "Ax"]
