"""Assisted coding: codes suggested by meaning, their agreement with humans, next cycle's sheets.

The suggestions never become human codes: final codes take them only for a school year nobody
coded by hand, with a provenance that says so (pipeline/core/reconciliation/final_codes.py).
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.coding import dual_coding
from pipeline.core.coding.sheet_writer import RUNS_KEPT, write_coder_sheets
from pipeline.core.exchange.spreadsheet import RunsKept
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.privacy.redact import load_roster, roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest import quality, row_memo, stage
from pipeline.core.suggest.fit_cache import sklearn_version
from pipeline.core.suggest.model import ModelError, cache_dir
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import session_rows, table_record
from pipeline.core.warehouse.fingerprint import queries_fingerprint
from pipeline.defs import reconciliation
from pipeline.defs.checks import md_table, pandera_result
from pipeline.defs.coding import KEYWORD
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.reconciliation import EVERY_YEAR, FINAL, HUMAN
from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
from pipeline.defs.sources import ADJUDICATION_FILE, CODEBOOK_FILES
from pipeline.schemas import SuggestionQuality, Suggestions

SUGGESTIONS = dg.AssetKey(["coding", "suggestions"])
SUGGESTION_QUALITY = dg.AssetKey(["coding", "suggestion_quality"])
CODER_SHEETS = dg.AssetKey(["coding", "next_cycle_coder_sheets"])


class QualityConfig(dg.Config):
    min_kappa: float = 0.4  # a category (dimension) whose pooled kappa falls below this warns
    cv_folds: int = 5
    # the school-grouped CV covers at most this many of a year's coded answers (stage.cv_sample)
    cv_max_answers: int = stage.CV_MAX_ANSWERS


class CoderSheetsConfig(dg.Config):
    school_year: str | None = None  # default: the latest year in staging.answers
    coders: list[str] = ["coder_a", "coder_b"]
    with_suggestions: bool = False  # blind by default: double coding must stay independent


def training_codes(con, paths: ProjectPaths, year: str, only: set) -> pd.DataFrame:
    """Agreed and adjudicated codes of the answers `only` (a training sample), from every year
    but `year` (pipeline.defs.reconciliation.human_final_codes), only for those years: the
    partition's own year (often the largest) is never trained on, so its discrepancies and
    adjudications are not worked out here. Only the sample's rows are read and reconciled (a
    year's training is kept whole: year_training)."""
    if not wh.table_columns(con, "coding.coder_units"):   # no coder sheets imported yet
        return stage.human_reference(wh.empty_frame("coding.final_codes"))
    coders = {y: list(pair) for y, pair in con.execute(
        "select school_year, list(distinct coder order by coder) from coding.coder_units "
        "where school_year <> ? group by all having count(distinct coder) = 2",
        [year]).fetchall()}
    sampled = "answer_id in (select answer_id from _training_ids)"

    def rows(sql: str, *params) -> pd.DataFrame:   # in the table's order
        return con.execute(f"{sql} and {sampled} order by rowid", list(params)).df()

    con.register("_training_ids", pd.DataFrame({"answer_id": pd.Series(sorted(only),
                                                                       dtype=object)}))
    try:
        return stage.human_reference(reconciliation.human_final_codes(
            paths,
            lambda y: rows("select * from coding.human_applications where school_year = ?", y),
            lambda y: rows("select * from coding.coder_units where school_year = ?", y),
            # CODED_ELSEWHERE's rows of the year
            lambda y: rows(f"select * {CODED_ELSEWHERE} and school_year = ?", year, year, y),
            only=only, coders=coders))
    finally:
        con.unregister("_training_ids")


def training_rows_print(con, year: str) -> str:
    """A fingerprint of the rows a year's training reads: the other years' coded answers, coder
    units and human applications, each row hashed with its rowid (their order counts, as it
    does for the training)."""
    return queries_fingerprint(
        con, (f"select rowid, * {CODED_ELSEWHERE}", [year, year]),
        *((f"select rowid, * {_elsewhere(table)}", [year])
          for table in ("coding.coder_units", "coding.human_applications")))


