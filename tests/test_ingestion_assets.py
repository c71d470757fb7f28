"""Ingestion assets run with dg.materialize on a tiny hand-made landing area."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.core.ingest import raw
from pipeline.defs import ingestion
from tests.helpers import SESSION_1, make_resources, write_landing


def resources(root: Path) -> dict:
    return make_resources(root)


def run_year(root: Path, year: str = "2020-21"):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", [year])
    return dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                          resources=resources(root), instance=instance, partition_key=year,
                          raise_on_error=False)


def query(root: Path, sql: str):
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_tiny_landing_lands_in_raw_and_staging(tiny_landing: Path):
    result = run_year(tiny_landing)
    assert result.success
    assert query(tiny_landing, "select count(*) from raw.survey_rows") == [(5,)]
    answers = query(tiny_landing, "select question_id, answer_text, non_substantive "
                                  "from staging.answers order by row_number, question_id desc")
    assert answers == [
        ("worked", "[External Coach name] helped us follow the process.", False),
        ("improve", "We ran out of time", False),
        ("worked", "NA", True),
        ("worked", "Thanks to [Name]'s data slides,\nwe collaborated", False),
        ("improve", "none", True),
    ]
    reasons = query(tiny_landing, "select row_number, level, reason from raw.quarantine "
                                  "order by row_number")
    assert [(r, lvl) for r, lvl, _ in reasons] == [(4, "row"), (5, "row")]
    assert "repeated submission" in reasons[0][2] and "session-01.csv row 3" in reasons[0][2]
    assert "no answer to either question" in reasons[1][2]
    # names stay in the raw layer only
    assert query(tiny_landing, "select count(*) from raw.redactions") == [(2,)]
    assert query(tiny_landing, "select count(*) from staging.answers "
                               "where answer_text ilike '%marisol%' or coach_id ilike '%okafor%'"
                 ) == [(0,)]
    # the two spellings of the coach's name map to one pseudonym
    assert query(tiny_landing, "select count(distinct coach_id) from staging.answers") == [(1,)]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"raw_rows_schema": True, "answers_schema": True,
                      "answers_expectations": True, "rows_reconcile": True,
                      "no_roster_names": True}


def test_rerun_is_idempotent_and_follows_file_changes(tiny_landing: Path):
    assert run_year(tiny_landing).success
    first = query(tiny_landing, "select answer_id, answer_text from staging.answers order by 1")
    assert run_year(tiny_landing).success
    assert query(tiny_landing, "select answer_id, answer_text from staging.answers order by 1"
                 ) == first
    # a changed file replaces what it loaded before
    changed = SESSION_1.replace("We ran out of time", "We need more time")
    write_landing(tiny_landing, {"session-01.csv": changed})
    assert run_year(tiny_landing).success
    texts = [t for (t,) in query(tiny_landing, "select answer_text from staging.answers")]
    assert "We need more time" in texts and "We ran out of time" not in texts
    assert query(tiny_landing, "select count(*) from staging.answers") == [(len(first),)]
    # a removed file's rows go away
    (tiny_landing / "landing" / "2020-21" / "session-01.csv").unlink()
    assert run_year(tiny_landing).success
    for table in ("raw.survey_rows", "staging.answers", "raw.quarantine", "raw.export_files"):
        assert query(tiny_landing, f"select count(*) from {table}") == [(0,)]


def test_unreadable_file_is_quarantined_and_others_still_load(tiny_landing: Path):
    write_landing(tiny_landing, {"session-02.csv": "Timestamp,Email Address\n1/1/2021 1:00:00,x\n"})
    result = run_year(tiny_landing)
    assert result.success
    rows = query(tiny_landing, "select file_name, level, reason from raw.quarantine "
                               "where stage = 'read'")
    assert len(rows) == 1 and rows[0][0] == "session-02.csv" and rows[0][1] == "file"
    assert "What worked from today's coaching session?" in rows[0][2]
    assert rows[0][2].startswith("session-02.csv: ")   # the file's name, not this machine's path
    assert query(tiny_landing, "select status from raw.export_files order by file_name"
                 ) == [("loaded",), ("unreadable",)]


@pytest.mark.parametrize("broken", ["answer_text", "school_year"])
def test_checks_can_fail(tiny_landing: Path, broken: str, monkeypatch):
    """The blocking checks are real: corrupt the staged frame and they fail."""
    from pipeline.core.ingest import staging

    real = staging.stage_year

    def corrupt(*args, **kwargs):
        out = real(*args, **kwargs)
        if broken == "answer_text":
            out.answers.loc[0, "answer_text"] = "Marisol said hi"
        else:
            out.answers.loc[0, "school_year"] = "2020/21"
        return out

    monkeypatch.setattr(staging, "stage_year", corrupt)
    result = run_year(tiny_landing)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    if broken == "answer_text":
        assert checks["no_roster_names"] is False
        # the answer with the name was never written
        assert query(tiny_landing, "select count(*) from staging.answers "
                                   "where answer_text ilike '%marisol%'") == [(0,)]
    else:
        # the contract is pandera's alone; the GX suite judges data quality (tests/test_checks_*)
        assert checks["answers_schema"] is False and checks["answers_expectations"] is True


def test_files_the_mapping_does_not_cover_are_reported(tiny_landing: Path):
    from pipeline.core.ingest.raw import folders_without_mapping

    year = tiny_landing / "landing" / "2020-21"
    (year / "Session 10.csv").write_text("Timestamp\n", encoding="utf-8")
    (year / "~$session-01.xlsx").write_bytes(b"lock")           # Office lock file: ignored
    (tiny_landing / "landing" / "2024-25").mkdir()               # no mapping.yaml
    assert run_year(tiny_landing).success
    assert query(tiny_landing, "select file_name, status from raw.export_files "
                               "order by file_name") == [("Session 10.csv", "skipped"),
                                                         ("session-01.csv", "loaded")]
    reason = query(tiny_landing, "select reason from raw.quarantine where level = 'file'")
    assert len(reason) == 1 and "'session-*.csv' does not cover it" in reason[0][0]
    assert folders_without_mapping(tiny_landing / "landing") == ["2024-25"]


def test_a_year_refresh_on_a_new_warehouse_codes_without_the_codebook_table(tiny_landing: Path):
    """What the landing sensor runs: only the partitioned assets of one year."""
    from pipeline.defs import coding

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    result = dg.materialize(
        [ingestion.raw_survey_rows, ingestion.staging_answers, coding.keyword_applications],
        resources=make_resources(tiny_landing), instance=instance, partition_key="2020-21")
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert query(tiny_landing, "select count(*) from coding.keyword_applications")[0][0] > 0


def test_a_removed_year_folder_is_retired_with_an_audit_row(tiny_landing: Path):
    """raw/year_retirements: the year leaves every year table, the audit row stays, the
    partition is deleted; a run of the gone year's partition fails with one clear line."""
    import shutil

    from pipeline.core.ingest.years import year_tables

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    res = make_resources(tiny_landing)
    assert dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers], resources=res,
                          instance=instance, partition_key="2020-21").success
    # a second year keeps the landing folder usable
    write_landing(tiny_landing, {"session-01.csv": SESSION_1.replace("2020", "2021")},
                  mapping=(tiny_landing / "landing" / "2020-21" / "mapping.yaml").read_text()
                  .replace('"2020-21"', '"2021-22"'), year="2021-22")
    # nothing gone yet: nothing retired
    assert dg.materialize([ingestion.year_retirements], resources=res, instance=instance).success
    assert query(tiny_landing, "select count(*) from raw.year_retirements") == [(0,)]
    shutil.rmtree(tiny_landing / "landing" / "2020-21")
    failed = dg.materialize([ingestion.raw_survey_rows], resources=res, instance=instance,
                            partition_key="2020-21", raise_on_error=False)
    assert not failed.success
    [step] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    cause = step.event_specific_data.error.cause
    assert cause.cls_name == "LandingError" and "its landing folder" in cause.message
    result = dg.materialize([ingestion.year_retirements], resources=res, instance=instance)
    assert result.success
    assert instance.get_dynamic_partitions("school_year") == []
    for t in year_tables():
        rows = query(tiny_landing, f"select count(*) from information_schema.tables where "
                                   f"table_schema || '.' || table_name = '{t.table}'")
        if rows == [(1,)]:
            assert query(tiny_landing, f"select count(*) from {t.table} "
                                       f"where {t.column} = '2020-21'") == [(0,)]
    [(year, trigger, n_answers, files)] = query(
        tiny_landing, "select school_year, trigger, n_answers, files from raw.year_retirements")
    assert (year, trigger, n_answers) == ("2020-21", "landing folder removed", 5)
    assert "session-01.csv" in files
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"year_retirements_schema": True}


