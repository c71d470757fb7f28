"""Coding: versioned YAML codebooks -> keyword code applications with their evidence."""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core.coding import keyword as coding
from pipeline.core.coding.codebook import codebook_codes_frame, load_codebooks
from pipeline.core.warehouse import connection as wh
from pipeline.defs.checks import md_table
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import ProjectPaths, Warehouse

CODEBOOK = dg.AssetKey(["coding", "codebook_codes"])
KEYWORD = dg.AssetKey(["coding", "keyword_applications"])


def codebook_frame(paths: ProjectPaths) -> pd.DataFrame:
    """The codebooks as coding.codebook_codes rows, read from the YAML files themselves: the
    stages that need the codebook use its source, so they never depend on the table having
    been published first (a sensor refresh on a new warehouse runs them in any order)."""
    return codebook_codes_frame(load_codebooks([Path(paths.codebook_dir)]))


@dg.asset(
    key=CODEBOOK,
    group_name="coding",
    pool="warehouse",
    kinds={"duckdb", "yaml"},
    description="The YAML codebooks as a table: one row per code with its patterns and the "
    "codebook's content-hash version.",
)
def codebook_codes(context: dg.AssetExecutionContext, paths: ProjectPaths,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    books = load_codebooks([Path(paths.codebook_dir)])
    frame = codebook_codes_frame(books)
    with warehouse.connect(context.log) as con:
        wh.replace_rows(con, "coding.codebook_codes", frame)
    per_dim = frame.groupby(["framework", "dimension"]).size().reset_index(name="codes")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "versions": dg.MetadataValue.json({b.framework: b.version for b in books}),
        "codes_per_dimension": md_table(per_dim, 20),
    })


@dg.asset(
    key=KEYWORD,
    deps=[ANSWERS, CODEBOOK],
    group_name="coding",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb"},
    description="coding.code_applications rows of the keyword coder (coder = 'keyword'): one "
    "per (substantive answer, code), with every matching pattern, matched text and span.",
    check_specs=[
        dg.AssetCheckSpec("codes_in_codebook", asset=KEYWORD, blocking=True,
                          description="every applied code exists in the codebook under the "
                          "same framework and dimension"),
        dg.AssetCheckSpec("evidence_spans_match", asset=KEYWORD, blocking=True,
                          description="every evidence span's text equals the recorded "
                          "matched text in the redacted answer"),
    ],
)
def keyword_applications(context: dg.AssetExecutionContext, paths: ProjectPaths,
                         warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    books = load_codebooks([Path(paths.codebook_dir)])
    with warehouse.connect(context.log) as con:
        answers = wh.read_frame(con, "staging.answers", {"school_year": year})
        apps = coding.keyword_applications(answers, books)
        wh.replace_rows(con, "coding.code_applications", apps,
                        {"school_year": year, "coder_kind": "keyword"})
    codes = codebook_codes_frame(books)   # the codebooks this run coded with
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
            "codebook_versions": dg.MetadataValue.json(
                {b.framework: b.version for b in books}),
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