# the rows a year's training reads (year_training's key fingerprints the same rows): the other
# years' rows of a table, and the other years' answers some coder's units hold
def _elsewhere(table: str) -> str:
    return f"from {table} where school_year <> ?"


CODED_ELSEWHERE = ("from staging.answers where school_year <> ? and answer_id in "
                   "(select answer_id from coding.coder_units where school_year <> ?)")


# the answers a year's suggester may train on: the other years' answers two coders saw
# (stage.both_coders_saw); `training_pool` reads how many, and the sample of them
BOTH_CODERS_SAW = ("from staging.answers where school_year <> ? and answer_id in "
                   "(select answer_id from coding.coder_units where school_year <> ? "
                   "group by answer_id having count(distinct coder) >= 2)")


def training_pool(con, year: str, max_answers: int | None = stage.TRAIN_MAX_ANSWERS
                  ) -> tuple[pd.DataFrame, int]:
    """(the training sample, how many answers it was drawn from): the other years' answers
    both coders saw, and among their substantive ones the `max_answers` whose sha256 of the
    answer id is smallest, in the table's order; what `stage.training` draws from the same
    answers read whole (`stage.training_sample`), drawn in DuckDB so only the sample's texts
    are read."""
    if not wh.table_columns(con, "coding.coder_units"):
        return wh.empty_frame("staging.answers"), 0
    (available,) = con.execute(f"select count(*) {BOTH_CODERS_SAW}", [year, year]).fetchone()
    limit = "" if max_answers is None else f"limit {int(max_answers)}"
    sample = con.execute(
        f"with pool as (select rowid as row_at, * {BOTH_CODERS_SAW} "
        "and not coalesce(non_substantive, false)), "
        f"sample as (select * from pool order by sha256(answer_id), row_at {limit}) "
        "select * exclude (row_at) from sample order by row_at", [year, year]).df()
    return sample, int(available)


def year_training(con, paths: ProjectPaths, zs, year: str) -> stage.Training:
    """What the year's suggester is trained on (the other years' coded answers and their
    human final codes: stage.training), kept under a key of its inputs as DuckDB reads them
    (their rows in the tables' order), the adjudication file, the roster, the model and the
    codebooks: a refresh of the year whose other years are unchanged reads it back instead of
    reading those years' coded answers and working out their final codes again."""
    path = dual_coding.first_existing(paths.coder_sheets_dir, dual_coding.ADJUDICATION_NAMES)
    key = frame_memo.key("suggestion training/1", year, training_rows_print(con, year),
                         file_sha256(path) if path else "no adjudication file",
                         roster_fingerprint(load_roster(paths.roster_path)), zs.sha256,
                         row_memo.codebook_versions(zs), stage.FIT_SETTINGS, sklearn_version())
    kept = stage.kept_training(key)
    if kept is not None:
        return kept
    sample, available = training_pool(con, year)
    codes = training_codes(con, paths, year, set(sample["answer_id"]))
    trained_on = stage.sampled_training(zs, sample, codes, available)
    stage.keep_training(key, trained_on)
    return trained_on


# the staging.answers columns a suggestion row depends on (besides the suggester itself)
SUGGESTION_INPUTS = ["answer_id", "school_year", "question_id", "answer_text",
                     "non_substantive"]
SESSIONS_KEPT = 4000   # result-cache records: one per session, for years of sessions


