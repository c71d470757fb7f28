"""Coding: versioned YAML codebooks -> keyword code applications with their evidence.

Every asset that needs the codebooks reads them through the `Codebooks` resource (parsed once
per process and content hash) and depends on codebooks/yaml_files (`CODEBOOK_FILES`, the
external asset the resource reads), not on coding/codebook_codes: that asset records the
codebooks and their versions in the warehouse for the SQL readers (views, published copy).
"""

import dagster as dg
import pandas as pd

from pipeline.core.coding import keyword as coding
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
    with warehouse.connect(context.log) as con:
        answers = wh.read_frame(con, "staging.answers", {"school_year": year})
        apps = coding.keyword_applications(answers, books)
        wh.replace_rows(con, "coding.keyword_applications", apps, {"school_year": year})
    codes = codebooks.codes_frame()   # the codebooks this run coded with
    substantive = answers[~answers["non_substantive"]]
    per_code = (apps.groupby(["framework", "dimension", "code_id"]).size()
                .reset_index(name="answers").sort_values("answers", ascending=False))
    uncoded = len(set(substantive["answer_id"]) - set(apps["answer_id"]))
    preview = apps.merge(answers[["answer_id", "answer_text"]], on="answer_id").head(10)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(apps),
            "answers_coded": int(apps["answer_id"].nunique()),
            "substantive_answers": len(substantive),
            "answers_with_no_code": uncoded,
            "codebook_versions": dg.MetadataValue.json(codebooks.versions()),
            "hits_per_code": md_table(per_code, 30),
            "preview": md_table(preview[["answer_id", "code_id", "evidence", "answer_text"]]),
        },
        check_results=[codes_in_codebook_result(apps, codes),
                       spans_result(apps, answers)],
    )


def codes_in_codebook_result(apps: pd.DataFrame, codes: pd.DataFrame) -> dg.AssetCheckResult:
    unknown = coding.unknown_codes(apps, codes)
    return dg.AssetCheckResult(
        check_name="codes_in_codebook", asset_key=KEYWORD, passed=unknown.empty,
        metadata={"applications": len(apps), "unknown": len(unknown),
                  "sample": md_table(unknown)},
    )


def spans_result(apps: pd.DataFrame, answers: pd.DataFrame) -> dg.AssetCheckResult:
    bad = coding.span_mismatches(apps, answers)
    return dg.AssetCheckResult(
        check_name="evidence_spans_match", asset_key=KEYWORD, passed=not bad,
        metadata={"evidence_items": int(apps["n_evidence"].sum()), "mismatches": len(bad),
                  "sample": dg.MetadataValue.json(bad[:10])},
    )
