"""Marts: longitudinal aggregates of the final codes, exemplar quotes and SQL views."""

import dagster as dg

from pipeline.core import frame_memo
from pipeline.core.marts import marts, quotes_sessions, year_comparison
from pipeline.core.privacy.name_scan import names_in_frames
from pipeline.core.privacy.redact import load_roster, roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import table_record, views
from pipeline.core.warehouse.fingerprint import queries_fingerprint
from pipeline.defs.checks import md_table
from pipeline.defs.coding import CODEBOOK, KEYWORD
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.reconciliation import FINAL
from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
from pipeline.defs.sources import CODEBOOK_FILES

for _name, _columns in marts.MART_TABLES.items():
    wh.register_table(_name, _columns)

FREQ = dg.AssetKey(["marts", "code_frequencies"])
TRENDS = dg.AssetKey(["marts", "code_trends"])
YOY = dg.AssetKey(["marts", "year_over_year"])
SCHOOL = dg.AssetKey(["marts", "by_school"])
COACH = dg.AssetKey(["marts", "by_coach"])
QUOTES = dg.AssetKey(["marts", "exemplar_quotes"])
# the codebooks through the Codebooks resource (codebooks/yaml_files), not the table
UPSTREAM = [FINAL, ANSWERS, CODEBOOK_FILES]


class MartsConfig(dg.Config):
    # default (both unset), like with like: the first and the latest human-coded school year
    # when there are two, else the first and the latest year (rows flagged not comparable)
    year_a: str | None = None
    year_b: str | None = None
    quotes_per_code: int = 5


YEAR_MARTS = (FREQ, TRENDS, SCHOOL, COACH)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FREQ, deps=UPSTREAM, description="school year x question x framework x "
                     "dimension x code: answers coded, substantive answers, rate per 100, "
                     "schools and sessions; rolled up to dimension and framework (level)"),
        dg.AssetSpec(TRENDS, deps=UPSTREAM, description="the same per session number"),
        dg.AssetSpec(SCHOOL, deps=UPSTREAM, description="exact counts per school (suppress "
                     "cells under 5 before sharing)"),
        dg.AssetSpec(COACH, deps=UPSTREAM, description="exact counts per coach"),
    ],
    group_name="marts",
    pool="warehouse",
    partitions_def=school_years,
    check_specs=[
        dg.AssetCheckSpec("marts_reconcile_with_final_codes", asset=FREQ, blocking=True,
                          description="answers counted per code, dimension and framework "
                          "equal a direct count of coding.final_codes"),
        dg.AssetCheckSpec("no_roster_names_in_year_marts", asset=FREQ, blocking=True,
                          description="no roster name in the year's marts (rows withheld)"),
        dg.AssetCheckSpec("uncounted_codes", asset=FREQ,
                          description="warns on final codes the marts cannot count (code on "
                          "a non-substantive or unknown answer)"),
    ],
)
def year_marts(context: dg.AssetExecutionContext, paths: ProjectPaths, codebooks: Codebooks,
               warehouse: Warehouse):
    """One school year's marts (every row of them carries the year), written in one
    transaction; kept, with what their checks found, while the year's final codes, its
    answers' counting columns, the codebook, the roster and the code are the same
    (year_marts_key, table_record)."""
    year = context.partition_key
    codes = codebooks.codes_frame()
    where = {"school_year": year}
    records = ResultCache(cache_dir() / "results" / "year_marts", max_files=YEARS_KEPT)
    with warehouse.connect(context.log) as con:
        key = year_marts_key(con, paths, codes, year)
        found = table_record.kept(con, records, key, YEAR_MART_TABLES, slot=year, where=where)
        reused = found is not None
        if found is None:
            found = _made_year_marts(con, paths, codes, year)
            if found["passed"]:   # a failing check is found again on every run
                table_record.record(con, records, key, YEAR_MART_TABLES, found, slot=year,
                                    where=where)
    for key in YEAR_MARTS:
        name = ".".join(key.path)
        yield dg.MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": found["rows"][name], "reused": reused,
            "preview": dg.MetadataValue.md(found["previews"][name])})
    yield dg.AssetCheckResult(
        check_name="marts_reconcile_with_final_codes", asset_key=FREQ,
        passed=not found["mismatches"],
        metadata={"mismatches": found["mismatches"],
                  "sample": dg.MetadataValue.md(found["mismatch_sample"])})
    yield dg.AssetCheckResult(
        check_name="no_roster_names_in_year_marts", asset_key=FREQ, passed=not found["names"],
        metadata={"cells_with_names": len(found["names"]),
                  "rows_withheld": dg.MetadataValue.json(found["names"][:20])})
    yield dg.AssetCheckResult(
        check_name="uncounted_codes", asset_key=FREQ, passed=not found["uncounted"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"uncounted": found["uncounted"],
                  "sample": dg.MetadataValue.md(found["uncounted_sample"])})


YEAR_MART_TABLES = [".".join(key.path) for key in YEAR_MARTS]
YEARS_KEPT = 200   # result-cache records of year marts (one per school year)