@dg.asset(
    key=SUGGESTIONS,
    # trained on the OTHER years' human codes: every year's coding/human_applications
    # (their final codes: the adjudication file's decisions applied)
    deps=[ANSWERS, CODEBOOK_FILES, dg.AssetDep(HUMAN, partition_mapping=EVERY_YEAR),
          ADJUDICATION_FILE],
    group_name="coding",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb", "onnx"},
    description="Codes suggested by meaning for every substantive answer: the offline "
    "sentence-embedding model against each code's definition, examples and keywords "
    "(zero_shot), or, per school year, per-code models trained on the OTHER years' human codes "
    "(trained). One row per suggested (answer, code) with its probability and the sentence "
    "that carries it. One school year per partition; its training set is every other "
    "year's human codes (a year's refresh does not retrain the other years: they refresh "
    "with their own partition).",
    check_specs=[
        dg.AssetCheckSpec("suggestions_schema", asset=SUGGESTIONS, blocking=True,
                          description="pandera: coding.suggestions' contract"),
        dg.AssetCheckSpec("suggester_available", asset=SUGGESTIONS,
                          description="warns when the embedding model cannot be used (not "
                          "installed, sha256 mismatch, no examples in the codebooks): the "
                          "table is then empty and years nobody coded fall back to the keyword "
                          "coder, instead of the whole refresh failing"),
    ],
)
def suggestions(context: dg.AssetExecutionContext, paths: ProjectPaths, codebooks: Codebooks,
                warehouse: Warehouse) -> dg.MaterializeResult:
    # The model: $SURVEY_EMBEDDING_MODEL, else the installed one (the quality asset's CV uses
    # the same, through the same process-wide cache).
    books = list(codebooks.load())
    try:
        # fitted only when a session has to be suggested (a rerun on the same exports: never)
        zs, problem = stage.zero_shot_on_demand(books), None
    except (ModelError, ValueError) as exc:
        zs, problem = None, str(exc)
    year = context.partition_key
    kept = ResultCache(cache_dir() / "results" / "suggestion_sessions", max_files=SESSIONS_KEPT)
    with warehouse.connect(context.log) as con:
        if zs is not None:
            # trained on the other years' coded answers; each session of the year kept
            # while its answers and that training are the same (session_rows)
            trained_on = year_training(con, paths, zs, year)
            plan = session_rows.plan(con, kept, "suggestions", "coding.suggestions", year,
                                     SUGGESTION_INPUTS, trained_on.key)
            if plan.stale:
                try:   # the fit's errors count as the model's: no suggestions this run
                    zs.fitted()
                except (ModelError, ValueError) as exc:
                    zs, problem = None, str(exc)
        if zs is None:
            context.log.error(f"no suggestions this run: {problem}")
            rows = wh.empty_frame("coding.suggestions")
            check = pandera_result("suggestions_schema", Suggestions, rows, SUGGESTIONS)
            wh.replace_rows(con, "coding.suggestions", rows, {"school_year": year})
            plan = None
        else:
            answers = session_rows.read_answers(con, year, plan.stale, SUGGESTION_INPUTS)
            rows = stage.year_suggestions(zs, answers, trained_on)
            check = pandera_result("suggestions_schema", Suggestions, rows, SUGGESTIONS)
            if check.passed:
                session_rows.write(con, plan, rows, {}, kept, stage.table_columns())
        summary = year_summary(con, year)
    available = dg.AssetCheckResult(
        check_name="suggester_available", asset_key=SUGGESTIONS, passed=zs is not None,
        severity=dg.AssetCheckSeverity.WARN, metadata={"problem": problem or ""})
    if zs is None:
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "problem": problem},
                                    check_results=[check, available])
    n_answers = summary["answers"]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["rows"],
            "answers_with_suggestions": n_answers,
            "categories_per_answer": round(summary["categories"] / n_answers, 2)
            if n_answers else 0.0,
            "per_year": md_table(summary["per_source"], 20),
            "sessions_suggested": dg.MetadataValue.json(plan.computed),
            "sessions_kept": len(plan.current),
            "rows_written": len(rows),
            "model": zs.model_id,
            "model_sha256": zs.sha256,
            "preview": md_table(summary["preview"]),
        },
        check_results=[check, available],
    )