def test_retirement_refuses_an_empty_or_missing_landing_folder(tiny_landing: Path):
    import shutil

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    res = make_resources(tiny_landing)
    assert dg.materialize([ingestion.raw_survey_rows], resources=res, instance=instance,
                          partition_key="2020-21").success
    shutil.rmtree(tiny_landing / "landing")
    result = dg.materialize([ingestion.year_retirements], resources=res, instance=instance,
                            raise_on_error=False)
    assert not result.success
    assert query(tiny_landing, "select count(*) from raw.survey_rows") == [(5,)]   # kept
    assert instance.get_dynamic_partitions("school_year") == ["2020-21"]


def test_name_suggestions_are_written_next_to_an_alias_table_only(tiny_landing: Path):
    year = tiny_landing / "landing" / "2020-21"
    assert run_year(tiny_landing).success
    assert not (year / "aliases.suggested.csv").exists()     # the landing folder is input
    (year / "aliases.csv").write_text("field,variant,canonical\n", encoding="utf-8")
    result = run_year(tiny_landing)
    assert result.success
    text = (year / "aliases.suggested.csv").read_text(encoding="utf-8")
    assert text.startswith("field,variant,canonical,status,rows,score,note\n")
    assert "school,Lincoln Elementary,Lincoln Elementary,as written,2," in text
    assert "coach,Marisol Okafor,Marisol Okafor,known," in text
    # a table with school rows: an unknown school is flagged, its id left empty
    (year / "aliases.csv").write_text("field,variant,canonical\n"
                                      "school,Lincoln Elementary,Lincoln Elementary\n",
                                      encoding="utf-8")
    assert run_year(tiny_landing).success
    flagged = query(tiny_landing, "select row_number, reason from raw.quarantine "
                                  "where column_name = 'Which school are you from?'")
    assert [r for r, _ in flagged] == [6]
    assert "school 'Park Middle' is not in aliases.csv" in flagged[0][1]
    assert query(tiny_landing, "select count(*) from staging.answers where row_number = 6 "
                               "and school_id is null") == [(2,)]


