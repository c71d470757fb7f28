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


def test_the_final_codes_of_some_answers_are_those_of_their_whole_year(tmp_path, monkeypatch):
    """human_final_codes, which the suggestions train on: a year's final codes as
    reconcile_year works them out with no stand-in (agreed, adjudicated, unresolved), and, given
    only some answers' rows, exactly those answers' codes of the whole year: also when the
    rows given hold one coder's units (an answer only one coder saw, with or without a code)."""
    from pipeline.core.reconciliation.discrepancies import discrepancies
    from pipeline.core.reconciliation.final_codes import final_codes
    from pipeline.defs.reconciliation import human_final_codes, year_adjudications
    from tests.test_reconcile import ANSWERS, APPS, KEYWORD, UNITS, apps

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    paths = _paths(tmp_path)
    year = "2020-21"
    answers = pd.concat([ANSWERS, pd.DataFrame(
        [("A6", year, "worked", "Planning time"), ("A7", year, "improve", "Nothing")],
        columns=ANSWERS.columns)], ignore_index=True)
    human = pd.concat([APPS, apps(("jm", "A6", "time_allocated"))], ignore_index=True)
    human = human.merge(answers[["answer_id", "school_year"]], on="answer_id")
    year_units = pd.concat([UNITS, pd.DataFrame(
        [("A6", "jm", "worked", year), ("A7", "jm", "improve", year)], columns=UNITS.columns)],
        ignore_index=True)
    disc = discrepancies(human, year_units, answers, KEYWORD, "jm", "ak")
    (tmp_path / "coding" / "adjudications.csv").write_text(
        "discrepancy_id,decision,reason,adjudicator\n"
        f"{disc.at[0, 'discrepancy_id']},apply,clear,jm+ak\n")
    whole = human_final_codes(paths, human, year_units, answers, {year: ["ak", "jm"]})
    of_year = [f[f["school_year"] == year] for f in (human, year_units, answers)]
    disc = discrepancies(*of_year, KEYWORD, "ak", "jm")   # as reconcile_year gives them
    want = final_codes(of_year[0], of_year[1], year_adjudications(paths, disc), disc,
                       of_year[0].iloc[:0].assign(provenance=None, decided_by=None),
                       of_year[2])
    pd.testing.assert_frame_equal(whole, want.astype(object).where(want.notna(), None))
    assert set(whole["provenance"]) == {"agreed", "adjudicated", "unresolved"}
    ids = sorted(answers.loc[answers["school_year"] == year, "answer_id"])
    for some in ({"A1"}, {"A6"}, {"A7"}, {"A6", "A7"}, set(ids[::2]), set(ids[1::2]),
                 {"nope"}, set(ids)):
        def only(frame, some=some):
            return lambda y: frame[(frame["school_year"] == y) & frame["answer_id"].isin(some)]
        got = human_final_codes(paths, only(human), only(year_units), only(answers),
                                {year: ["ak", "jm"]}, only=some)
        pd.testing.assert_frame_equal(
            got, whole[whole["answer_id"].isin(some)].reset_index(drop=True))
    assert not (tmp_path / "cache" / "human_final_codes").exists()   # nothing kept


def test_training_codes_read_from_the_warehouse_are_the_whole_years_codes(tmp_path,
                                                                          monkeypatch):
    """suggestions.training_codes selects the sample's rows of each other year in DuckDB: the
    same codes as every other year's whole final codes cut to the sample; the trained year
    and a year with one coder give none."""
    from pipeline.core.reconciliation.discrepancies import discrepancies
    from pipeline.core.suggest import stage
    from pipeline.defs.reconciliation import human_final_codes
    from pipeline.defs.suggestions import training_codes
    from tests.test_reconcile import ANSWERS, APPS, KEYWORD, UNITS

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    paths = _paths(tmp_path)
    human = APPS.merge(ANSWERS[["answer_id", "school_year"]], on="answer_id")
    disc = discrepancies(APPS, UNITS, ANSWERS, KEYWORD, "jm", "ak")
    (tmp_path / "coding" / "adjudications.csv").write_text(
        "discrepancy_id,decision,reason,adjudicator\n"
        f"{disc.at[0, 'discrepancy_id']},apply,clear,jm+ak\n")
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")
    for table, frame in (("staging.answers", ANSWERS.iloc[::-1]), ("coding.coder_units", UNITS),
                         ("coding.human_applications", human)):
        con.register("frame", frame)
        con.execute(f"create table {table} as select * from frame")
        con.unregister("frame")
    year = "2020-21"   # coded by both; 2023-24's units hold one coder
    whole = stage.human_reference(human_final_codes(paths, human, UNITS, ANSWERS,
                                                    {year: ["ak", "jm"]}))
    assert set(whole["answer_id"]) == {"A1", "A3"}   # agreed; adjudicated
    ids = sorted(ANSWERS["answer_id"])
    for some in (set(ids), {"A1"}, {"A2", "A3"}, {"A4", "A5"}, set()):
        want = whole[whole["answer_id"].isin(some)].reset_index(drop=True)
        got = training_codes(con, paths, "2024-25", some)
        pd.testing.assert_frame_equal(got, want)
    assert training_codes(con, paths, year, set(ids)).empty   # the trained year: none


def test_the_training_key_follows_the_other_years_coded_rows():
    """year_training's key fingerprints the other years' coded answers, coder units and human
    applications (training_rows_print): an edit of another year's coded rows changes it; an
    answer nobody coded and the year being trained do not."""
    from pipeline.defs.suggestions import training_rows_print

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
    first = training_rows_print(con, "2023-24")
    con.execute("update staging.answers set answer_text = 'e' where answer_id = 'C1'")
    con.execute("update coding.human_applications set code_id = 'x' where answer_id = 'C1'")
    con.execute("update staging.answers set answer_text = 'f' where answer_id = 'A2'")  # uncoded
    assert training_rows_print(con, "2023-24") == first
    for edit in ("update staging.answers set answer_text = 'g' where answer_id = 'A1'",
                 "update coding.coder_units set coder = 'xx' where answer_id = 'B1' "
                 "and coder = 'ak'",
                 "update coding.human_applications set code_id = 'x' where answer_id = 'A1'"):
        before = training_rows_print(con, "2023-24")
        con.execute(edit)
        assert training_rows_print(con, "2023-24") != before, edit


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
    assert training_codes(con, _paths(tmp_path), "2023-24", set()).empty