def year_summary(con, year: str) -> dict:
    """What the asset's metadata shows about the year's coding.suggestions rows."""
    rows, answers, categories = con.execute(
        "select count(*), count(distinct answer_id), "
        "count(distinct (answer_id, framework, dimension)) from coding.suggestions "
        "where school_year = ?", [year]).fetchone()
    per_source = con.execute(
        "select school_year, source, count(*) as suggestions, "
        "count(distinct answer_id) as answers from coding.suggestions where school_year = ? "
        "group by all order by school_year, source", [year]).df()
    preview = con.execute(
        "select answer_id, code_id, probability, source, evidence_text from coding.suggestions "
        "where school_year = ? order by answer_id, probability desc, code_id limit 10",
        [year]).df()
    return {"rows": int(rows), "answers": int(answers), "categories": int(categories),
            "per_source": per_source, "preview": preview}


@dg.asset(
    key=SUGGESTION_QUALITY,
    deps=[SUGGESTIONS, FINAL, KEYWORD, HUMAN, CODEBOOK_FILES],
    group_name="coding",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb"},
    description="Suggestions against the human final codes, per code, dimension and framework, "
    "question and year: precision, recall, F1, Cohen's kappa, with the keyword coder's beside. "
    "One school year per partition, evaluated on its own: evaluation 'stored': the year's "
    "stored suggestions (trained ones never saw their year); 'school_grouped_cv': trained "
    "models fitted on the year's other schools' coded answers (none when the year has fewer "
    "than 2 schools with coded answers). A year's refresh refits only that year's folds.",
    check_specs=[
        dg.AssetCheckSpec("suggestion_quality_schema", asset=SUGGESTION_QUALITY, blocking=True,
                          description="pandera: coding.suggestion_quality's contract"),
        dg.AssetCheckSpec("suggestion_kappa_floor", asset=SUGGESTION_QUALITY,
                          description="warns when a category's kappa with the human codes "
                          "(counts summed over every year's rows in the table and every "
                          "question) falls below the configured level"),
    ],
)
def suggestion_quality(context: dg.AssetExecutionContext, config: QualityConfig,
                       codebooks: Codebooks, warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    where = {"school_year": year}
    codes = codebooks.codes_frame()
    books = list(codebooks.load())
    kept = ResultCache(cache_dir() / "results" / "suggestion_quality", max_files=200)
    with warehouse.connect(context.log) as con:
        # the year's table kept while its coded answers' rows are the same (quality_key): a
        # refresh adding a session nobody coded reads none of the year's rows
        key = quality_key(con, year, config, books, codes)
        found = table_record.kept(con, kept, key, "coding.suggestion_quality", slot=year,
                                  where=where)
        if found is not None:
            table = wh.read_frame(con, "coding.suggestion_quality", where)
            table = table.astype(object).where(table.notna(), None)
            n_coded, n_schools, n_sample, no_cv = (found["coded"], found["schools"],
                                                   found["sample"], found["no_cv"])
        else:
            answers, sugg, keyword, final, units = (wh.read_frame(con, t, where) for t in (
                "staging.answers", "coding.suggestions", "coding.keyword_applications",
                "coding.final_codes", "coding.coder_units"))
            table, coded, sample, no_cv = stage.year_quality(
                books, answers, sugg, keyword, final, units, codes,
                config.cv_folds, config.cv_max_answers)
            n_coded, n_schools = len(coded), int(coded["school_id"].nunique())
            n_sample = len(sample)
        check = pandera_result("suggestion_quality_schema", SuggestionQuality, table,
                               SUGGESTION_QUALITY)
        if check.passed and found is None:
            wh.replace_rows(con, "coding.suggestion_quality", table, where)
            table_record.record(con, kept, key, "coding.suggestion_quality",
                                {"coded": n_coded, "schools": n_schools, "sample": n_sample,
                                 "no_cv": no_cv}, slot=year, where=where)
        # the check pools every year's counts (tp/fp/fn/tn add up; kappa from the sums)
        every_year = con.execute(
            "select evaluation, level, framework, dimension, tp, fp, fn, tn "
            "from coding.suggestion_quality where level = 'dimension'").df() \
            if wh.table_columns(con, "coding.suggestion_quality") else table
    overall = quality.pooled_dimension_kappa(every_year)
    low = overall[overall["cohen_kappa"].notna() & (overall["cohen_kappa"] < config.min_kappa)]
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(table), "school_year": year,
                  "coded_answers": n_coded, "schools": n_schools,
                  "reused": found is not None,
                  "school_grouped_cv": (
                      f"over {n_sample} of the year's {n_coded} coded answers"
                      if no_cv is None else f"no rows: {no_cv}"),
                  "by_dimension": md_table(quality.pooled_dimension_kappa(table), 20),
                  "every_year_by_dimension": md_table(overall, 20)},
        check_results=[check, dg.AssetCheckResult(
            check_name="suggestion_kappa_floor", asset_key=SUGGESTION_QUALITY,
            passed=low.empty, severity=dg.AssetCheckSeverity.WARN,
            metadata={"min_kappa": config.min_kappa, "below": md_table(low, 20)})],
    )