def year_marts_key(con, paths: ProjectPaths, codes, year: str) -> str:
    """What a year's marts are made of: its final codes and its answers' counting columns
    (DuckDB fingerprints of the rows), the codebook, the roster (a row with a name is
    withheld) and (frame_memo.key) the code."""
    rows = queries_fingerprint(
        con, ("select * from coding.final_codes where school_year = ?", [year]),
        (f"select {', '.join(marts.ANSWER_COLUMNS)} from staging.answers "
         "where school_year = ?", [year]))
    return frame_memo.key("year marts/1", year, rows, codes,
                          roster_fingerprint(load_roster(paths.roster_path)))


def _made_year_marts(con, paths: ProjectPaths, codes, year: str) -> dict:
    """Compute and write the year's marts; what the step reports of them and their checks
    (JSON: table_record keeps it)."""
    # the answers' columns the marts count with (not their texts: at 600,000 answers a
    # year, reading them was a large part of the step)
    final = wh.read_frame(con, "coding.final_codes", {"school_year": year})
    answers = wh.read_columns(con, "staging.answers", marts.ANSWER_COLUMNS,
                              {"school_year": year})
    made = marts.year_marts(final, answers, codes)
    tables = {key: made[".".join(key.path)] for key in YEAR_MARTS}
    names = _write_withheld(con, paths, tables, {"school_year": year})
    mismatches = marts.reconcile_marts_with_final_codes(tables[FREQ], final, answers)
    uncounted = marts.uncounted_codes(final, answers)
    return {
        "rows": {".".join(k.path): len(f) for k, f in tables.items()},
        "previews": {".".join(k.path): md_table(f).value for k, f in tables.items()},
        "mismatches": len(mismatches), "mismatch_sample": md_table(mismatches).value,
        "names": names, "uncounted": len(uncounted),
        "uncounted_sample": md_table(uncounted).value,
        "passed": mismatches.empty and not names,
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(YOY, deps=[FREQ], description="change in rate between two years "
                     "(by default the first and the latest human-coded year), chi-square or "
                     "Fisher's exact, Newcombe CI, Cohen's h, BH-adjusted p; `comparable` and "
                     "`note` flag years coded by different sources (human, suggester, "
                     "keyword coder)"),
        # CODEBOOK: the views created with these tables read coding.codebook_codes
        dg.AssetSpec(QUOTES, deps=[*UPSTREAM, KEYWORD, CODEBOOK],
                     description="up to 5 redacted supporting quotes per code and question; "
                     "(re)creates the SQL views of pipeline/core/warehouse/views.py"),
    ],
    group_name="marts",
    pool="warehouse",
    check_specs=[
        dg.AssetCheckSpec("no_roster_names_in_marts", asset=QUOTES, blocking=True,
                          description="no roster name in any mart's text"),
    ],
)
def mart_tables(context: dg.AssetExecutionContext, config: MartsConfig, paths: ProjectPaths,
                codebooks: Codebooks, warehouse: Warehouse):
    """The all-years marts: year over year (from the per-year frequencies) and the quotes
    (their rotation spreads a code's quotes across years), with the views, in one
    transaction."""
    with warehouse.connect(context.log) as con:
        freq = wh.read_frame(con, "marts.code_frequencies")
        # each session's candidates kept while its rows are the same (quotes_sessions.py)
        chosen, reused, computed = quotes_sessions.kept_quotes(
            con, ResultCache(cache_dir() / "results" / "quote_contenders",
                             max_files=quotes_sessions.MAX_FILES),
            codebooks.codes_frame(), per_code=config.quotes_per_code)
        tables = {
            YOY: year_comparison.kept_year_over_year(freq, config.year_a, config.year_b),
            QUOTES: chosen,
        }
        names = _write_withheld(con, paths, tables, None, after=views.create_views)
    for key, frame in tables.items():
        extra = {"sessions_reused": len(reused),
                 "sessions_computed": dg.MetadataValue.json(computed)} if key == QUOTES else {}
        yield dg.MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": len(frame), "preview": md_table(frame), **extra})
    yield dg.AssetCheckResult(
        check_name="no_roster_names_in_marts", asset_key=QUOTES, passed=not names,
        metadata={"cells_with_names": len(names),
                  "rows_withheld": dg.MetadataValue.json(names[:20])})


def _write_withheld(con, paths: ProjectPaths, tables: dict, where: dict | None,
                    after=None) -> list[dict]:
    """Scan every table for roster names before anything is written (a row with one is
    withheld), then replace all of them in ONE transaction: a reader never sees some marts new
    and others old, and a run killed mid-write leaves them all old."""
    names = names_in_frames(load_roster(paths.roster_path),
                            {key.to_user_string(): frame for key, frame in tables.items()})
    writes = []
    for key, frame in tables.items():
        leaking = {int(h["row"]) for h in names if h["table"] == key.to_user_string()}
        writes.append((".".join(key.path), frame.drop(index=sorted(leaking)), where))
    wh.replace_many(con, writes, after=after)
    return names