def _year_tables(root: Path, year: str) -> dict[str, list]:
    """The year's ingestion rows, sorted, without the time stamps of the run that wrote them."""
    queries = {
        "raw.survey_rows": "select * exclude (loaded_at) from raw.survey_rows",
        "staging.answers": "select * from staging.answers",
        "raw.redactions": "select * from raw.redactions",
        "raw.quarantine": "select * exclude (quarantined_at) from raw.quarantine "
                          "where stage = 'stage'",
    }
    return {t: sorted(map(repr, query(root, f"select * from ({q}) where school_year = "
                                            f"'{year}'")))
            for t, q in queries.items()}


def test_a_refresh_writes_the_changed_exports_rows_and_equals_a_fresh_build(tmp_path,
                                                                            monkeypatch):
    """Per export file (core/warehouse/file_rows.py): a middle export edited, one removed, and
    a kept file's staging state lost; each refresh leaves the year's tables as a build from
    nothing (another cache) makes them."""
    import shutil

    from tests.helpers import SAMPLE

    year = "2023-24"

    def project(name: str) -> Path:
        root = tmp_path / name
        (root / "landing").mkdir(parents=True)
        shutil.copytree(SAMPLE / "landing" / year, root / "landing" / year)
        shutil.copy(SAMPLE / "roster.csv", root / "roster.csv")
        return root

    def fresh(root: Path) -> dict:
        other = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
        shutil.copytree(root / "landing", other / "landing")
        shutil.copy(root / "roster.csv", other / "roster.csv")
        monkeypatch.setenv("SURVEY_CACHE_DIR", str(other / "cache"))
        assert run_year(other, year).success
        monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
        return _year_tables(other, year)

    def metadata(result, key) -> dict:
        [m] = [e.materialization.metadata for e in result.get_asset_materialization_events()
               if e.asset_key == key]
        return {k: v.value for k, v in m.items()}

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    root = project("a")
    assert run_year(root, year).success
    landing = root / "landing" / year
    path = landing / "session-05.csv"   # the fifth of nine exports loses its last row
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]),
                    encoding="utf-8")
    result = run_year(root, year)
    assert result.success
    assert metadata(result, ingestion.ANSWERS)["files_kept"] == 4   # sessions 1-4
    assert metadata(result, ingestion.RAW_ROWS)["files_rows_kept"] == 8
    assert _year_tables(root, year) == fresh(root)

    (landing / "session-02.csv").unlink()
    result = run_year(root, year)
    assert result.success and metadata(result, ingestion.ANSWERS)["files_kept"] == 1
    assert _year_tables(root, year) == fresh(root)

    # the staging state of kept files is gone: the year is staged again, not left half-kept
    for state in (tmp_path / "cache" / "results" / "staged_files").glob("*.state--*"):
        state.unlink()
    result = run_year(root, year)
    assert result.success and metadata(result, ingestion.ANSWERS)["files_kept"] == 0
    assert _year_tables(root, year) == fresh(root)


