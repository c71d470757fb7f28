"""Assisted coding: codes suggested by meaning, their agreement with humans, next cycle's sheets.

The suggestions never become human codes: final codes take them only for a school year nobody
coded by hand, with a provenance that says so (pipeline/core/reconciliation/final_codes.py).
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core.coding.sheet_writer import RUNS_KEPT, write_coder_sheets
from pipeline.core.exchange.spreadsheet import RunsKept
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest import quality, stage
from pipeline.core.suggest.model import ModelError, cache_dir
from pipeline.core.warehouse import connection as wh
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


def training_codes(con, paths: ProjectPaths, answers: pd.DataFrame, year: str) -> pd.DataFrame:
    """Agreed and adjudicated codes of every year but `year` (what its trained suggestions
    learn from; pipeline.defs.reconciliation.human_final_codes), only for those years: the
    partition's own year (often the largest) is never trained on, so its discrepancies and
    adjudications are not worked out here."""
    apps, units = (_other_years(con, t, year)
                   for t in ("coding.human_applications", "coding.coder_units"))
    return stage.human_reference(reconciliation.human_final_codes(paths, apps, units, answers))


def _other_years(con, table: str, year: str) -> pd.DataFrame:
    """The rows of every school year but `year` (a table not built yet reads as empty)."""
    if not wh.table_columns(con, table):
        return wh.empty_frame(table)
    return con.execute(f"select * from {table} where school_year <> ?", [year]).df()


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
        zs, problem = stage.zero_shot_for(books), None
    except (ModelError, ValueError) as exc:
        zs, problem = None, str(exc)
        context.log.error(f"no suggestions this run: {problem}")
    with warehouse.connect(context.log) as con:
        year = context.partition_key
        if zs is None:
            rows = wh.empty_frame("coding.suggestions")
        else:
            answers = wh.read_frame(con, "staging.answers")
            reference = training_codes(con, paths, answers, year)
            units = wh.read_frame(con, "coding.coder_units")
            # stage.all_year_suggestions' loop body, for this partition's year
            coded = stage.both_coders_saw(units)
            others = answers[(answers["school_year"] != year) & answers["answer_id"].isin(coded)]
            train_codes = reference[reference["answer_id"].isin(set(others["answer_id"]))]
            rows = stage.year_suggestions(zs, answers[answers["school_year"] == year], others,
                                          train_codes)
        check = pandera_result("suggestions_schema", Suggestions, rows, SUGGESTIONS)
        if check.passed:
            wh.replace_rows(con, "coding.suggestions", rows, {"school_year": year})
    available = dg.AssetCheckResult(
        check_name="suggester_available", asset_key=SUGGESTIONS, passed=zs is not None,
        severity=dg.AssetCheckSeverity.WARN, metadata={"problem": problem or ""})
    if zs is None:
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "problem": problem},
                                    check_results=[check, available])
    per_year = (rows.groupby(["school_year", "source"]).agg(
        suggestions=("code_id", "size"), answers=("answer_id", "nunique")).reset_index())
    n_answers = rows["answer_id"].nunique()
    n_categories = rows.drop_duplicates(["answer_id", "framework", "dimension"]).shape[0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "answers_with_suggestions": n_answers,
            "categories_per_answer": round(n_categories / n_answers, 2) if n_answers else 0.0,
            "per_year": md_table(per_year, 20),
            "model": zs.model.files.model_id,
            "model_sha256": zs.model.sha256,
            "preview": md_table(rows[["answer_id", "code_id", "probability", "source",
                                      "evidence_text"]].head(10)),
        },
        check_results=[check, available],
    )


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
    with warehouse.connect(context.log) as con:
        answers, sugg, keyword, final, units = (wh.read_frame(con, t, where) for t in (
            "staging.answers", "coding.suggestions", "coding.keyword_applications",
            "coding.final_codes", "coding.coder_units"))
        table, coded, sample, no_cv = stage.year_quality(
            list(codebooks.load()), answers, sugg, keyword, final, units, codes,
            config.cv_folds, config.cv_max_answers)
        check = pandera_result("suggestion_quality_schema", SuggestionQuality, table,
                               SUGGESTION_QUALITY)
        if check.passed:
            wh.replace_rows(con, "coding.suggestion_quality", table, where)
        # the check pools every year's counts (tp/fp/fn/tn add up; kappa from the sums)
        every_year = con.execute(
            "select evaluation, level, framework, dimension, tp, fp, fn, tn "
            "from coding.suggestion_quality where level = 'dimension'").df() \
            if wh.table_columns(con, "coding.suggestion_quality") else table
    overall = quality.pooled_dimension_kappa(every_year)
    low = overall[overall["cohen_kappa"].notna() & (overall["cohen_kappa"] < config.min_kappa)]
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(table), "school_year": year,
                  "coded_answers": len(coded),
                  "schools": int(coded["school_id"].nunique()),
                  "school_grouped_cv": (
                      f"over {len(sample)} of the year's {len(coded)} coded answers"
                      if no_cv is None else f"no rows: {no_cv}"),
                  "by_dimension": md_table(quality.pooled_dimension_kappa(table), 20),
                  "every_year_by_dimension": md_table(overall, 20)},
        check_results=[check, dg.AssetCheckResult(
            check_name="suggestion_kappa_floor", asset_key=SUGGESTION_QUALITY,
            passed=low.empty, severity=dg.AssetCheckSeverity.WARN,
            metadata={"min_kappa": config.min_kappa, "below": md_table(low, 20)})],
    )


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
