"""Ingestion: landing exports -> raw.* -> staging.answers, one school year per partition;
and the year lifecycle: a year whose landing folder is gone is retired (raw/year_retirements)."""


import functools
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline import settings
from pipeline.core.files import atomic_write_text
from pipeline.core.ingest import raw, staged_files, staged_rows, years
from pipeline.core.ingest.aliases import load_aliases, suggestions_csv
from pipeline.core.ingest.mapping import MAPPING_FILE_NAME, load_mapping, suggested_name
from pipeline.core.privacy.clean_memo import StagingCleanMemos
from pipeline.core.privacy.labels import label_export_files
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import load_roster, roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import catalog, file_rows
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse.fingerprint import fingerprint, query_fingerprint
from pipeline.defs.checks import gx_result, md_table, pandera_result
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import ProjectPaths, Warehouse
from pipeline.defs.sources import SURVEY_EXPORTS, export_file_observations
from pipeline.expectations import History, Limits, staging_batches
from pipeline.schemas import RawSurveyRows, StagingAnswers

RAW_ROWS = dg.AssetKey(["raw", "survey_rows"])
ANSWERS = dg.AssetKey(["staging", "answers"])
RETIREMENTS = dg.AssetKey(["raw", "year_retirements"])
LIFECYCLE_TAG = ("survey/lifecycle", "year_retirement")   # selects the retirement asset
# the raw rows, written per export file (file_rows.py): a kept file's rows keep their loaded_at
RAW_ROWS_SLICE = file_rows.Slice("raw.survey_rows")


def rows_records() -> ResultCache:
    """Where the ingestion steps record each export file's rows (file_rows.py)."""
    return ResultCache(cache_dir() / "results" / "file_rows", max_files=file_rows.MAX_FILES)


def year_count(con, table: str, year: str) -> int:
    return int(con.execute(f"select count(*) from {table} where school_year = ?",
                           [year]).fetchone()[0])


def year_folder(paths: ProjectPaths, year: str) -> Path:
    """The partition's landing folder; a clear error when it is gone (the year is retired by
    raw/year_retirements, not reloaded)."""
    folder = Path(paths.landing_dir) / year
    if not (folder / MAPPING_FILE_NAME).is_file():
        raise raw.LandingError(f"school year {year}: its landing folder {folder} (with a "
                               "mapping.yaml) is gone; raw/year_retirements retires the year")
    return folder


@dg.asset(
    key=RAW_ROWS,
    deps=[SURVEY_EXPORTS],   # the year's export files (same school-year partition)
    group_name="raw",
    partitions_def=school_years,
    pool="warehouse",
    kinds={"duckdb", "csv"},
    description="Every exported record verbatim (JSON of column -> text) with its file, sha256 "
    "and spreadsheet row; also writes raw.export_files and read-level raw.quarantine. Records "
    "each file read as an observation of exports/survey_exports (label, sha256, rows, reader).",
    check_specs=[dg.AssetCheckSpec("raw_rows_schema", asset=RAW_ROWS, blocking=True,
                                   description="pandera RawSurveyRows model")],
)
def raw_survey_rows(context: dg.AssetExecutionContext, paths: ProjectPaths,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    folder = year_folder(paths, year)
    where = {"school_year": year}
    with warehouse.connect(context.log) as con:
        # a file whose rows the table holds already is not loaded again (file_rows.py)
        mapping, exports = raw.year_exports(folder)
        shas = raw.file_sha256s(exports)
        keys = {p.name: k for p in exports
                if (k := raw.file_key(p, mapping, shas[p.name])) is not None}
        plan = file_rows.plan(con, rows_records(), "raw", year, keys, [RAW_ROWS_SLICE])
        data = raw.read_year(folder, others=loaded_elsewhere(con, year, ids=False),
                             rows_kept=set(plan.current), shas=shas)
        loaded = data.export_files.loc[data.export_files["status"] == "loaded", "file_name"]
        plan = plan.only(set(loaded))
        new_rows = data.survey_rows[~data.survey_rows["file_name"].isin(plan.current)]
        schema = pandera_result("raw_rows_schema", RawSurveyRows, new_rows, RAW_ROWS)
        file_rows.write(con, plan, {"raw.survey_rows": new_rows}, rows_records(),
                        record=None if schema.passed else set())
        wh.replace_rows(con, "raw.export_files", data.export_files, where)
        wh.replace_rows(con, "raw.quarantine", data.quarantine, {**where, "stage": "read"})
        n_rows = year_count(con, "raw.survey_rows", year)
    files = data.export_files
    for f in files[files["status"] != "loaded"].itertuples():
        context.log.error(f.error)
    roster = load_roster(paths.roster_path)
    for observation in export_file_observations(files, roster, year):
        context.log_event(observation)
    # file names as staging labels them: a file named after a person stays in raw
    labelled = label_export_files(files, roster)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n_rows,
            "files": len(files),
            "files_rows_kept": len(plan.current),
            "rows_written": len(new_rows),
            "files_unreadable": int(files["status"].isin(["unreadable", "skipped"]).sum()),
            "files_refused": int((files["status"] == "refused").sum()),
            "rows_quarantined_on_read": len(data.quarantine),
            "export_files": md_table(labelled[["file_name", "reader", "encoding", "n_records",
                                               "n_problems", "status", "file_sha256"]], 50),
        },
        check_results=[schema],
    )


