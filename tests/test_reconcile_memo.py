"""A hand-coded year's discrepancies and final codes are kept under coded_year_key: what they
are made of, and nothing a refresh adding an uncoded session changes."""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.defs.reconciliation import coded_year_key
from pipeline.defs.resources import ProjectPaths


def _paths(tmp_path, roster="full_name,role\nMarisol Okafor,external coach\n"):
    (tmp_path / "coding").mkdir(exist_ok=True)
    (tmp_path / "roster.csv").write_text(roster)
    return ProjectPaths(landing_dir=str(tmp_path), roster_path=str(tmp_path / "roster.csv"),
                        coder_sheets_dir=str(tmp_path / "coding"),
                        reports_dir=str(tmp_path / "reports"), pseudonym_salt="t")


def _year():
    answers = pd.DataFrame({"answer_id": ["A1", "A2", "A3"], "school_year": "2023-24",
                            "session_number": [1, 1, 2], "answer_text": ["a", "b", "c"]})
    units = pd.DataFrame({"answer_id": ["A1", "A2", "A1", "A2"],
                          "coder": ["jm", "jm", "ak", "ak"], "school_year": "2023-24"})
    human = pd.DataFrame({"answer_id": ["A1"], "coder": ["jm"], "code_id": ["collaboration"],
                          "school_year": "2023-24"})
    keyword = pd.DataFrame({"answer_id": ["A1", "A3"], "code_id": ["collaboration", "time"],
                            "school_year": "2023-24"})
    codes = pd.DataFrame({"code_id": ["collaboration", "time"]})
    return codes, answers, units, human, keyword


def _key(paths, codes, answers, units, human, keyword, year="2023-24"):
    """coded_year_key over a warehouse holding these rows (and another year's, which the key
    never reads)."""
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")
    other = {"school_year": "2020-21"}
    for table, frame in (("staging.answers", answers), ("coding.coder_units", units),
                         ("coding.human_applications", human),
                         ("coding.keyword_applications", keyword)):
        con.register("frame", pd.concat([frame, frame.iloc[:1].assign(**other)]))
        con.execute(f"create table {table} as select * from frame")
        con.unregister("frame")
    try:
        return coded_year_key(con, paths, codes, year)
    finally:
        con.close()


def test_the_key_ignores_answers_nobody_coded_and_follows_everything_else(tmp_path):
    paths = _paths(tmp_path)
    codes, answers, units, human, keyword = _year()
    key = _key(paths, codes, answers, units, human, keyword)
    # a new session's answer and its keyword codes: same key
    late = pd.DataFrame({"answer_id": ["A9"], "school_year": "2023-24", "session_number": [3],
                         "answer_text": ["new"]})
    assert key == _key(paths, codes, pd.concat([answers, late]), units, human,
                       pd.concat([keyword, pd.DataFrame({"answer_id": ["A9"],
                                                         "code_id": ["time"],
                                                         "school_year": "2023-24"})]))
    assert key == _key(paths, codes, answers, units, human,
                       keyword[keyword["answer_id"] != "A3"])
    # the same rows in another order: the same key (the rows' hashes are summed)
    assert key == _key(paths, codes, answers.iloc[::-1], units.iloc[::-1], human, keyword)
    # what the year's codes are made of: a new key
    assert key != _key(paths, codes, answers.assign(answer_text=["x", "b", "c"]),
                       units, human, keyword)
    assert key != _key(paths, codes, answers, units.iloc[:3], human, keyword)
    assert key != _key(paths, codes, answers, units, human.iloc[:0], keyword)
    assert key != _key(paths, codes, answers, units, human, keyword.iloc[1:])
    assert key != _key(paths, codes.iloc[:1], answers, units, human, keyword)
    assert key != _key(paths, codes, answers, units, human, keyword, year="2020-21")
    (tmp_path / "coding" / "adjudications.csv").write_text("discrepancy_id,decision\n")
    with_file = _key(paths, codes, answers, units, human, keyword)
    assert with_file != key
    (tmp_path / "coding" / "adjudications.csv").write_text("discrepancy_id,decision\nD1,apply\n")
    assert _key(paths, codes, answers, units, human, keyword) != with_file
    (tmp_path / "other.csv").write_text("full_name,role\nPriya Raman,teacher\n")
    other_roster = ProjectPaths(**{**paths.model_dump(),
                                   "roster_path": str(tmp_path / "other.csv")})
    assert _key(other_roster, codes, answers, units, human, keyword) != with_file


