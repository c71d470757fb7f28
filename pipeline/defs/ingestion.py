"""Ingestion: landing exports -> raw.* -> staging.answers, one school year per partition."""


from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline import settings
from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import MAPPING_FILE_NAME, load_mapping
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import load_roster
from pipeline.core.warehouse import connection as wh
from pipeline.defs.checks import gx_result, md_table, pandera_result
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import ProjectPaths, Warehouse
from pipeline.expectations import History, Limits, staging_batches
from pipeline.schemas import RawSurveyRows, StagingAnswers

RAW_ROWS = dg.AssetKey(["raw", "survey_rows"])
ANSWERS = dg.AssetKey(["staging", "answers"])


@dg.asset(
    key=RAW_ROWS,
    group_name="ingestion",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb", "csv"},
    description="Every exported record verbatim (JSON of column -> text) with its file, sha256 "
    "and spreadsheet row; also writes raw.export_files and read-level raw.quarantine.",
    check_specs=[dg.AssetCheckSpec("raw_rows_schema", asset=RAW_ROWS, blocking=True,
                                   description="pandera RawSurveyRows model")],
)
def raw_survey_rows(context: dg.AssetExecutionContext, paths: ProjectPaths,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    data = raw.read_year(Path(paths.landing_dir) / year)
    where = {"school_year": year}
    with warehouse.connect(context.log) as con:
        wh.replace_rows(con, "raw.export_files", data.export_files, where)
        wh.replace_rows(con, "raw.survey_rows", data.survey_rows, where)
        wh.replace_rows(con, "raw.quarantine", data.quarantine, {**where, "stage": "read"})
    files = data.export_files
    for f in files[files["status"] != "loaded"].itertuples():
        context.log.error(f.error)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(data.survey_rows),
            "files": len(files),
            "files_unreadable": int((files["status"] != "loaded").sum()),
            "rows_quarantined_on_read": len(data.quarantine),
            "export_files": md_table(files[["file_name", "reader", "encoding", "n_records",
                                            "n_problems", "status", "file_sha256"]], 50),
        },
        check_results=[pandera_result("raw_rows_schema", RawSurveyRows, data.survey_rows,
                                      RAW_ROWS)],
    )


@dg.asset(
    key=ANSWERS,
    deps=[RAW_ROWS],
    group_name="ingestion",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb"},
    description="One row per answered question: stable answer_id, pseudonymous school and "
    "coach, redacted text, non-substantive flag. Also writes raw.redactions and stage-level "
    "raw.quarantine.",
    check_specs=[
        dg.AssetCheckSpec("answers_schema", asset=ANSWERS, blocking=True,
                          description="pandera StagingAnswers model"),
        dg.AssetCheckSpec("answers_expectations", asset=ANSWERS, blocking=True,
                          description="GX data quality (docs/checks.md): ERROR if a submission "
                          "date is outside the school year or a response id / export file was "
                          "loaded for another year; WARN if answers per session leave the band "
                          "of earlier sessions, or the non-substantive or quarantine share is "
                          "over its ceiling. Data Docs: reports/data_docs/"),
        dg.AssetCheckSpec("rows_reconcile", asset=ANSWERS, blocking=True,
                          description="per file: raw rows = staged respondents + quarantined "
                          "rows"),
        dg.AssetCheckSpec("no_roster_names", asset=ANSWERS, blocking=True,
                          description="an independent fuzzy scan (not the redactor's method) "
                          "finds no roster name in the redacted answers"),
    ],
)
def staging_answers(context: dg.AssetExecutionContext, paths: ProjectPaths,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    if settings.public_salt_on_real_data(paths.pseudonym_salt, paths.landing_dir):
        context.log.warning("school and coach ids use the public default salt: set "
                            "SURVEY_PSEUDONYM_SALT privately, or the ids can be recomputed "
                            "from the names")
    mapping = load_mapping(Path(paths.landing_dir) / year / MAPPING_FILE_NAME)
    roster = load_roster(paths.roster_path)
    where = {"school_year": year}
    with warehouse.connect(context.log) as con:
        files = wh.read_frame(con, "raw.export_files", where)
        rows = wh.read_frame(con, "raw.survey_rows", where)
        staged = staging.stage_year(files, rows, mapping, roster, salt=paths.pseudonym_salt)
        # scanned before anything is written: an answer with a name never reaches staging
        leaks = name_leaks(staged.answers, FuzzyNameScan(roster))
        staged.answers = staged.answers[~staged.answers["answer_id"].isin(leaks)]
        wh.replace_rows(con, "staging.answers", staged.answers, where)
        wh.replace_rows(con, "raw.redactions", staged.redactions, where)
        wh.replace_rows(con, "raw.quarantine", staged.quarantine,
                               {**where, "stage": "stage"})
        reconcile = reconciliation_by_file(con, year)
        history = other_years(con, year)
    answers = staged.answers
    by_reason = staged.quarantine.groupby("reason").size() if len(staged.quarantine) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(answers),
            "respondents": int(answers["response_id"].nunique()),
            "answers_worked": int((answers["question_id"] == "worked").sum()),
            "answers_improve": int((answers["question_id"] == "improve").sum()),
            "non_substantive": int(answers["non_substantive"].sum()),
            "names_redacted": len(staged.redactions),
            "rows_quarantined": int((staged.quarantine["level"] == "row").sum()),
            "cells_flagged": int((staged.quarantine["level"] == "cell").sum()),
            "quarantine_reasons": dg.MetadataValue.json(
                {str(k): int(v) for k, v in dict(by_reason).items()}),
            "preview": md_table(answers[["answer_id", "session_number", "question_id",
                                         "non_substantive", "answer_text"]]),
        },
        check_results=[
            pandera_result("answers_schema", StagingAnswers, answers, ANSWERS),
            gx_result("answers_expectations", f"staging_answers.{year}",
                      staging_batches(year, answers, reconcile, files, history,
                                      Limits.from_env()),
                      ANSWERS, docs_dir=str(Path(paths.reports_dir) / "data_docs")),
            reconcile_result(reconcile),
            no_names_result(len(answers) + len(leaks), leaks),
        ],
    )