@dg.asset(
    key=ANSWERS,
    deps=[RAW_ROWS],
    group_name="staging",
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
    folder = year_folder(paths, year)
    mapping = load_mapping(folder / MAPPING_FILE_NAME)
    aliases = load_aliases(folder / mapping.aliases)
    roster = load_roster(paths.roster_path)
    where = {"school_year": year}
    salt = paths.pseudonym_salt
    with warehouse.connect(context.log) as con:
        files = wh.read_frame(con, "raw.export_files", where)
        others = loaded_elsewhere(con, year)
        # texts earlier runs found no name in are not scanned again (privacy/clean_memo.py)
        clean = StagingCleanMemos(year, roster_fingerprint(roster))
        # one instance: each distinct text is scanned once
        fuzzy = FuzzyNameScan(roster, clean=clean.fuzzy)
        # each export file's rows are written on their own (file_rows.py): the files whose
        # rows the tables hold already are not staged again, only their state is replayed
        plan, staged = staged_rows.stage_new_files(
            con, year, files, mapping, roster, salt, others=others, aliases=aliases,
            fuzzy=fuzzy, clean=clean, records=rows_records(),
            kept=ResultCache(cache_dir() / "results" / "staged_files",
                             max_files=staged_files.MAX_FILES))
        # scanned before anything is written: an answer with a name never reaches staging
        leak_rows = name_leaks(staged.answers, fuzzy, files)
        clean.save()
        leaks = sorted({h["answer_id"] for h in leak_rows})
        new_answers = staged.answers[~staged.answers["answer_id"].isin(leaks)]
        schema = pandera_result("answers_schema", StagingAnswers, new_answers, ANSWERS)
        # a file is recorded as written only when its rows passed: else it is staged again
        # each session's date set again over the year's rows, in the write's transaction
        file_rows.write(con, plan, {"staging.answers": new_answers,
                                    "raw.redactions": staged.redactions,
                                    "raw.quarantine": staged.quarantine}, rows_records(),
                        record=None if schema.passed and not leaks else set(),
                        after=lambda c: staged_rows.update_session_dates(c, year))
        duplicates = staged_rows.key_duplicates(con, year)
        reconcile = reconciliation_by_file(con, year)
        answers = staged_rows.year_answers(con, year)
        history = other_years(con, year, answers["response_id"])
        preview = staged_rows.preview(con, year)
        redactions = year_count(con, "raw.redactions", year)
        levels, reasons = staged_rows.quarantine_counts(con, year)
    names_file = write_name_suggestions(context, folder, mapping, staged.names)
    review = [n for n in staged.names if n["status"] in ("unknown", "variant?")]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(answers),
            "respondents": int(answers["response_id"].nunique()),
            "answers_worked": int((answers["question_id"] == "worked").sum()),
            "answers_improve": int((answers["question_id"] == "improve").sum()),
            "non_substantive": int(answers["non_substantive"].sum()),
            "names_redacted": redactions,
            "rows_quarantined": levels.get("row", 0),
            "cells_flagged": levels.get("cell", 0),
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "names_to_review": len(review),
            "files_kept": len(staged.files_kept),
            "files_replayed": len(staged.files_replayed),
            "answers_written": len(new_answers),
            "name_suggestions": dg.MetadataValue.path(str(names_file)) if names_file
            else f"not written: no {mapping.aliases} in the year folder (a header-only one "
            "asks for them)",
            "preview": md_table(preview),
        },
        check_results=[
            answers_schema_result(schema, duplicates),
            gx_result("answers_expectations", f"staging_answers.{year}",
                      staging_batches(year, answers, reconcile, files, history,
                                      Limits.from_env(), window=mapping.window),
                      ANSWERS, docs_dir=str(Path(paths.reports_dir) / "data_docs"),
                      cache=ResultCache(cache_dir() / "results" / "gx_outcomes")),
            reconcile_result(reconcile, files),
            no_names_result(len(new_answers) + len(leaks), leak_rows),
        ],
    )