def test_human_final_codes_read_back_equal_the_computed_ones(tmp_path, monkeypatch):
    """The other years' human final codes the suggestions train on (human_final_codes) are
    kept per year; a second call reads them back, equal to the first, and a changed
    adjudication file is a new key."""
    from pipeline.core.reconciliation.discrepancies import discrepancies
    from pipeline.defs.reconciliation import human_final_codes
    from tests.test_reconcile import ANSWERS, APPS, KEYWORD, UNITS

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    paths = _paths(tmp_path)
    apps = APPS.merge(ANSWERS[["answer_id", "school_year"]], on="answer_id")
    disc = discrepancies(APPS, UNITS, ANSWERS, KEYWORD, "jm", "ak")
    adjudications = tmp_path / "coding" / "adjudications.csv"
    adjudications.write_text("discrepancy_id,decision,reason,adjudicator\n"
                             f"{disc.at[0, 'discrepancy_id']},apply,clear,jm+ak\n")
    fresh = human_final_codes(paths, apps, UNITS, ANSWERS)
    assert list(fresh["provenance"]) == ["agreed", "adjudicated", "unresolved"]
    kept = list((tmp_path / "cache" / "human_final_codes").glob("*.parquet"))
    assert len(kept) == 1
    pd.testing.assert_frame_equal(human_final_codes(paths, apps, UNITS, ANSWERS), fresh)
    adjudications.write_text("discrepancy_id,decision,reason,adjudicator\n"
                             f"{disc.at[0, 'discrepancy_id']},do not apply,no,jm+ak\n")
    changed = human_final_codes(paths, apps, UNITS, ANSWERS)
    assert len(list((tmp_path / "cache" / "human_final_codes").glob("*.parquet"))) == 2
    assert list(changed["code_id"]) == ["collaboration", "time_allocated"]   # not applied


