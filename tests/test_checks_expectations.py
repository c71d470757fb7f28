"""answers_expectations (GX): each data-quality expectation fails on the input it guards
against, with its severity, and the bundled sample passes."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import MAPPING_FILE_NAME, load_mapping
from pipeline.core.privacy.redact import load_roster
from pipeline.defs import ingestion
from pipeline.expectations import (
    ERROR,
    WARN,
    History,
    Limits,
    run_batches,
    school_year_window,
    session_volumes,
    staging_batches,
)
from tests.helpers import GF_MAPPING, SAMPLE, SESSION_1, make_resources, write_landing

YEAR = "2020-21"


def make_year(per_session=(20, 22, 18, 21), non_substantive=0.1, when="2020-10-05 15:00",
              id_prefix="R_", staged_share=1.0):
    """A plausible staged year: answers per session, two answers per respondent."""
    rows = []
    for session, n in enumerate(per_session, start=1):
        for i in range(n):
            rid = f"{id_prefix}{session}x{i // 2}"
            rows.append({"session_number": session, "response_id": rid,
                         "file_name": f"session-{session:02}.csv", "row_number": i // 2 + 2,
                         "submitted_at": pd.Timestamp(when),
                         "non_substantive": i < round(n * non_substantive)})
    answers = pd.DataFrame(rows)
    answers["session_number"] = answers["session_number"].astype("Int64")
    respondents = answers.groupby("file_name")["response_id"].nunique()
    by_file = pd.DataFrame({"file_name": respondents.index,
                            "exported_rows": (respondents / staged_share).round().astype(int),
                            "staged_respondents": respondents.values})
    files = pd.DataFrame({"file_name": respondents.index, "status": "loaded",
                          "file_sha256": [f"{i:064x}" for i in range(len(respondents))]})
    return answers, by_file.reset_index(drop=True), files


def validate(answers, by_file, files, history=None, limits=Limits(), docs_dir=None):
    batches = staging_batches(YEAR, answers, by_file, files, history or History(), limits)
    return run_batches(f"test.{YEAR}", batches, docs_dir)


def failures(outcome) -> list[tuple[str, str]]:
    return sorted((f["column"], f["severity"]) for f in outcome.failed)


def test_plausible_year_passes():
    outcome = validate(*make_year())
    assert outcome.success and outcome.failed == []
    assert outcome.statistics["evaluated_expectations"] == 3 + 3 + 2   # sessions 2-4, 3, 2


def test_session_with_20x_the_usual_answers_fails_warn():
    outcome = validate(*make_year(per_session=(20, 22, 18, 21, 400)))
    assert failures(outcome) == [("n_answers", WARN)] and outcome.severity == WARN
    assert outcome.failed[0]["partial_unexpected_list"] == ["400"]
    assert not outcome.success
    assert "session 5" in outcome.failed[0]["description"]


def test_a_session_collapsing_below_the_band_fails_too():
    assert failures(validate(*make_year(per_session=(40, 40, 40, 4)))) == [("n_answers", WARN)]


def test_band_comes_from_the_earlier_sessions_and_skips_the_first():
    volumes = session_volumes(make_year(per_session=(20, 40, 30))[0], Limits())
    assert volumes["prior_median"].tolist()[1:] == [20.0, 30.0]
    assert pd.isna(volumes["prior_median"].iloc[0])
    assert volumes["band_low"].tolist()[1:] == [5.0, 7.5]
    assert volumes["band_high"].tolist()[1:] == [80.0, 120.0]
    # a year of one session has no history: no session expectation at all
    one = staging_batches(YEAR, *make_year(per_session=(500,)), History(), Limits())
    assert [b.name for b in one] == ["answers", "files"]


def test_non_substantive_share_of_90_percent_fails_warn():
    outcome = validate(*make_year(non_substantive=0.9))
    assert failures(outcome) == [("non_substantive", WARN)]
    assert outcome.failed[0]["observed_value"] == pytest.approx(0.9, abs=0.02)


def test_ceiling_is_configurable(monkeypatch):
    monkeypatch.setenv("SURVEY_MAX_NON_SUBSTANTIVE_SHARE", "0.95")
    monkeypatch.setenv("SURVEY_MAX_QUARANTINE_SHARE", "0.2")
    monkeypatch.setenv("SURVEY_SESSION_BAND", "0.5,2")
    limits = Limits.from_env()
    assert limits == Limits(0.5, 2.0, 0.95, 0.2)
    assert validate(*make_year(non_substantive=0.9), limits=limits).success


def test_quarantine_share_of_a_file_over_the_ceiling_fails_warn():
    outcome = validate(*make_year(staged_share=0.25))     # 3 of 4 rows did not reach staging
    assert failures(outcome) == [("unstaged_share", WARN)]
    assert outcome.failed[0]["unexpected_count"] == 4     # every file


def test_submission_date_a_year_outside_the_window_fails_error():
    answers, by_file, files = make_year()
    answers.loc[5, "submitted_at"] = pd.Timestamp("2021-10-05 15:00")   # the next school year
    outcome = validate(answers, by_file, files)
    assert failures(outcome) == [("submitted_at", ERROR)] and outcome.severity == ERROR
    assert outcome.failed[0]["unexpected_count"] == 1


@pytest.mark.parametrize(("when", "inside"), [
    ("2020-08-01 00:00", True), ("2021-07-31 23:59", True),
    ("2020-07-31 23:59", False), ("2021-08-01 00:00", False)])
def test_window_edges(when, inside):
    assert validate(*make_year(when=when)).success is inside


def test_school_year_window():
    assert school_year_window("2023-24") == (datetime(2023, 8, 1),
                                             datetime(2024, 7, 31, 23, 59, 59, 999999))
    assert school_year_window("1999-00")[1].year == 2000
    with pytest.raises(ValueError):
        school_year_window("2020-22")


def test_response_id_already_loaded_for_another_year_fails_error():
    answers, by_file, files = make_year()
    history = History(response_ids={"R_3x4", "R_somewhere_else"})
    outcome = validate(answers, by_file, files, history)
    assert failures(outcome) == [("response_id", ERROR)]
    assert outcome.failed[0]["partial_unexpected_list"][0] == "R_3x4"


def test_ids_made_up_from_file_and_row_are_not_compared_across_years():
    # Google Forms exports have no id: 'session-01-r2' recurs every year by design
    answers, by_file, files = make_year()
    answers["response_id"] = (answers["file_name"].str.removesuffix(".csv") + "-r"
                              + answers["row_number"].astype(str))
    history = History(response_ids=set(answers["response_id"]))
    assert validate(answers, by_file, files, history).success


def test_export_file_already_loaded_for_another_year_fails_error():
    answers, by_file, files = make_year()
    outcome = validate(answers, by_file, files, History(file_sha256={files.file_sha256[1]}))
    assert failures(outcome) == [("file_sha256", ERROR)]


def test_data_docs_are_written(tmp_path: Path):
    docs = tmp_path / "data_docs"
    outcome = validate(*make_year(non_substantive=0.9), docs_dir=docs)
    site = (docs / f"test.{YEAR}").resolve()
    assert outcome.docs_url == (site / "index.html").as_uri()
    pages = list((site / "validations").rglob("*.html"))
    assert len(pages) == 3          # sessions, answers, files
    assert any("non_substantive" in p.read_text(encoding="utf-8") for p in pages)
    # a second suite gets its own site; the first keeps its pages; the top index links both
    run_batches("test.2021-22", staging_batches(YEAR, *make_year(), History(), Limits()), docs)
    assert len(list((site / "validations").rglob("*.html"))) == 3
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert f"test.{YEAR}/index.html" in index and "test.2021-22/index.html" in index


def _stage_sample() -> dict[str, tuple]:
    roster = load_roster(SAMPLE / "roster.csv")
    out = {}
    for year_dir in sorted((SAMPLE / "landing").iterdir()):
        data = raw.read_year(year_dir)
        mapping = load_mapping(year_dir / MAPPING_FILE_NAME)
        staged = staging.stage_year(data.export_files, data.survey_rows, mapping, roster)
        loaded = data.export_files[data.export_files["status"] == "loaded"]
        respondents = staged.answers.groupby("file_name")["response_id"].nunique()
        by_file = pd.DataFrame({"file_name": loaded["file_name"],
                                "exported_rows": loaded["n_rows"].astype(int)})
        by_file["staged_respondents"] = by_file["file_name"].map(respondents).fillna(0)
        out[year_dir.name] = (staged.answers, by_file, data.export_files)
    return out


def test_bundled_sample_passes():
    years = _stage_sample()
    assert sorted(years) == ["2020-21", "2023-24"]
    for year, (answers, by_file, files) in years.items():
        others = [v for k, v in years.items() if k != year]
        history = History(response_ids={r for a, _, _ in others for r in a["response_id"]},
                          file_sha256={h for _, _, f in others for h in f["file_sha256"]})
        batches = staging_batches(year, answers, by_file, files, history, Limits())
        outcome = run_batches(f"sample.{year}", batches)
        assert outcome.success, (year, outcome.failed)


def _two_years(tmp_path: Path) -> dict:
    """2020-21 and a 2021-22 that holds the same export copied (dates a year early)."""
    write_landing(tmp_path, {"session-01.csv": SESSION_1})
    write_landing(tmp_path, {"session-01.csv": SESSION_1}, year="2021-22",
                  mapping=GF_MAPPING.replace('"2020-21"', '"2021-22"'))
    (tmp_path / "roster.csv").write_text("full_name,role\nMarisol Okafor,external coach\n",
                                         encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21", "2021-22"])
    results = {}
    for year in ("2020-21", "2021-22"):
        result = dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                                resources=make_resources(tmp_path), instance=instance,
                                partition_key=year, raise_on_error=False)
        results[year] = {c.check_name: c for c in result.get_asset_check_evaluations()}
        results[year]["_success"] = result.success
    return results


def test_a_copied_export_is_refused_before_staging_and_links_data_docs(tmp_path: Path):
    """The same export copied into the next year: its file hash was loaded for 2020-21, so
    the raw layer refuses it (every row quarantined with a reason naming the year and the
    file); nothing reaches staging and the GX check has nothing to block."""
    import duckdb

    results = _two_years(tmp_path)
    first = results["2020-21"]["answers_expectations"]
    assert first.passed and results["2020-21"]["_success"]
    docs = tmp_path / "reports" / "data_docs" / "staging_answers.2020-21" / "index.html"
    assert docs.exists() and first.metadata["data_docs"].value == docs.resolve().as_uri()
    assert first.severity == dg.AssetCheckSeverity.ERROR
    assert results["2021-22"]["_success"]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from staging.answers where school_year = '2021-22'"
                           ).fetchone() == (0,)
        reasons = {r for (r,) in con.execute(
            "select distinct reason from raw.quarantine where school_year = '2021-22'"
        ).fetchall()}
        assert con.execute("select status from raw.export_files where school_year = '2021-22'"
                           ).fetchall() == [("refused",)]
    [reason] = reasons
    assert "already loaded for 2020-21 as session-01.csv" in reason


def test_asset_check_error_still_blocks_what_staging_lets_through(tmp_path: Path, monkeypatch):
    """The GX suite stays a second line: were staging to keep a date a year outside the
    window (here it is made to), the check fails with ERROR and the run stops."""
    real = staging.stage_year

    def keeps_a_bad_date(*args, **kwargs):
        out = real(*args, **kwargs)
        if len(out.answers):
            out.answers.loc[0, "submitted_at"] = pd.Timestamp("2019-10-05 15:00")
        return out

    monkeypatch.setattr(staging, "stage_year", keeps_a_bad_date)
    write_landing(tmp_path, {"session-01.csv": SESSION_1})
    (tmp_path / "roster.csv").write_text("full_name,role\nMarisol Okafor,external coach\n",
                                         encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    result = dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                            resources=make_resources(tmp_path), instance=instance,
                            partition_key="2020-21", raise_on_error=False)
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}[
        "answers_expectations"]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.ERROR
    assert not result.success
    failed = {(f["column"], f["severity"]) for f in check.metadata["failed_expectations"].value}
    assert failed == {("submitted_at", ERROR)}


def test_asset_check_warn_does_not_block(tiny_landing: Path, monkeypatch):
    """Judgement calls fail as WARN: the check shows it, the run goes on."""
    monkeypatch.setenv("SURVEY_MAX_NON_SUBSTANTIVE_SHARE", "0.1")    # the tiny year has 40%
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", [YEAR])
    result = dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                            resources=make_resources(tiny_landing), instance=instance,
                            partition_key=YEAR, raise_on_error=False)
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}[
        "answers_expectations"]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert result.success


def _cached(tmp_path: Path, year_parts, history=None):
    """The year validated with an outcome cache and Data Docs, both under tmp_path."""
    from pipeline.core.result_cache import ResultCache

    batches = staging_batches(YEAR, *year_parts, history or History(), Limits())
    return run_batches(f"test.{YEAR}", batches, tmp_path / "docs", ResultCache(tmp_path / "cache"))


def test_outcome_cache_reuses_only_the_same_inputs(tmp_path: Path, monkeypatch):
    import pipeline.expectations as ex

    calls = []
    validate_for_real = ex._validate
    monkeypatch.setattr(ex, "_validate", lambda *a: calls.append(a[0]) or validate_for_real(*a))
    failing = make_year(non_substantive=0.9)
    first = _cached(tmp_path, failing)
    again = _cached(tmp_path, make_year(non_substantive=0.9))   # equal frames, new objects
    assert (len(calls), first.reused, again.reused) == (1, False, True)
    assert {**vars(again), "reused": False} == vars(first)
    assert failures(again) == [("non_substantive", WARN)]
    # one value of one frame changed: validated again, and the outcome follows the data
    passing = _cached(tmp_path, make_year(non_substantive=0.1))
    assert (len(calls), passing.reused, passing.success) == (2, False, True)
    # the same frames with another year's ids already loaded (a param, not a frame): again
    answers, by_file, files = make_year(non_substantive=0.1)
    clash = _cached(tmp_path, (answers, by_file, files),
                    History(response_ids={answers.response_id[0]}))
    assert (len(calls), clash.reused, failures(clash)) == (3, False, [("response_id", ERROR)])


def test_outcome_cache_needs_the_site_built_for_it(tmp_path: Path):
    site = tmp_path / "docs" / f"test.{YEAR}"
    def site_shows_a_failure() -> bool:   # the site's index lists a failed validation
        return "Failed" in (site / "index.html").read_text(encoding="utf-8")

    _cached(tmp_path, make_year(non_substantive=0.9))
    assert site_shows_a_failure()
    _cached(tmp_path, make_year(non_substantive=0.1))   # the site now shows another outcome
    assert not site_shows_a_failure()
    back = _cached(tmp_path, make_year(non_substantive=0.9))
    assert not back.reused            # its stored outcome exists, but the site was rebuilt
    assert site_shows_a_failure() and not back.success
    assert _cached(tmp_path, make_year(non_substantive=0.9)).reused
    shutil.rmtree(site)               # the reports folder deleted: validated and built again
    rebuilt = _cached(tmp_path, make_year(non_substantive=0.9))
    assert not rebuilt.reused and (site / "index.html").is_file()
    assert (tmp_path / "docs" / "index.html").is_file()


def test_outcome_cache_skips_batches_without_params(tmp_path: Path):
    from pipeline.core.result_cache import ResultCache

    batches = staging_batches(YEAR, *make_year(), History(), Limits())
    batches[0].params = None
    for _ in range(2):
        outcome = run_batches("test.np", batches, None, ResultCache(tmp_path / "cache"))
        assert not outcome.reused


def test_a_rerun_on_the_same_exports_reuses_the_outcome(tiny_landing: Path, monkeypatch):
    """The staging step run twice on the same exports: the second check result is the kept
    outcome (metadata `reused`), the same verdict and failures, GX not run."""
    import pipeline.expectations as ex

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tiny_landing / "cache"))
    monkeypatch.setenv("SURVEY_MAX_NON_SUBSTANTIVE_SHARE", "0.1")    # a WARN failure to keep
    validated = []
    real = ex._validate
    monkeypatch.setattr(ex, "_validate", lambda *a: validated.append(a[0]) or real(*a))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", [YEAR])
    checks = []
    for _ in range(2):
        result = dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                                resources=make_resources(tiny_landing), instance=instance,
                                partition_key=YEAR, raise_on_error=False)
        checks.append({c.check_name: c for c in result.get_asset_check_evaluations()}[
            "answers_expectations"])
    assert validated == [f"staging_answers.{YEAR}"]
    assert [c.metadata["reused"].value for c in checks] == [False, True]
    assert [c.passed for c in checks] == [False, False]
    assert (checks[0].metadata["failed_expectations"].value
            == checks[1].metadata["failed_expectations"].value)
    assert checks[1].metadata["data_docs"] == checks[0].metadata["data_docs"]


def test_every_value_a_batch_reads_is_in_its_params():
    """The outcome cache keys a batch by its frame and its params: a value its expectations
    read from anywhere else would go stale unseen. Each build function's free variables are
    the ones its params were written for; a new one fails here until params holds it."""
    batches = staging_batches(YEAR, *make_year(), History(), Limits())
    free = {b.name: set(b.build.__code__.co_freevars) for b in batches}
    assert free == {"sessions": {"limits", "with_history"},     # with_history: from the frame
                    "answers": {"limits", "start", "end", "year", "history"},
                    "files": {"limits", "history"}}
    params = {b.name: b.params for b in batches}
    assert params["sessions"] == (0.25, 4.0)
    assert params["files"] == (0.5, [])
    assert params["answers"][0] == YEAR and len(params["answers"]) == 5


def test_a_suite_site_is_locked_while_it_is_read_or_rebuilt(tmp_path: Path):
    """`run_batches` holds an exclusive lock on the suite's site meanwhile: another process
    (here another open file description, which flock treats alike) cannot take it."""
    import fcntl

    from pipeline.expectations import _site_lock

    site = tmp_path / "docs" / "suite"
    with _site_lock(site), open(site / ".lock", "a") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(site / ".lock", "a") as other:   # released after
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_submission_times_reach_gx_in_nanoseconds():
    """The warehouse gives TIMESTAMP columns in microseconds; GX's between-check runs
    vectorised only on datetime64[ns] (one Python call per value otherwise: seconds at
    600,000 answers). The outcome is the same either way."""
    answers, by_file, files = make_year()
    answers["submitted_at"] = answers["submitted_at"].astype("datetime64[us]")
    [batch] = [b for b in staging_batches(YEAR, answers, by_file, files, History(), Limits())
               if b.name == "answers"]
    assert str(batch.frame["submitted_at"].dtype) == "datetime64[ns]"
    assert validate(answers, by_file, files).success
