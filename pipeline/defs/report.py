"""The findings report: reports/findings.html (self-contained) and reports/findings.md."""

import os
from pathlib import Path

import dagster as dg

from pipeline.core.coding.codebook import co_firing_groups
from pipeline.core.files import atomic_write_text
from pipeline.core.marts import marts
from pipeline.core.privacy.labels import label_export_files
from pipeline.core.privacy.name_scan import names_in_texts
from pipeline.core.privacy.redact import load_roster
from pipeline.core.report import kept
from pipeline.core.report.from_warehouse import co_firing_candidates, provenance_counts
from pipeline.core.report.inputs import EXPORT_FILE_COLUMNS, QUARANTINE_COLUMNS
from pipeline.core.report.render import render_context
from pipeline.core.report.report import TEMPLATES_ENV, ReportInputs, build_context
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import connection as wh
from pipeline.defs.ingestion import ANSWERS, RAW_ROWS
from pipeline.defs.marts import COACH, FREQ, QUOTES, SCHOOL, TRENDS, YOY
from pipeline.defs.reconciliation import AGREEMENT, FINAL, QUALITY
from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
from pipeline.defs.sources import CODEBOOK_FILES

REPORT = dg.AssetKey(["reports", "findings"])
# built in pipeline.defs.suggestions (spelled out here like the final codes' dependency on
# coding/suggestions); read as empty while it is not built
SUGGESTION_QUALITY = dg.AssetKey(["coding", "suggestion_quality"])


COMPARE_ENV = "SURVEY_REPORT_COMPARE"   # e.g. "2021-22,2023-24"


class ReportConfig(dg.Config):
    min_cell: int = 5     # per-school / per-coach counts under this are shown as "<5"
    # the two school years the report compares; empty: $SURVEY_REPORT_COMPARE, else the two
    # latest years coded the same way (docs/report.md)
    compare_years: list[str] = []
    # a folder of templates that override the package's; empty: $SURVEY_REPORT_TEMPLATES
    templates: str = ""


def compare_setting(config: ReportConfig) -> list[str] | None:
    years = config.compare_years or [
        y.strip() for y in os.environ.get(COMPARE_ENV, "").split(",") if y.strip()]
    return years or None


@dg.asset(
    key=REPORT,
    # every table it reads: the data-quality section reads raw.export_files and raw.quarantine
    # (raw/survey_rows, staging/answers) and raw.redactions (staging/answers), every year
    deps=[FREQ, TRENDS, YOY, SCHOOL, COACH, QUOTES, AGREEMENT, QUALITY, FINAL,
          SUGGESTION_QUALITY, CODEBOOK_FILES, RAW_ROWS, ANSWERS],
    group_name="reports",
    pool="warehouse",
    kinds={"html"},
    description="The study's tables per question (category, code, count, supporting quotes) "
    "compared across school years, charts, agreement, keyword-coder and suggestion quality "
    "and data quality; every figure of a year coded by a machine stand-in (suggester or "
    "keyword coder) is marked and the year's note names it.",
    check_specs=[dg.AssetCheckSpec("no_roster_names_in_report", asset=REPORT, blocking=True,
                                   description="no roster name appears in the report")],
)
def findings_report(context: dg.AssetExecutionContext, config: ReportConfig,
                    paths: ProjectPaths, codebooks: Codebooks,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    roster = load_roster(paths.roster_path)
    with warehouse.connect(context.log, read_only=True) as con:
        def read(table, columns=None):
            # in one order, whatever order the writes left the rows in (the report's key,
            # core/report/kept.py, hashes the frames in order)
            return wh.read_columns(con, table, columns, order_by="all")

        inputs = ReportInputs(
            frequencies=read("marts.code_frequencies"),
            quotes=read("marts.exemplar_quotes"),
            year_over_year=read("marts.year_over_year"),
            trends=read("marts.code_trends"),
            agreement=read("coding.agreement"),
            keyword_quality=read("coding.keyword_quality"),
            suggestion_quality=read("coding.suggestion_quality"),
            # worked out in DuckDB, not from every final code read into pandas
            coding_sources=marts.coding_sources_of_counts(provenance_counts(con)),
            co_firing=co_firing_groups(co_firing_candidates(con)),
            # file names as staging labels them: a file named after a person stays in raw
            export_files=label_export_files(read("raw.export_files", EXPORT_FILE_COLUMNS),
                                            roster),
            quarantine=read("raw.quarantine", QUARANTINE_COLUMNS),
            redactions=con.execute("select school_year, count(*) as n from raw.redactions "
                                   "group by 1 order by 1").df(),
            codebook_codes=codebooks.codes_frame(),
            by_school=read("marts.by_school"),
            by_coach=read("marts.by_coach"),
            min_cell=config.min_cell,
            compare_years=compare_setting(config),
            templates=config.templates or os.environ.get(TEMPLATES_ENV) or None,
        )
    # kept while its inputs, templates, roster and code are the same (core/report/kept.py):
    # the last report made (one slot)
    cache = ResultCache(cache_dir() / "results" / "findings")
    key = kept.report_key(inputs, roster)
    report = kept.load(cache, key)
    reused, found = report is not None, 0
    if report is None:
        built = build_context(inputs)
        report = kept.Rendered(*render_context(built, inputs.templates), built.compared)
        # scanned before writing: a report with a name is not written (the old one is removed)
        found = names_in_texts(roster, report.html, report.markdown)
        if not found:
            kept.store(cache, key, report)
    html, md = report.html, report.markdown
    out = Path(paths.reports_dir)
    html_path, md_path = out / "findings.html", out / "findings.md"
    metadata = {"written": not found, "reused": reused,
                "compared_years": " → ".join(report.compared) if report.compared else "none"}
    for path, text in ((html_path, html), (md_path, md)):
        if found:
            path.unlink(missing_ok=True)
        else:
            atomic_write_text(path, text)
            metadata[path.suffix.lstrip(".")] = dg.MetadataValue.path(str(path))
    if not found:
        metadata["summary"] = dg.MetadataValue.md(md[:3000])
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="no_roster_names_in_report", asset_key=REPORT, passed=not found,
            metadata={"names_found": found})],
    )