def test_human_final_codes_keyed_by_the_callers_row_fingerprints(tmp_path, monkeypatch):
    """With `year_rows` (the warehouse's fingerprint of each year's rows) the year is kept
    under that instead of digests of its frames: the same codes as without it, read back
    while the fingerprint is the same, worked out again (a new entry) when it changes."""
    from pipeline.defs.reconciliation import human_final_codes
    from tests.test_reconcile import ANSWERS, APPS, UNITS

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    paths = _paths(tmp_path)
    apps = APPS.merge(ANSWERS[["answer_id", "school_year"]], on="answer_id")
    kept = tmp_path / "cache" / "human_final_codes"
    by_frames = human_final_codes(paths, apps, UNITS, ANSWERS)
    year = "2020-21"   # the year both coders coded (2023-24 has one: no final codes)
    by_rows = human_final_codes(paths, apps, UNITS, ANSWERS, year_rows={year: "rows v1"})
    pd.testing.assert_frame_equal(by_rows, by_frames)
    assert len(list(kept.glob("*.parquet"))) == 2
    # read back under the fingerprint alone: the frames given no longer matter
    stored = human_final_codes(paths, apps.iloc[:0], UNITS, ANSWERS.iloc[:0],
                               year_rows={year: "rows v1"})
    pd.testing.assert_frame_equal(stored, by_frames)
    assert len(list(kept.glob("*.parquet"))) == 2   # read back, nothing new kept
    human_final_codes(paths, apps, UNITS, ANSWERS, year_rows={year: "rows v2"})
    assert len(list(kept.glob("*.parquet"))) == 3
    # the applications as a function of the year: read only for a year not kept
    asked = []

    def of_year(y):
        asked.append(y)
        return apps[apps["school_year"] == y]

    pd.testing.assert_frame_equal(
        human_final_codes(paths, of_year, UNITS, ANSWERS, year_rows={year: "rows v2"}),
        by_frames)
    assert asked == []
    pd.testing.assert_frame_equal(
        human_final_codes(paths, of_year, UNITS, ANSWERS, year_rows={year: "rows v3"}),
        by_frames)
    assert asked == [year]
    # the units and answers as functions of the year too (`years`: those with two coders):
    # read only for a year not kept; `only` keeps the codes of some answers
    read = []

    def reader(frame, name):
        def of(y):
            read.append((name, y))
            return frame[frame["school_year"] == y]
        return of

    args = (paths, of_year, reader(UNITS, "units"), reader(ANSWERS, "answers"))
    pd.testing.assert_frame_equal(
        human_final_codes(*args, year_rows={year: "rows v3"}, years=[year]), by_frames)
    assert read == []
    pd.testing.assert_frame_equal(
        human_final_codes(*args, year_rows={year: "rows v4"}, years=[year]), by_frames)
    assert sorted(set(read)) == [("answers", year), ("units", year)]
    # `only`: just those answers' rows reconciled, kept under a key naming them (worked
    # out, then read back); the same rows as every answer's codes keep of them
    ids = sorted(set(ANSWERS["answer_id"]))
    for some in ({by_frames.at[0, "answer_id"]}, set(ids[::2]), set(ids[1::2]), {"nope"},
                 set(ids)):
        want = by_frames[by_frames["answer_id"].isin(some)].reset_index(drop=True)
        for _twice in range(2):
            pd.testing.assert_frame_equal(
                human_final_codes(*args, year_rows={year: "rows v4"}, years=[year], only=some),
                want)
    assert len(list(kept.glob("*.parquet"))) == 5 + 5


def test_coded_year_rows_follow_each_other_years_rows():
    """The training's per-year fingerprints (suggestions.coded_year_rows): one per other
    year, changed by an edit of that year's units, applications or coded answers, not by
    another year's rows or by the year being trained."""
    from pipeline.defs.suggestions import coded_year_rows, other_year_prints

    con = duckdb.connect()
    con.execute("create schema staging; create schema coding; "
                "create table staging.answers (answer_id varchar, school_year varchar, "
                "answer_text varchar); "
                "create table coding.coder_units (answer_id varchar, coder varchar, "
                "school_year varchar); "
                "create table coding.human_applications (answer_id varchar, coder varchar, "
                "code_id varchar, school_year varchar)")
    con.executemany("insert into staging.answers values (?, ?, ?)", [
        ("A1", "2021-22", "a"), ("A2", "2021-22", "b"), ("B1", "2022-23", "c"),
        ("C1", "2023-24", "d")])
    con.executemany("insert into coding.coder_units values (?, ?, ?)", [
        (a, c, y) for a, y in (("A1", "2021-22"), ("B1", "2022-23"), ("C1", "2023-24"))
        for c in ("jm", "ak")])
    con.executemany("insert into coding.human_applications values (?, ?, ?, ?)", [
        ("A1", "jm", "collaboration", "2021-22"), ("B1", "ak", "time", "2022-23"),
        ("C1", "jm", "time", "2023-24")])
    first = coded_year_rows(other_year_prints(con, "2023-24"))
    assert set(first) == {"2021-22", "2022-23"}
    # summed over the years: each whole selection's fingerprint (year_training's key)
    from pipeline.core.warehouse.fingerprint import query_fingerprint
    from pipeline.defs.suggestions import CODED_ELSEWHERE, _total
    answers, units, _apps = other_year_prints(con, "2023-24")
    assert _total(answers) == query_fingerprint(
        con, f"select rowid, * {CODED_ELSEWHERE}", ["2023-24", "2023-24"])
    assert _total(units) == query_fingerprint(
        con, "select rowid, * from coding.coder_units where school_year <> ?", ["2023-24"])
    assert _total(units)[0] == 4
    con.execute("update staging.answers set answer_text = 'e' where answer_id = 'C1'")
    con.execute("update staging.answers set answer_text = 'f' where answer_id = 'A2'")  # uncoded
    assert coded_year_rows(other_year_prints(con, "2023-24")) == first
    for edit in ("update staging.answers set answer_text = 'g' where answer_id = 'A1'",
                 "update coding.coder_units set coder = 'xx' where answer_id = 'A1' "
                 "and coder = 'ak'",
                 "update coding.human_applications set code_id = 'x' where answer_id = 'A1'"):
        before = coded_year_rows(other_year_prints(con, "2023-24"))
        con.execute(edit)
        after = coded_year_rows(other_year_prints(con, "2023-24"))
        assert after["2021-22"] != before["2021-22"], edit
        assert after["2022-23"] == before["2022-23"], edit


