"""A year's rows written export file by export file (core/warehouse/file_rows.py) and staging's
queries around it (core/ingest/staged_rows.py)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pytest

from pipeline.core.ingest import raw, staged_rows, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy.redact import load_roster
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import file_rows
from tests.helpers import SAMPLE

YEAR = "2023-24"
TABLE = "raw.survey_rows"
SLICE = file_rows.Slice(TABLE)
WHEN = datetime(2024, 7, 1, 12, 0)


def _rows(file: str, n: int, text: str = "x") -> pd.DataFrame:
    return pd.DataFrame({"school_year": YEAR, "file_name": file, "file_sha256": "s" + file,
                         "row_number": range(2, n + 2), "reader": "csv",
                         "record": [f'{{"a": "{text}{i}"}}' for i in range(n)],
                         "loaded_at": WHEN})


def _table(con) -> pd.DataFrame:
    return con.execute(f"select file_name, row_number, record from {TABLE} "
                       "order by rowid").df()


@pytest.fixture
def con():
    con = duckdb.connect()
    wh.ensure_tables(con, [TABLE])
    return con


def _write(con, cache, keys, frames_by_file, values=None, in_order=False, record=None):
    plan = file_rows.plan(con, cache, "t", YEAR, keys, [SLICE], values, in_order=in_order)
    new = [frames_by_file[f] for f in plan.stale]
    file_rows.write(con, plan, {TABLE: pd.concat(new) if new else _rows("none", 0)}, cache,
                    record=record)
    return plan


def test_only_stale_files_are_written_and_the_table_equals_a_whole_write(con, tmp_path):
    cache = ResultCache(tmp_path, max_files=100)
    frames = {"a.csv": _rows("a.csv", 3), "b.csv": _rows("b.csv", 2), "c.csv": _rows("c.csv", 4)}
    keys = {"a.csv": "ka", "b.csv": "kb", "c.csv": "kc"}
    assert _write(con, cache, keys, frames).stale == ["a.csv", "b.csv", "c.csv"]
    whole = _table(con)

    again = _write(con, cache, keys, frames)
    assert again.stale == [] and set(again.current) == set(keys)
    pd.testing.assert_frame_equal(_table(con), whole)

    # b.csv's key moved (its bytes changed): only b's rows are replaced
    frames["b.csv"] = _rows("b.csv", 5, "new")
    keys["b.csv"] = "kb2"
    assert _write(con, cache, keys, frames).stale == ["b.csv"]
    expected = pd.concat([frames[f] for f in ("a.csv", "b.csv", "c.csv")])
    got = _table(con)
    assert sorted(map(tuple, got.values.tolist())) == sorted(
        map(tuple, expected[["file_name", "row_number", "record"]].values.tolist()))

    # c.csv left the year: its rows go; nothing else is written
    del keys["c.csv"]
    assert _write(con, cache, keys, frames).stale == []
    assert set(_table(con)["file_name"]) == {"a.csv", "b.csv"}


def test_rows_changed_behind_the_record_a_damaged_record_and_a_failed_check(con, tmp_path):
    cache = ResultCache(tmp_path, max_files=100)
    frames = {"a.csv": _rows("a.csv", 3), "b.csv": _rows("b.csv", 2)}
    keys = {"a.csv": "ka", "b.csv": "kb"}
    _write(con, cache, keys, frames)
    con.execute(f"update {TABLE} set record = ? where file_name = 'a.csv' "
                "and row_number = 2", ['"edited"'])
    assert _write(con, cache, keys, frames).stale == ["a.csv"]   # a hand edit is not trusted
    assert '"edited"' not in set(_table(con)["record"])

    for entry in tmp_path.glob("t-*.bin"):
        entry.write_bytes(entry.read_bytes()[:-3])   # damaged: its digest does not match
    assert _write(con, cache, keys, frames).stale == ["a.csv", "b.csv"]

    # rows written but not recorded (their check failed) are written again next time
    keys = {"a.csv": "ka3", "b.csv": "kb"}
    assert _write(con, cache, keys, frames, record=set()).stale == ["a.csv"]
    assert _write(con, cache, keys, frames).stale == ["a.csv"]
    assert len(_table(con)) == 5


def test_in_order_keeps_the_files_order_and_a_shared_label_shares_staleness(con, tmp_path):
    cache = ResultCache(tmp_path, max_files=100)
    frames = {f: _rows(f, 2, f) for f in ("a.csv", "b.csv", "c.csv")}
    keys = {"a.csv": "ka", "b.csv": "kb", "c.csv": "kc"}
    _write(con, cache, keys, frames, in_order=True)
    whole = _table(con)
    keys["b.csv"] = "kb2"   # the middle file: it and every file after it
    assert _write(con, cache, keys, frames, in_order=True).stale == ["b.csv", "c.csv"]
    pd.testing.assert_frame_equal(_table(con), whole)   # rows in the files' order

    # a table naming two files alike (a label): both are written when one is stale
    con.execute(f"delete from {TABLE}")
    shared = {f: {TABLE: "same.csv"} for f in ("a.csv", "b.csv")}
    labelled = {f: frames[f].assign(file_name=shared.get(f, {}).get(TABLE, f)) for f in frames}
    _write(con, cache, keys, labelled, values=shared)
    assert _write(con, cache, keys, labelled, values=shared).stale == []
    keys["a.csv"] = "ka2"
    assert _write(con, cache, keys, labelled, values=shared).stale == ["a.csv", "b.csv"]
    assert len(_table(con)) == 6
    # b.csv leaves the year: a.csv, which shared its label, is written again without b's rows
    del keys["b.csv"]
    assert _write(con, cache, keys, labelled, values=shared).stale == ["a.csv"]
    got = _table(con)
    assert len(got) == 4 and set(got["record"]) == set(labelled["a.csv"]["record"]) | set(
        labelled["c.csv"]["record"])
    assert _write(con, cache, keys, labelled, values=shared).stale == []

    # FilePlan.only: a file that stops loading takes its label-mates with it
    keys = {"a.csv": "ka2", "b.csv": "kb9"}
    _write(con, cache, keys, labelled, values=shared)
    planned = file_rows.plan(con, cache, "t", YEAR, keys, [SLICE], shared)
    assert planned.stale == [] and planned.only({"a.csv"}).stale == ["a.csv"]


def test_session_dates_in_sql_equal_stagings_and_the_year_key_is_checked(con):
    folder = SAMPLE / "landing" / YEAR
    data = raw.read_year(folder)
    staged = staging.stage_year(data.export_files, data.survey_rows,
                                load_mapping(folder / "mapping.yaml"),
                                load_roster(SAMPLE / "roster.csv"), salt="t", staged_at=WHEN)
    answers = staged.answers.copy()
    answers.loc[answers.index[:40], "session_number"] = pd.NA   # some without a session
    expected = staging._session_dates(answers)
    wh.replace_rows(con, "staging.answers", answers.assign(session_date=None),
                    {"school_year": YEAR})
    assert staged_rows.update_session_dates(con, YEAR) == len(answers)
    got = con.execute("select answer_id, session_date from staging.answers").df()
    want = pd.Series(pd.to_datetime(list(expected)), index=answers["answer_id"])
    pd.testing.assert_series_equal(want[got["answer_id"]].reset_index(drop=True),
                                   pd.to_datetime(got["session_date"]), check_names=False,
                                   check_dtype=False)
    assert staged_rows.update_session_dates(con, YEAR) == 0

    assert staged_rows.key_duplicates(con, YEAR) == {"answer_id": 0,
                                                     "response_id, question_id": 0}
    con.execute("insert into staging.answers select * from staging.answers limit 1")
    assert staged_rows.key_duplicates(con, YEAR) == {"answer_id": 1,
                                                     "response_id, question_id": 1}