def answers_schema_result(schema: dg.AssetCheckResult, duplicates: dict[str, int]
                          ) -> dg.AssetCheckResult:
    """The pandera model's result on the rows written this run, and the year's key checked
    over every row (kept files' rows with the new ones)."""
    repeated = {k: n for k, n in duplicates.items() if n}
    return dg.AssetCheckResult(
        check_name=schema.check_name, asset_key=schema.asset_key,
        passed=schema.passed and not repeated,
        description=schema.description if not repeated else
        f"the year's answers repeat a key: {repeated}",
        metadata={**schema.metadata, "year_key_repeats": dg.MetadataValue.json(duplicates)})


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


def reconcile_result(frame: pd.DataFrame, files: pd.DataFrame | None = None
                     ) -> dg.AssetCheckResult:
    bad = frame[~frame["balanced"]]
    metadata = {"files": len(frame), "files_unbalanced": len(bad),
                "by_file": md_table(frame, 100)}
    if files is not None and len(files):
        # every data row of every file: loaded, or quarantined with a reason (refused files
        # quarantine each record; unreadable and skipped files count as one file each)
        refused = files[files["status"] == "refused"]
        metadata.update({
            "rows_in_loaded_files": int(frame["exported_rows"].sum()),
            "rows_staged": int(frame["staged_respondents"].sum()),
            "rows_quarantined": int(frame["quarantined_rows"].sum()),
            "rows_in_refused_files": int(refused["n_records"].fillna(0).sum()),
            "files_refused": len(refused),
            "files_unreadable_or_skipped": int(files["status"].isin(
                ["unreadable", "skipped"]).sum()),
        })
    return dg.AssetCheckResult(
        check_name="rows_reconcile", asset_key=ANSWERS, passed=bad.empty, metadata=metadata)


OTHER_FILES_SQL = """
select file_sha256, school_year, file_name from raw.export_files
where school_year <> $year and status = 'loaded' and file_sha256 is not null
order by school_year, file_name
"""
# response ids the exports supplied (not `<file stem>-r<row>` made up by staging); {among}:
# nothing, or AMONG_IDS for only the ids in the list $ids
_OTHER_IDS = """
select response_id, school_year, file_name, min(row_number) as row_number
from staging.answers
where school_year <> $year
  and response_id <> regexp_replace(file_name, '[.][^.]*$', '') || '-r' || row_number
  {among}
group by all order by school_year, file_name
"""
AMONG_IDS = "and response_id in (select unnest($ids::varchar[]))"
OTHER_IDS_SQL = _OTHER_IDS.format(among="")
OTHER_IDS_AMONG_SQL = _OTHER_IDS.format(among=AMONG_IDS)


