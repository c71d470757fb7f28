"""The DuckDB warehouse: the tables' DDL (generated from the catalog), connections that wait
for a held lock, and idempotent writes (delete the slice, insert the new rows, in one transaction)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.core.warehouse import catalog

# schema.table -> column definitions, generated from the table catalog (pipeline/core/warehouse/catalog.py,
# which also documents every column and generates warehouse/README.md's column tables).
TABLES: dict[str, str] = {name: catalog.ddl(name) for name in catalog.TABLES}


class WarehouseLockedError(RuntimeError):
    """Another process held the file for longer than the wait; `holder` names it (PID and
    program, from DuckDB's message) when DuckDB said."""

    def __init__(self, message: str, path: str = "", holder: str | None = None):
        super().__init__(message)
        self.path = path
        self.holder = holder


_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


_WAIT_HOLDER = re.compile(r"\(held by (?P<holder>PID \d+ \(.+\))\)$")


def lock_holder(message: str) -> str | None:
    """'PID 859 (/usr/bin/python3.11)' from DuckDB's lock error or from a wait message of
    `connect`, or None."""
    m = _HOLDER.search(message)
    if m:
        return f"PID {m['pid']} ({m['program']})"
    m = _WAIT_HOLDER.search(message)
    return m["holder"] if m else None


def register_table(name: str, columns_sql: str) -> None:
    """Deprecated: every table is declared in the catalog. Kept so that callers not yet updated
    keep working; it only checks that their column list is the catalog's."""
    declared = [part.split()[0].strip('"') for part in columns_sql.split(",") if part.strip()]
    if declared != catalog.columns(name):
        raise ValueError(f"{name}: columns {declared} differ from the catalog's "
                         f"{catalog.columns(name)} (pipeline/core/warehouse/catalog.py)")


def column_names(table: str) -> list[str]:
    """Column names of a table as declared in the catalog (no connection needed)."""
    return catalog.columns(table)


def empty_frame(table: str) -> pd.DataFrame:
    """No rows, the table's columns, typed."""
    return catalog.empty_frame(table)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    # duckdb_columns() rather than information_schema.columns: half the time (this runs a few
    # hundred times per run), and only the connection's own database, not attached ones
    rows = con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? order by column_index",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    """Create the tables (and the union views over them, catalog.UNION_VIEWS) that do not exist
    yet; an existing table gains the catalog's new nullable columns."""
    names = list(names or TABLES)
    views = [v for v in catalog.UNION_VIEWS.values() if set(v.tables) & set(names)]
    names += [t for v in views for t in v.tables if t not in names]
    for table in names:
        schema = table.split(".")[0]
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create table if not exists {table} ({TABLES[table]})")
        _add_new_columns(con, table)
    for view in views:
        _ensure_union_view(con, view)


def _relation_type(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    schema, table = name.split(".")
    row = con.execute("select table_type from information_schema.tables "
                      "where table_schema = ? and table_name = ?", [schema, table]).fetchone()
    return row[0] if row else None


def _ensure_union_view(con: duckdb.DuckDBPyConnection, view: catalog.UnionView) -> None:
    """(Re)create a union view. A base table of the same name (the one table an older catalog
    had, e.g. coding.code_applications before keyword and human applications were split) is
    split into the view's tables by `view.split_by`, then dropped, in one transaction."""
    kind = _relation_type(con, view.name)
    if kind == "BASE TABLE":
        old = set(table_columns(con, view.name))
        try:   # inside the caller's transaction when there is one (views.create_views)
            con.execute("begin transaction")
            own = True
        except duckdb.TransactionException:
            own = False
        try:
            for part, value in view.parts:
                cols = [c for c in catalog.columns(part) if c in old]
                quoted = ", ".join(f'"{c}"' for c in cols)
                con.execute(f"delete from {part}")
                con.execute(f"insert into {part} ({quoted}) select {quoted} from {view.name} "
                            f'where "{view.split_by}" = ?', [value])
            con.execute(f"drop table {view.name}")
            con.execute(f"create view {view.name} as {view.sql()}")
            if own:
                con.execute("commit")
        except BaseException:
            if own:
                con.execute("rollback")
            raise
        return
    if kind is None or table_columns(con, view.name) != catalog.columns(view.name):
        con.execute(f"create or replace view {view.name} as {view.sql()}")


def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A table created by an older catalog gains the nullable columns the catalog added since
    (e.g. coding.codebook_codes.dimension_label), so a view or reader can rely on them in a
    warehouse built before; its old rows hold nulls there until their stage rewrites them."""
    if table not in catalog.TABLES:
        return
    have = set(table_columns(con, table))
    for col in catalog.table(table).columns:
        if col.name not in have and col.nullable:
            con.execute(f'alter table {table} add column "{col.name}" {col.type}')


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
            holder = lock_holder(str(exc))
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"warehouse {path} is held open by another process for {wait_seconds:.0f}s "
                    f"(close the duckdb session or wait for the other run): {exc}",
                    path=str(path), holder=holder) from exc
            if on_wait:
                by = f" (held by {holder})" if holder else ""
                on_wait(f"warehouse {path} is locked by another process; retrying in "
                        f"{delay:.1f}s{by}")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        yield con
    finally:
        con.close()


def wait_until_writable(path: str | Path, wait_seconds: float,
                        on_wait: Callable[[str], None] | None = None) -> None:
    """Open the file read-write once and close it: returns when no other process holds it,
    raises WarehouseLockedError after `wait_seconds` (`on_wait` hears each retry). A command
    calls this before it starts, so that it waits once instead of once per step."""
    with connect(path, wait_seconds=wait_seconds, on_wait=on_wait):
        pass


def years_in_warehouse(path: str | Path) -> list[str]:
    """School years with staged answers (empty when the warehouse does not exist yet)."""
    if not Path(path).exists():
        return []
    with connect(path, read_only=True, wait_seconds=5) as con:
        if not table_columns(con, "staging.answers"):
            return []
        return [y for (y,) in con.execute(
            "select distinct school_year from staging.answers order by 1").fetchall()]


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def replace_rows(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, where: dict | None = None
) -> int:
    """Delete the rows matching `where` (all rows when None), insert `frame`; one transaction."""
    return replace_many(con, [(table, frame, where)])[table]


def replace_many(
    con: duckdb.DuckDBPyConnection,
    writes: list[tuple[str, pd.DataFrame, dict | None]],
    after: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
) -> dict[str, int]:
    """`replace_rows` for several (table, frame, where) slices in ONE transaction, then
    `after(con)` (e.g. re-creating views) inside it too: a reader, and a run killed half-way,
    see every slice old or every slice new, never a mix. Returns rows written per table."""
    tables = list(dict.fromkeys(t for t, _, _ in writes))
    ensure_tables(con, tables)
    cols = {t: table_columns(con, t) for t in tables}
    for table, frame, _ in writes:
        missing = [c for c in cols[table] if c not in frame.columns]
        if missing:
            raise ValueError(f"{table}: frame lacks column(s) {', '.join(missing)}")
    with transaction(con):
        for table, frame, where in writes:
            _replace_slice(con, table, cols[table], frame, where)
        if after is not None:
            after(con)
    counts: dict[str, int] = {}
    for table, frame, _ in writes:
        counts[table] = counts.get(table, 0) + len(frame)
    return counts


def _replace_slice(con, table: str, cols: list[str], frame: pd.DataFrame,
                   where: dict | None) -> None:
    if where:
        clause = " and ".join(f'"{k}" = ?' for k in where)
        con.execute(f"delete from {table} where {clause}", list(where.values()))
    else:
        con.execute(f"delete from {table}")
    insert_frame(con, table, cols, frame)


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, cols: list[str],
                 frame: pd.DataFrame) -> None:
    """Append `frame`'s `cols` to `table` (inside the caller's transaction)."""
    if len(frame):
        con.register("_incoming", frame[cols])
        quoted = ", ".join(f'"{c}"' for c in cols)
        con.execute(f"insert into {table} ({quoted}) select {quoted} from _incoming")
        con.unregister("_incoming")


def read_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | None,
                 where: dict | None = None, order_by: str | None = None) -> pd.DataFrame:
    """`read_frame` of these columns only (in this order; None: every column), sorted by
    `order_by` (SQL, e.g. "all") when given: an order of the rows' own, not where the writes
    left them."""
    if not table_columns(con, table):
        frame = empty_frame(table)
        return frame if columns is None else frame[list(columns)]
    quoted = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
    clause = " and ".join(f'"{k}" = ?' for k in where or {})
    return con.execute(f"select {quoted} from {table}" + (f" where {clause}" if where else "")
                       + (f" order by {order_by}" if order_by else ""),
                       list((where or {}).values())).df()


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
