"""The DuckDB warehouse: table contracts (DDL), connections that wait for a held lock,
and idempotent writes (delete the slice, insert the new rows, in one transaction)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

# schema.table -> column definitions. The warehouse README documents every column.
TABLES: dict[str, str] = {
    "raw.export_files": """
        school_year VARCHAR NOT NULL, file_name VARCHAR NOT NULL, file_sha256 VARCHAR,
        reader VARCHAR, detected BOOLEAN, encoding VARCHAR, n_columns INTEGER,
        columns JSON, labels JSON, n_records INTEGER, n_rows INTEGER, n_problems INTEGER,
        status VARCHAR NOT NULL, error VARCHAR, loaded_at TIMESTAMP""",
    "raw.survey_rows": """
        school_year VARCHAR NOT NULL, file_name VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
        row_number INTEGER NOT NULL, reader VARCHAR NOT NULL, record JSON NOT NULL,
        loaded_at TIMESTAMP""",
    "raw.quarantine": """
        school_year VARCHAR NOT NULL, file_name VARCHAR NOT NULL, row_number INTEGER,
        column_name VARCHAR, stage VARCHAR NOT NULL, level VARCHAR NOT NULL,
        reason VARCHAR NOT NULL, quarantined_at TIMESTAMP""",
    "raw.redactions": """
        school_year VARCHAR NOT NULL, file_name VARCHAR NOT NULL, row_number INTEGER NOT NULL,
        answer_id VARCHAR NOT NULL, question_id VARCHAR NOT NULL, start INTEGER NOT NULL,
        "end" INTEGER NOT NULL, original VARCHAR NOT NULL, placeholder VARCHAR NOT NULL""",
    "staging.answers": """
        answer_id VARCHAR NOT NULL, school_year VARCHAR NOT NULL, session_number INTEGER,
        session_date DATE, submitted_at TIMESTAMP, response_id VARCHAR NOT NULL,
        school_id VARCHAR, coach_id VARCHAR, role VARCHAR, question_id VARCHAR NOT NULL,
        answer_text VARCHAR NOT NULL, non_substantive BOOLEAN NOT NULL,
        n_redactions INTEGER NOT NULL, file_name VARCHAR NOT NULL, row_number INTEGER NOT NULL""",
    "coding.codebook_codes": """
        framework VARCHAR NOT NULL, dimension VARCHAR NOT NULL, code_id VARCHAR NOT NULL,
        label VARCHAR NOT NULL, description VARCHAR, patterns JSON NOT NULL,
        codebook_version VARCHAR NOT NULL""",
    "coding.code_applications": """
        answer_id VARCHAR NOT NULL, school_year VARCHAR NOT NULL, question_id VARCHAR NOT NULL,
        coder VARCHAR NOT NULL, coder_kind VARCHAR NOT NULL, framework VARCHAR NOT NULL,
        dimension VARCHAR NOT NULL, code_id VARCHAR NOT NULL, codebook_version VARCHAR,
        n_evidence INTEGER, evidence JSON, note VARCHAR, source_file VARCHAR,
        source_row INTEGER""",
    "coding.coder_units": """
        answer_id VARCHAR NOT NULL, coder VARCHAR NOT NULL, question_id VARCHAR NOT NULL,
        school_year VARCHAR NOT NULL, basis VARCHAR NOT NULL""",
    "coding.sheet_quarantine": """
        source_file VARCHAR NOT NULL, source_sheet VARCHAR, source_row INTEGER,
        source_column VARCHAR, column_name VARCHAR, coder VARCHAR, answer_id VARCHAR,
        code VARCHAR, reason VARCHAR NOT NULL""",
    "coding.agreement": """
        coder_a VARCHAR NOT NULL, coder_b VARCHAR NOT NULL, level VARCHAR NOT NULL,
        framework VARCHAR, dimension VARCHAR, code_id VARCHAR, question_id VARCHAR,
        school_year VARCHAR, n_units BIGINT, n_answers BIGINT, n_both BIGINT,
        n_only_a BIGINT, n_only_b BIGINT, n_neither BIGINT, prevalence DOUBLE,
        percent_agreement DOUBLE, cohen_kappa DOUBLE, krippendorff_alpha DOUBLE,
        gwet_ac1 DOUBLE, pabak DOUBLE,
        percent_agreement_ci_low DOUBLE, percent_agreement_ci_high DOUBLE,
        cohen_kappa_ci_low DOUBLE, cohen_kappa_ci_high DOUBLE,
        krippendorff_alpha_ci_low DOUBLE, krippendorff_alpha_ci_high DOUBLE,
        gwet_ac1_ci_low DOUBLE, gwet_ac1_ci_high DOUBLE,
        pabak_ci_low DOUBLE, pabak_ci_high DOUBLE, undefined_reason VARCHAR""",
    "coding.discrepancies": """
        discrepancy_id VARCHAR NOT NULL, answer_id VARCHAR NOT NULL, school_year VARCHAR,
        question_id VARCHAR, framework VARCHAR NOT NULL, dimension VARCHAR NOT NULL,
        code_id VARCHAR NOT NULL, answer_text VARCHAR, coder_a VARCHAR, decision_a VARCHAR,
        coder_b VARCHAR, decision_b VARCHAR, keyword_applied BOOLEAN, keyword_evidence VARCHAR""",
    "coding.adjudications": """
        discrepancy_id VARCHAR NOT NULL, decision VARCHAR, decision_text VARCHAR,
        reason VARCHAR, adjudicator VARCHAR, accepted BOOLEAN, source_file VARCHAR,
        source_row INTEGER""",
    "coding.adjudication_problems": """
        source_file VARCHAR, source_row INTEGER, column_name VARCHAR, discrepancy_id VARCHAR,
        reason VARCHAR NOT NULL""",
    "coding.final_codes": """
        answer_id VARCHAR NOT NULL, school_year VARCHAR NOT NULL, question_id VARCHAR NOT NULL,
        framework VARCHAR NOT NULL, dimension VARCHAR NOT NULL, code_id VARCHAR NOT NULL,
        provenance VARCHAR NOT NULL, decided_by VARCHAR, discrepancy_id VARCHAR""",
    "coding.keyword_quality": """
        framework VARCHAR, dimension VARCHAR, code_id VARCHAR, n_answers BIGINT, tp BIGINT,
        fp BIGINT, fn BIGINT, precision DOUBLE, recall DOUBLE, f1 DOUBLE""",
    "coding.suggestions": """
        answer_id VARCHAR NOT NULL, school_year VARCHAR NOT NULL, question_id VARCHAR NOT NULL,
        framework VARCHAR NOT NULL, dimension VARCHAR NOT NULL, code_id VARCHAR NOT NULL,
        probability DOUBLE NOT NULL, source VARCHAR NOT NULL, evidence_text VARCHAR,
        evidence_start INTEGER, evidence_end INTEGER, model_sha256 VARCHAR NOT NULL,
        codebook_version VARCHAR""",
    "coding.suggestion_quality": """
        evaluation VARCHAR NOT NULL, source VARCHAR, level VARCHAR NOT NULL, framework VARCHAR,
        dimension VARCHAR, code_id VARCHAR, question_id VARCHAR, school_year VARCHAR,
        n_answers BIGINT, tp BIGINT, fp BIGINT, fn BIGINT, tn BIGINT, precision DOUBLE,
        recall DOUBLE, f1 DOUBLE, cohen_kappa DOUBLE, keyword_precision DOUBLE,
        keyword_recall DOUBLE, keyword_f1 DOUBLE, keyword_kappa DOUBLE""",
}


class WarehouseLockedError(RuntimeError):
    pass


def register_table(name: str, columns_sql: str) -> None:
    """Stages outside this module declare their tables here."""
    TABLES[name] = columns_sql


def column_names(table: str) -> list[str]:
    """Column names of a table as declared in TABLES (no connection needed)."""
    return [part.split()[0].strip('"') for part in TABLES[table].split(",") if part.strip()]


def empty_frame(table: str) -> pd.DataFrame:
    return pd.DataFrame(columns=column_names(table))


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    for table in names or list(TABLES):
        schema = table.split(".")[0]
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create table if not exists {table} ({TABLES[table]})")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


@contextmanager
def connect(
    path: str | Path,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse. If another process holds it (an analyst's duckdb CLI, another run),
    retry with backoff for up to `wait_seconds`, reporting each wait through `on_wait`,
    then fail with a message that says who to ask to close what."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"warehouse {path} is held open by another process for {wait_seconds:.0f}s "
                    f"(close the duckdb session or wait for the other run): {exc}"
                ) from exc
            if on_wait:
                on_wait(f"warehouse {path} is locked by another process; retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        yield con
    finally:
        con.close()


def years_in_warehouse(path: str | Path) -> list[str]:
    """School years with staged answers (empty when the warehouse does not exist yet)."""
    if not Path(path).exists():
        return []
    with connect(path, read_only=True, wait_seconds=5) as con:
        if not table_columns(con, "staging.answers"):
            return []
        return [y for (y,) in con.execute(
            "select distinct school_year from staging.answers order by 1").fetchall()]


def replace_rows(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, where: dict | None = None
) -> int:
    """Delete the rows matching `where` (all rows when None), insert `frame`; one transaction."""
    ensure_tables(con, [table])
    cols = table_columns(con, table)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks column(s) {', '.join(missing)}")
    con.execute("begin transaction")
    try:
        if where:
            clause = " and ".join(f'"{k}" = ?' for k in where)
            con.execute(f"delete from {table} where {clause}", list(where.values()))
        else:
            con.execute(f"delete from {table}")
        if len(frame):
            con.register("_incoming", frame[cols])
            quoted = ", ".join(f'"{c}"' for c in cols)
            con.execute(f"insert into {table} ({quoted}) select {quoted} from _incoming")
            con.unregister("_incoming")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(frame)


def read_frame(
    con: duckdb.DuckDBPyConnection, table: str, where: dict | None = None
) -> pd.DataFrame:
    """Rows of `table` (optionally where column = value); a table not yet built reads as empty,
    so this works on read-only connections too."""
    if not table_columns(con, table):
        return empty_frame(table)
    if not where:
        return con.execute(f"select * from {table}").df()
    clause = " and ".join(f'"{k}" = ?' for k in where)
    return con.execute(f"select * from {table} where {clause}", list(where.values())).df()
