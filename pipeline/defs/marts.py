"""Marts: longitudinal aggregates of the final codes, exemplar quotes and SQL views."""

import dagster as dg

from pipeline.core.marts import marts, quotes
from pipeline.core.privacy.name_scan import NameScanner
from pipeline.core.privacy.redact import load_roster
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import views
from pipeline.defs.checks import md_table
from pipeline.defs.coding import CODEBOOK, codebook_frame
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.reconciliation import FINAL
from pipeline.defs.resources import ProjectPaths, Warehouse

for _name, _columns in marts.MART_TABLES.items():
    wh.register_table(_name, _columns)

FREQ = dg.AssetKey(["marts", "code_frequencies"])
TRENDS = dg.AssetKey(["marts", "code_trends"])
YOY = dg.AssetKey(["marts", "year_over_year"])
SCHOOL = dg.AssetKey(["marts", "by_school"])
COACH = dg.AssetKey(["marts", "by_coach"])
QUOTES = dg.AssetKey(["marts", "exemplar_quotes"])
UPSTREAM = [FINAL, ANSWERS, CODEBOOK]


class MartsConfig(dg.Config):
    # default (both unset), like with like: the first and the latest human-coded school year
    # when there are two, else the first and the latest year (rows flagged not comparable)
    year_a: str | None = None
    year_b: str | None = None
    quotes_per_code: int = 5


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FREQ, deps=UPSTREAM, description="school year x question x framework x "
                     "dimension x code: answers coded, substantive answers, rate per 100, "
                     "schools and sessions; rolled up to dimension and framework (level)"),
        dg.AssetSpec(TRENDS, deps=UPSTREAM, description="the same per session number"),
        dg.AssetSpec(YOY, deps=[FREQ], description="change in rate between two years "
                     "(by default the first and the latest human-coded year), chi-square or "
                     "Fisher's exact, Newcombe CI, Cohen's h, BH-adjusted p; `comparable` and "
                     "`note` flag years coded by different sources (human, suggester, "
                     "keyword coder)"),
        dg.AssetSpec(SCHOOL, deps=UPSTREAM, description="exact counts per school (suppress "
                     "cells under 5 before sharing)"),
        dg.AssetSpec(COACH, deps=UPSTREAM, description="exact counts per coach"),
        dg.AssetSpec(QUOTES, deps=[*UPSTREAM, dg.AssetKey(["coding", "keyword_applications"])],
                     description="up to 5 redacted supporting quotes per code and question"),
    ],
    group_name="marts",
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("marts_reconcile_with_final_codes", asset=FREQ, blocking=True,
                          description="answers counted per code, dimension and framework "
                          "equal a direct count of coding.final_codes"),
        dg.AssetCheckSpec("no_roster_names_in_marts", asset=QUOTES, blocking=True,
                          description="no roster name in any mart's text"),
        dg.AssetCheckSpec("uncounted_codes", asset=FREQ,
                          description="warns on final codes the marts cannot count (code on "
                          "a non-substantive or unknown answer)"),
    ],
)
def mart_tables(context: dg.AssetExecutionContext, config: MartsConfig, paths: ProjectPaths,
                warehouse: Warehouse):
    with warehouse.connect(context.log) as con:
        final = wh.read_frame(con, "coding.final_codes")
        answers = wh.read_frame(con, "staging.answers")
        codes = codebook_frame(paths)
        apps = wh.read_frame(con, "coding.code_applications", {"coder_kind": "keyword"})
        freq = marts.code_frequencies(final, answers, codes)
        tables = {
            FREQ: freq,
            TRENDS: marts.code_trends(final, answers, codes),
            YOY: marts.year_over_year(freq, config.year_a, config.year_b),
            SCHOOL: marts.by_school(final, answers, codes),
            COACH: marts.by_coach(final, answers, codes),
            QUOTES: quotes.exemplar_quotes(final, answers, apps, codes,
                                           per_code=config.quotes_per_code),
        }
        # scanned before anything is written: a row with a roster name is withheld
        names = NameScanner(load_roster(paths.roster_path)).scan_frames(
            {key.to_user_string(): frame for key, frame in tables.items()})
        for key, frame in tables.items():
            leaking = {int(h["row"]) for h in names if h["table"] == key.to_user_string()}
            wh.replace_rows(con, ".".join(key.path), frame.drop(index=sorted(leaking)))
        views.create_views(con)
    mismatches = marts.reconcile_marts_with_final_codes(freq, final, answers)
    uncounted = marts.uncounted_codes(final, answers)
    for key, frame in tables.items():
        yield dg.MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": len(frame), "preview": md_table(frame)})
    yield dg.AssetCheckResult(
        check_name="marts_reconcile_with_final_codes", asset_key=FREQ, passed=mismatches.empty,
        metadata={"mismatches": len(mismatches), "sample": md_table(mismatches)})
    yield dg.AssetCheckResult(
        check_name="no_roster_names_in_marts", asset_key=QUOTES, passed=not names,
        metadata={"cells_with_names": len(names), "rows_withheld": dg.MetadataValue.json(names[:20])})
    yield dg.AssetCheckResult(
        check_name="uncounted_codes", asset_key=FREQ, passed=uncounted.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"uncounted": len(uncounted), "sample": md_table(uncounted)})
