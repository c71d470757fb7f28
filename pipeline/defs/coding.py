"""Coding: versioned YAML codebooks -> keyword code applications with their evidence.

Every asset that needs the codebooks reads them through the `Codebooks` resource (parsed once
per process and content hash) and depends on codebooks/yaml_files (`CODEBOOK_FILES`, the
external asset the resource reads), not on coding/codebook_codes: that asset records the
codebooks and their versions in the warehouse for the SQL readers (views, published copy).
"""

import dagster as dg
import pandas as pd

from pipeline.core.coding import keyword_sessions
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import connection as wh
from pipeline.defs.checks import md_table
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import Codebooks, Warehouse
from pipeline.defs.sources import CODEBOOK_FILES

CODEBOOK = dg.AssetKey(["coding", "codebook_codes"])
KEYWORD = dg.AssetKey(["coding", "keyword_applications"])


@dg.asset(
    key=CODEBOOK,
    deps=[CODEBOOK_FILES],
    group_name="coding",
    pool="warehouse",
    kinds={"duckdb", "yaml"},
    description="The YAML codebooks as a table: one row per code with its patterns and the "
    "codebook's content-hash version (for SQL readers: the views and the published copy).",
)
def codebook_codes(context: dg.AssetExecutionContext, codebooks: Codebooks,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    frame = codebooks.codes_frame()
    with warehouse.connect(context.log) as con:
        wh.replace_rows(con, "coding.codebook_codes", frame)
    versions = codebooks.versions()
    context.log_event(dg.AssetObservation(
        asset_key=CODEBOOK_FILES, description="the codebooks this run read",
        metadata={"versions": dg.MetadataValue.json(versions),
                  "files": dg.MetadataValue.json([f.name for f in codebooks.files()]),
                  "codes": len(frame)}))
    per_dim = frame.groupby(["framework", "dimension"]).size().reset_index(name="codes")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "versions": dg.MetadataValue.json(versions),
        "codes_per_dimension": md_table(per_dim, 20),
    })


@dg.asset(
    key=KEYWORD,
    deps=[ANSWERS, CODEBOOK_FILES],
    group_name="coding",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb"},
    description="coding.keyword_applications: one row per (substantive answer, code) the "
    "keyword coder applied, with every matching pattern, matched text and span.",
    check_specs=[
        dg.AssetCheckSpec("codes_in_codebook", asset=KEYWORD, blocking=True,
                          description="every applied code exists in the codebook under the "
                          "same framework and dimension"),
        dg.AssetCheckSpec("evidence_spans_match", asset=KEYWORD, blocking=True,
                          description="every evidence span's text equals the recorded "
                          "matched text in the redacted answer"),
    ],
)
def keyword_applications(context: dg.AssetExecutionContext, codebooks: Codebooks,
                         warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    books = codebooks.load()
    codes = codebooks.codes_frame()   # the codebooks this run coded with
    # session by session: a refresh codes the sessions whose answers changed only
    cache = ResultCache(cache_dir() / "results" / "keyword_sessions",
                        max_files=keyword_sessions.MAX_FILES)
    with warehouse.connect(context.log) as con:
        done = keyword_sessions.code_year(con, books, year, cache)
        unknown = keyword_sessions.unknown_codes(con, year, codes)
        summary = keyword_sessions.year_summary(con, year)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["rows"],
            "answers_coded": summary["answers_coded"],
            "substantive_answers": summary["substantive"],
            "answers_with_no_code": summary["uncoded"],
            "codebook_versions": dg.MetadataValue.json(codebooks.versions()),
            "sessions_coded": dg.MetadataValue.json(done.plan.computed),
            "sessions_kept": len(done.plan.current),
            "rows_written": done.written,
            "hits_per_code": md_table(summary["per_code"], 30),
            "preview": md_table(summary["preview"]),
        },
        check_results=[codes_in_codebook_result(unknown, summary["rows"]),
                       spans_result(done.evidence_items, done.mismatches, done.sample)],
    )


def codes_in_codebook_result(unknown: pd.DataFrame, applications: int) -> dg.AssetCheckResult:
    """`unknown`: the applications whose code is not in the codebook (keyword.unknown_codes)."""
    return dg.AssetCheckResult(
        check_name="codes_in_codebook", asset_key=KEYWORD, passed=unknown.empty,
        metadata={"applications": applications, "unknown": len(unknown),
                  "sample": md_table(unknown)},
    )


def spans_result(evidence_items: int, mismatches: int, sample: list[dict]
                 ) -> dg.AssetCheckResult:
    """What keyword.span_mismatches found, over every session of the year."""
    return dg.AssetCheckResult(
        check_name="evidence_spans_match", asset_key=KEYWORD, passed=mismatches == 0,
        metadata={"evidence_items": evidence_items, "mismatches": mismatches,
                  "sample": dg.MetadataValue.json(sample[:10])},
    )