def quality_key(con, year: str, config: QualityConfig, books: list, codes: pd.DataFrame
                ) -> str:
    """What a year's coding.suggestion_quality is computed from (stage.year_quality): the
    year's coder units and, for the answers in them, their staged rows, suggestions, keyword
    codes and final codes (DuckDB fingerprints of the rows); the settings, the codebooks and
    the code."""
    seen = "select answer_id from coding.coder_units where school_year = ?"
    rows = queries_fingerprint(
        con, ("select * from coding.coder_units where school_year = ?", [year]),
        *((f"select * from {table} where school_year = ? and answer_id in ({seen})",
           [year, year]) for table in ("staging.answers", "coding.suggestions",
                                       "coding.keyword_applications", "coding.final_codes")))
    return frame_memo.key("coding.suggestion_quality/1", year, rows,
                          f"folds={config.cv_folds} cv_max={config.cv_max_answers}",
                          ",".join(f"{b.framework}={b.version}" for b in books), codes)


@dg.asset(
    key=CODER_SHEETS,
    deps=[ANSWERS, CODEBOOK_FILES, SUGGESTIONS],
    group_name="coding",
    pool="warehouse",
    kinds={"xlsx"},
    description="One XLSX per coder for a school year's answers (default: the latest year) in "
    "reports/coder_sheets/<year>/: a 0/1 column per code, the codebook on a second tab; blind "
    "unless configured with_suggestions.",
)
def next_cycle_coder_sheets(context: dg.AssetExecutionContext, config: CoderSheetsConfig,
                            paths: ProjectPaths, codebooks: Codebooks,
                            warehouse: Warehouse) -> dg.MaterializeResult:
    books = list(codebooks.load())
    with warehouse.connect(context.log) as con:
        # the year's rows only (a full read is every year's texts)
        year = config.school_year or (con.execute(
            "select max(school_year) from staging.answers").fetchone()[0]
            if wh.table_columns(con, "staging.answers") else None)
        answers = wh.read_frame(con, "staging.answers", {"school_year": year})
        sugg = wh.read_frame(con, "coding.suggestions", {"school_year": year}) \
            if config.with_suggestions and year else None
    if answers.empty or answers["non_substantive"].astype(bool).all():
        return dg.MaterializeResult(metadata={"school_year": str(year), "files": 0,
                                              "note": "no substantive answers"})
    out_dir = Path(paths.reports_dir) / "coder_sheets" / year
    if config.with_suggestions and len(config.coders) > 1:
        raise ValueError("with_suggestions is for one coder reviewing suggestions; double "
                         "coding for reliability must stay blind (set one coder)")
    # blind sheets: each run of question and session kept, deflated, while its rows are the same
    kept = RunsKept(ResultCache(cache_dir() / "results" / "coder_sheet_rows",
                                max_files=RUNS_KEPT),
                    ("question_id", "session_number"))
    files = write_coder_sheets(answers, books, list(config.coders), out_dir, year, sugg, kept)
    return dg.MaterializeResult(metadata={
        "school_year": year,
        "files": dg.MetadataValue.json([str(f) for f in files]),
        "answers": int((~answers["non_substantive"].astype(bool)).sum()),
        "blind": not config.with_suggestions,
        "runs_reused": len(kept.reused),
        "runs_rendered": len(kept.rendered),
    })