RECONCILE_SQL = """
with f as (
    select file_name, n_rows from raw.export_files where school_year = $year and status = 'loaded'
), r as (
    select file_name, count(*) as raw_rows from raw.survey_rows where school_year = $year
    group by all
), s as (
    select file_name, count(distinct response_id) as staged_respondents from staging.answers
    where school_year = $year group by all
), q as (
    select file_name, count(*) as quarantined_rows from raw.quarantine
    where school_year = $year and stage = 'stage' and level = 'row' group by all
)
select f.file_name, f.n_rows as exported_rows, coalesce(r.raw_rows, 0) as raw_rows,
       coalesce(s.staged_respondents, 0) as staged_respondents,
       coalesce(q.quarantined_rows, 0) as quarantined_rows
from f left join r using (file_name) left join s using (file_name) left join q using (file_name)
order by f.file_name
"""


def reconciliation_by_file(con, year: str) -> pd.DataFrame:
    frame = con.execute(RECONCILE_SQL, {"year": year}).df()
    frame["balanced"] = (frame["raw_rows"] == frame["exported_rows"]) & (
        frame["raw_rows"] == frame["staged_respondents"] + frame["quarantined_rows"])
    return frame


def reconcile_result(frame: pd.DataFrame) -> dg.AssetCheckResult:
    bad = frame[~frame["balanced"]]
    return dg.AssetCheckResult(
        check_name="rows_reconcile", asset_key=ANSWERS, passed=bad.empty,
        metadata={"files": len(frame), "files_unbalanced": len(bad),
                  "by_file": md_table(frame, 100)},
    )


def other_years(con, year: str) -> History:
    """Response ids and export hashes already loaded for other school years."""
    ids = con.execute("select distinct response_id from staging.answers "
                      "where school_year <> $year", {"year": year}).fetchall()
    hashes = con.execute("select distinct file_sha256 from raw.export_files "
                         "where school_year <> $year and status = 'loaded'",
                         {"year": year}).fetchall()
    return History(response_ids={r for (r,) in ids}, file_sha256={h for (h,) in hashes})


def name_leaks(answers: pd.DataFrame, scanner: FuzzyNameScan) -> list[str]:
    """Ids of answers in which the independent fuzzy scan still finds a roster name."""
    return [aid for aid, text in zip(answers["answer_id"], answers["answer_text"], strict=True)
            if scanner.find(text)]


def no_names_result(scanned: int, leaks: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="no_roster_names", asset_key=ANSWERS, passed=not leaks,
        description="answers with a name are withheld from staging, not written",
        metadata={"answers_scanned": scanned, "answers_withheld": len(leaks),
                  "answer_ids": dg.MetadataValue.json(leaks[:20])},
    )
