"""The year lifecycle: which school years the warehouse holds, retiring one, listing them.

A school year enters the warehouse when its landing folder (`<landing>/<year>/` with a
mapping.yaml) is loaded, and leaves it when it is *retired*: its folder was removed from the
landing folder (the `raw/year_retirements` asset does it on the next refresh) or a person ran
`survey-pipeline year retire YEAR`.

Retiring is generic over the table catalog (pipeline/core/warehouse/catalog.py): the year's
rows are deleted from every table whose partition column is `school_year` (raw, staging,
coding... and any table made year-partitioned later), and from every other table with a
`school_year` column (all-years tables such as the agreement or the marts, which the next
refresh rebuilds without the year), in one transaction with the audit row written to
`raw.year_retirements` (what was retired, when, why, the files the year had, the rows deleted
per table). The audit table itself is never deleted from.

No Dagster here: the asset and the command line both call `retire_year`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.core.ingest.mapping import MAPPING_FILE_NAME
from pipeline.core.ingest.raw import is_ignored, school_years, unmatched_files, year_exports
from pipeline.core.warehouse import catalog
from pipeline.core.warehouse import connection as wh

RETIREMENTS = "raw.year_retirements"
FOLDER_REMOVED, COMMAND = catalog.RETIREMENT_TRIGGERS


@dataclass(frozen=True)
class YearTable:
    table: str
    column: str
    partitioned: bool        # the writer replaces this year's slice (vs rebuilt all-years)


def year_tables() -> list[YearTable]:
    """Every catalog table holding rows of one school year: partitioned tables first (by their
    partition column), then the other tables with a `school_year` column."""
    out = []
    for name, spec in catalog.TABLES.items():
        if name == RETIREMENTS:
            continue
        if spec.partition:
            out.append(YearTable(name, spec.partition, True))
        elif "school_year" in {c.name for c in spec.columns}:
            out.append(YearTable(name, "school_year", False))
    return sorted(out, key=lambda t: (not t.partitioned, t.table))


def _existing(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_schema || '.' || table_name from information_schema.tables"
                       " where table_type = 'BASE TABLE'").fetchall()
    return {r[0] for r in rows}


def years_in_warehouse(con: duckdb.DuckDBPyConnection) -> list[str]:
    """School years with rows in any year-partitioned table."""
    existing = _existing(con)
    parts = [f'select distinct "{t.column}" as y from {t.table}' for t in year_tables()
             if t.partitioned and t.table in existing]
    if not parts:
        return []
    rows = con.execute(" union ".join(parts) + " order by 1").fetchall()
    return [y for (y,) in rows if y is not None]


def retire_year(con: duckdb.DuckDBPyConnection, year: str, trigger: str, detail: str = "",
                at: datetime | None = None) -> dict:
    """Delete `year` from every year table and write the audit row, in one transaction.
    Returns the audit row (as written)."""
    if trigger not in catalog.RETIREMENT_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    at = at or datetime.now().replace(microsecond=0)
    wh.ensure_tables(con, [RETIREMENTS])
    existing = _existing(con)
    files = "[]"
    if "raw.export_files" in existing:
        frame = con.execute("select file_name, file_sha256, status, n_rows from raw.export_files "
                            "where school_year = ? order by file_name", [year]).df()
        files = json.dumps([{k: (None if pd.isna(v) else (int(v) if k == "n_rows" else v))
                             for k, v in row.items()} for row in frame.to_dict("records")],
                           ensure_ascii=False)
    n_answers = 0
    if "staging.answers" in existing:
        n_answers = con.execute("select count(*) from staging.answers where school_year = ?",
                                [year]).fetchone()[0]
    deleted: dict[str, int] = {}
    row = {"school_year": year, "retired_at": at, "trigger": trigger, "detail": detail or None,
           "files": files, "n_answers": int(n_answers), "rows_deleted": "{}"}
    con.execute("begin transaction")
    try:
        for t in year_tables():
            if t.table not in existing:
                continue
            # fetchall, not fetchone: DuckDB 2 refuses `register` below while a result is
            # unfinished (a year table without the year's rows was the last one counted)
            n = con.execute(f'select count(*) from {t.table} where "{t.column}" = ?',
                            [year]).fetchall()[0][0]
            if n:
                con.execute(f'delete from {t.table} where "{t.column}" = ?', [year])
                deleted[t.table] = int(n)
        row["rows_deleted"] = json.dumps(deleted, sort_keys=True)
        audit = pd.DataFrame([row], columns=catalog.columns(RETIREMENTS))
        catalog.model(RETIREMENTS).validate(audit)
        con.register("_retired", audit)
        con.execute(f"insert into {RETIREMENTS} select * from _retired")
        con.unregister("_retired")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return row


def stale_years(con: duckdb.DuckDBPyConnection, landing_years: list[str]) -> list[str]:
    """Years the warehouse holds whose landing folder is gone."""
    return sorted(set(years_in_warehouse(con)) - set(landing_years))


def retirements(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if RETIREMENTS not in _existing(con):
        return catalog.empty_frame(RETIREMENTS)
    return con.execute(f"select * from {RETIREMENTS} order by retired_at, school_year").df()


# ------------------------------------------------------------------------- year list

def _count(con, existing, sql: str, table: str, year: str) -> int:
    if table not in existing:
        return 0
    return int(con.execute(sql, [year]).fetchone()[0])


def _landing_files(landing_dir: Path, year: str) -> tuple[bool, int, str]:
    folder = landing_dir / year
    if not (folder / MAPPING_FILE_NAME).is_file():
        return False, 0, ""
    try:
        mapping, files = year_exports(folder)
        extra = unmatched_files(folder, mapping)
        aliases = "aliases.csv" if (folder / mapping.aliases).is_file() else "no alias table"
        return True, len(files) + len(extra), aliases
    except Exception as exc:  # noqa: BLE001 - a listing reports a bad mapping, it does not stop
        return True, sum(1 for p in folder.iterdir() if p.is_file() and not is_ignored(p.name)
                         and p.name != MAPPING_FILE_NAME), f"mapping error: {exc}"


def year_list(con: duckdb.DuckDBPyConnection | None, landing_dir: str | Path) -> pd.DataFrame:
    """One row per school year in the landing folder or the warehouse: its files, answers and
    coding state. `con` may be None (no warehouse yet)."""
    landing_dir = Path(landing_dir)
    existing = _existing(con) if con is not None else set()
    in_wh = years_in_warehouse(con) if con is not None else []
    retired = retirements(con) if con is not None else catalog.empty_frame(RETIREMENTS)
    years = sorted(set(school_years(landing_dir)) | set(in_wh)
                   | set(retired["school_year"].astype(str)))
    rows = []
    for year in years:
        present, n_landing, alias_note = _landing_files(landing_dir, year)
        files = (con.execute("select status, count(*) from raw.export_files where school_year = ?"
                             " group by 1", [year]).fetchall()
                 if "raw.export_files" in existing else [])
        status = dict(files)

        def n(sql, table, year=year):
            return _count(con, existing, sql, table, year)

        answers = n("select count(*) from staging.answers where school_year = ?",
                    "staging.answers")
        quarantined = n("select count(*) from raw.quarantine where school_year = ? and level = "
                        "'row'", "raw.quarantine")
        keyword = n("select count(distinct answer_id) from coding.keyword_applications "
                    "where school_year = ?", "coding.keyword_applications")
        coders = n("select count(distinct coder) from coding.coder_units where school_year = ?",
                   "coding.coder_units")
        human = n("select count(distinct answer_id) from coding.coder_units where "
                  "school_year = ?", "coding.coder_units")
        suggested = n("select count(distinct answer_id) from coding.suggestions where "
                      "school_year = ?", "coding.suggestions")
        final = n("select count(distinct answer_id) from coding.final_codes where "
                  "school_year = ?", "coding.final_codes")
        if human:
            coding = f"human: {human} answers, {coders} coder(s)"
        elif suggested:
            coding = f"machine: suggestions for {suggested} answers"
        elif keyword:
            coding = f"keyword coder only: {keyword} answers"
        else:
            coding = "not coded"
        last = retired[retired["school_year"].astype(str) == year]
        if present:
            state = "loaded" if answers or files else "not loaded yet"
        elif year in in_wh:
            state = "folder gone: retired on the next refresh"
        else:
            state = f"retired {pd.Timestamp(last['retired_at'].iloc[-1]):%Y-%m-%d %H:%M}" \
                if len(last) else "retired"
        rows.append({
            "school_year": year, "state": state, "landing_files": n_landing,
            "files_loaded": int(status.get("loaded", 0)),
            "files_refused": int(status.get("refused", 0)),
            "files_unreadable": int(status.get("unreadable", 0) + status.get("skipped", 0)),
            "answers": answers, "rows_quarantined": quarantined,
            "keyword_coded": keyword, "final_coded": final, "coding": coding,
            "aliases": alias_note,
        })
    return pd.DataFrame(rows, columns=["school_year", "state", "landing_files", "files_loaded",
                                       "files_refused", "files_unreadable", "answers",
                                       "rows_quarantined", "keyword_coded", "final_coded",
                                       "coding", "aliases"])