def loaded_elsewhere(con, year: str, ids: bool = True) -> raw.OtherYears:
    """Export files (by sha256) other school years loaded, with where; with `ids`, their
    response ids too, fetched from `con` as staging asks for them (`OtherYears.need`: the
    ids of the files it stages), so `con` must stay open while they are used."""
    files: dict[str, tuple[str, str]] = {}
    if wh.table_columns(con, "raw.export_files"):
        for sha, other, name in con.execute(OTHER_FILES_SQL, {"year": year}).fetchall():
            files.setdefault(sha, (other, name))
    if not ids:
        return raw.OtherYears(files=files)
    # staging's key digests the ids as the rows' fingerprint in DuckDB, not 900,000 Python
    # tuples sorted and hashed per year at a million answers; no table yet: no rows
    digest, fetch = (0, 0), None
    if wh.table_columns(con, "staging.answers"):
        digest = query_fingerprint(con, OTHER_IDS_SQL, {"year": year})
        fetch = functools.partial(_other_ids, con, year)
    return raw.OtherYears(files=files, ids_digest="rows " + fingerprint(digest), fetch=fetch)


def _other_ids(con, year: str, ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """Which of `ids` other school years loaded, each with its first year, file and row."""
    out: dict[str, tuple[str, str, int]] = {}
    for rid, other, name, row in con.execute(OTHER_IDS_AMONG_SQL,
                                             {"year": year, "ids": ids}).fetchall():
        out.setdefault(rid, (other, name, int(row)))
    return out


def write_name_suggestions(context, folder: Path, mapping, rows: list[dict]) -> Path | None:
    """aliases.suggested.csv next to the year's alias table, when the year has one (a person
    keeps it: the folder is theirs to write in; even a header-only aliases.csv asks for the
    suggestions). Not written otherwise: the landing folder is the pipeline's input, and the
    file lists coach names as typed, so it never goes under reports/."""
    if not (folder / mapping.aliases).is_file():
        return None
    text = suggestions_csv(rows)
    target = folder / suggested_name(mapping.aliases)
    try:
        if not (target.is_file() and target.read_text(encoding="utf-8") == text):
            atomic_write_text(target, text)
        return target
    except OSError as exc:
        context.log.warning(f"cannot write {target}: {exc}")
        return None


def other_years(con, year: str, response_ids=None) -> History:
    """Response ids and export hashes already loaded for other school years.

    With `response_ids` (this year's), only the other years' ids among them: the expectation
    that no id repeats another year's fails on exactly the same ids, and GX copies and
    serialises its value set many times (all other years' ids cost ~1 minute at 100,000
    answers)."""
    among = "" if response_ids is None else AMONG_IDS
    params = {"year": year} if response_ids is None else {
        "year": year, "ids": [str(r) for r in dict.fromkeys(response_ids) if r is not None]}
    ids = con.execute("select distinct response_id from staging.answers "
                      f"where school_year <> $year {among}", params).fetchall()
    hashes = con.execute("select distinct file_sha256 from raw.export_files "
                         "where school_year <> $year and status = 'loaded'",
                         {"year": year}).fetchall()
    return History(response_ids={r for (r,) in ids}, file_sha256={h for (h,) in hashes})


SCANNED_COLUMNS = ("answer_text", "file_name", "response_id")


def name_leaks(answers: pd.DataFrame, scanner: FuzzyNameScan,
               files: pd.DataFrame | None = None) -> list[dict]:
    """Where the independent fuzzy scan still finds a roster name in the staged answers: one
    entry per answer and column, naming the table, column, file (its staged name and the
    first 12 hex of its sha256, never a name) and spreadsheet row."""
    sha = {} if files is None else dict(zip(files["file_name"], files["file_sha256"],
                                            strict=True))
    out = []
    columns = [c for c in dict.fromkeys((*SCANNED_COLUMNS, "row_number", "answer_id"))
               if c in answers.columns]
    cells = {c: answers[c].tolist() for c in columns}
    scanner.scan_ahead(v for c in SCANNED_COLUMNS if c in cells
                       for v in cells[c])   # on every core, when they are many
    for values in zip(*cells.values(), strict=True):
        rec = dict(zip(columns, values, strict=True))
        for column in SCANNED_COLUMNS:
            value = rec.get(column)
            if isinstance(value, str) and scanner.find(value):
                staged_name = rec["file_name"]
                file = ("(withheld: the file name holds the name)"
                        if scanner.find(staged_name) else staged_name)
                digest = sha.get(staged_name) or ""
                out.append({"table": "staging.answers", "column": column, "file": file,
                            "file_sha256": digest[:12] if isinstance(digest, str) else "",
                            "row": int(rec["row_number"]), "answer_id": rec["answer_id"]})
    return out


def describe_leak(hit: dict) -> str:
    sha = f" (sha256 {hit['file_sha256']})" if hit.get("file_sha256") else ""
    return (f"{hit['table']}.{hit['column']}: file {hit['file']}{sha}, row {hit['row']}, "
            f"answer {hit['answer_id']}")


def no_names_result(scanned: int, leaks: list[dict]) -> dg.AssetCheckResult:
    withheld = sorted({h["answer_id"] for h in leaks})
    return dg.AssetCheckResult(
        check_name="no_roster_names", asset_key=ANSWERS, passed=not leaks,
        description="answers with a name are withheld from staging, not written"
        + (f"; first: {describe_leak(leaks[0])}" if leaks else ""),
        metadata={"answers_scanned_this_run": scanned, "answers_withheld": len(withheld),
                  "answer_ids": dg.MetadataValue.json(withheld[:20]),
                  "where": dg.MetadataValue.json([describe_leak(h) for h in leaks[:20]])},
    )


# --------------------------------------------------------------------- year lifecycle

@dg.asset(
    key=RETIREMENTS,
    group_name="raw",
    tags=dict([LIFECYCLE_TAG]),
    pool="warehouse",
    kinds={"duckdb"},
    description="The year lifecycle: every school year the warehouse (or Dagster) still holds "
    "whose landing folder is gone is retired: its rows deleted from every year-partitioned "
    "table (and every other table with a school_year column), an audit row written here, its "
    "Data Docs and its dynamic partition removed. Refuses to retire anything when the landing "
    "folder is missing or holds no year folder.",
    check_specs=[dg.AssetCheckSpec("year_retirements_schema", asset=RETIREMENTS, blocking=True,
                                   description="pandera RawYearRetirements model")],
)
def year_retirements(context: dg.AssetExecutionContext, paths: ProjectPaths,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    landing_years = raw.check_landing(paths.landing_dir, mappings=False)
    retired = []
    with warehouse.connect(context.log) as con:
        wh.ensure_tables(con, [years.RETIREMENTS])
        for year in years.stale_years(con, landing_years):
            folder = Path(paths.landing_dir) / year
            row = years.retire_year(con, year, years.FOLDER_REMOVED,
                                    detail=f"landing folder {folder} is gone")
            context.log.warning(f"school year {year} retired: its landing folder {folder} is "
                                f"gone; rows deleted: {row['rows_deleted']}")
            retired.append(row)
        audit = years.retirements(con)
    for row in retired:
        remove_data_docs(Path(paths.reports_dir), row["school_year"])
    partitions = set(context.instance.get_dynamic_partitions(school_years.name))
    gone = sorted(partitions - set(landing_years))
    for year in gone:
        context.instance.delete_dynamic_partition(school_years.name, year)
        context.log.info(f"dynamic partition {year} deleted (no landing folder)")
    return dg.MaterializeResult(
        metadata={
            "retired_now": dg.MetadataValue.json([r["school_year"] for r in retired]),
            "rows_deleted": dg.MetadataValue.json({r["school_year"]: r["rows_deleted"]
                                                   for r in retired}),
            "partitions_deleted": dg.MetadataValue.json(gone),
            "landing_years": dg.MetadataValue.json(landing_years),
            "retirements_recorded": len(audit),
        },
        check_results=[pandera_result("year_retirements_schema",
                                      catalog.model(years.RETIREMENTS), audit, RETIREMENTS)],
    )


def remove_data_docs(reports_dir: Path, year: str) -> None:
    """A retired year's Great Expectations site goes with it (and leaves the index)."""
    from pipeline.expectations import write_docs_index

    docs = reports_dir / "data_docs"
    site = docs / f"staging_answers.{year}"
    if site.is_dir():
        shutil.rmtree(site, ignore_errors=True)
        write_docs_index(docs)