def test_the_training_pool_draws_in_duckdb_what_training_sample_draws_from_frames():
    """suggestions.training_pool: the other years' substantive answers both coders saw, the
    ones with the smallest sha256 of their id, in the table's order, and how many answers
    both coders saw: what stage.training draws from those answers read whole (its sample and
    the count `can_train` looks at), under the cap and over it."""
    import random

    from pipeline.core.suggest import stage
    from pipeline.defs.suggestions import training_pool

    rng = random.Random(7)
    years = ("2021-22", "2022-23", "2023-24")
    answers = pd.DataFrame({
        "answer_id": [f"A{i:05d}" for i in range(600)],
        "school_year": [years[i % 3] for i in range(600)],
        "answer_text": [f"text {i}" for i in range(600)],
        "non_substantive": [i % 7 == 0 for i in range(600)]}
    ).sample(frac=1, random_state=3).reset_index(drop=True)   # table order: shuffled
    seen_by = {a: rng.choice([("jm",), ("jm", "ak"), ("jm", "ak"), ()])
               for a in answers["answer_id"]}
    units = pd.DataFrame([(a, c, y) for a, y in zip(answers["answer_id"],
                                                    answers["school_year"], strict=True)
                          for c in seen_by[a]], columns=["answer_id", "coder", "school_year"])
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")
    con.execute("create table staging.answers as select * from answers")
    con.execute("create table coding.coder_units as select * from units")
    year = "2023-24"
    others = answers[(answers["school_year"] != year)
                     & answers["answer_id"].isin(stage.both_coders_saw(
                         units[units["school_year"] != year]))]
    for cap in (None, 50, 10_000):
        sample, available = training_pool(con, year, cap)
        expected = stage.hashed_sample(stage.substantive(others), cap)
        assert available == len(others)
        pd.testing.assert_frame_equal(sample, expected.reset_index(drop=True),
                                      check_dtype=False)
    assert len(training_pool(con, year, 50)[0]) == 50


def test_no_coder_units_yet_means_no_training(tmp_path, monkeypatch):
    """Before any coder sheet is imported (no coding.coder_units): an empty sample and no
    training codes, not an error (the suggestions are then zero-shot)."""
    from pipeline.defs.suggestions import training_codes, training_pool

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    con = duckdb.connect()
    con.execute("create schema staging; create table staging.answers (answer_id varchar, "
                "school_year varchar, answer_text varchar, non_substantive boolean)")
    con.execute("insert into staging.answers values ('A1', '2022-23', 'a', false)")
    sample, available = training_pool(con, "2023-24")
    assert sample.empty and available == 0
    assert training_codes(con, _paths(tmp_path), "2023-24", {}, set()).empty