def test_loaded_elsewhere_digests_the_other_years_ids_in_duckdb():
    """The other years' response ids come with DuckDB's fingerprint of their rows (staging's
    key uses it): the same for the same rows, another when an other year's id changes, and
    blind to the year being staged."""
    con = duckdb.connect()
    con.execute("create schema staging")
    nothing = ingestion.loaded_elsewhere(con, "2023-24").ids_digest   # no table yet
    con.execute("create table staging.answers (response_id varchar, "
                "school_year varchar, file_name varchar, row_number bigint)")
    con.executemany("insert into staging.answers values (?, ?, ?, ?)", [
        ("R_1", "2022-23", "session-01.csv", 2), ("R_2", "2022-23", "session-01.csv", 3),
        ("session-01-r4", "2022-23", "session-01.csv", 4), ("R_9", "2023-24", "s.csv", 2)])
    first = ingestion.loaded_elsewhere(con, "2023-24")
    assert first.response_ids == {}   # fetched as staging asks for them
    first.need(["R_1", "R_9", "session-01-r4", "R_7"])
    assert first.response_ids == {"R_1": ("2022-23", "session-01.csv", 2)}
    first.need(["R_2", "R_1"])
    assert first.response_ids == {"R_1": ("2022-23", "session-01.csv", 2),
                                  "R_2": ("2022-23", "session-01.csv", 3)}
    assert ingestion.loaded_elsewhere(con, "2023-24", ids=False).fetch is None
    with pytest.raises(ValueError, match="ids_digest"):   # a key blind to the other years
        raw.OtherYears(fetch=lambda ids: {})
    assert first.ids_digest.startswith("rows ") and first.ids_digest != nothing
    con.execute("delete from staging.answers where school_year <> '2023-24'")
    assert ingestion.loaded_elsewhere(con, "2023-24").ids_digest == nothing   # no other year
    con.executemany("insert into staging.answers values (?, ?, ?, ?)", [
        ("R_1", "2022-23", "session-01.csv", 2), ("R_2", "2022-23", "session-01.csv", 3),
        ("session-01-r4", "2022-23", "session-01.csv", 4)])
    con.execute("update staging.answers set response_id = 'R_3' where response_id = 'R_9'")
    assert ingestion.loaded_elsewhere(con, "2023-24").ids_digest == first.ids_digest
    con.execute("update staging.answers set response_id = 'R_5' where response_id = 'R_2'")
    assert ingestion.loaded_elsewhere(con, "2023-24").ids_digest != first.ids_digest
