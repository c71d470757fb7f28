"""Fingerprints to key caches of work derived from warehouse rows: a table's rows in DuckDB
(`rows_fingerprint`), a frame's rows in order (`frame_digest`), the code that computes a result
(`code_digest` for given modules, `package_digest` for the whole `pipeline` package,
`files_digest` for any folder's files), the libraries that compute it (`library_versions`), and
a digest of all of a key's parts (`fingerprint`); per session of the staged answers, the
fingerprints of its answers and of other tables' rows about them (`session_fingerprints`).

`rows_fingerprint(con, table, where)` is `(count(*), sum(hash(t)))` over the selected rows: DuckDB
hashes each whole row (every column, NULLs included) and sums the hashes as a HUGEINT, so the
figure does not depend on the rows' order and changes when a row is added, removed or edited
(100,000 rows in milliseconds). A sum of 64-bit hashes can collide in theory; with the row count
beside it, an accidental match of two different sets of rows is not a practical concern for a
cache, and a cache keyed by it still includes everything else the cached work depends on
(code version, settings, codebook versions) in its key.

The DuckDB row hash is stable for the same DuckDB version; the version is part of the text
`fingerprint` returns, so an upgrade means computing again, never reusing a stale entry.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import duckdb
import pandas as pd

SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def rows_fingerprint(con, table: str, where: dict[str, object] | None = None,
                     columns: list[str] | None = None) -> tuple[int, int]:
    """(rows, sum of row hashes) of `table`'s rows matching `where` (column -> value, all equal).
    `columns`: hash only these columns (default: the whole row)."""
    for name in (table, *(where or {}), *(columns or ())):
        if not SQL_NAME.fullmatch(name):
            raise ValueError(f"not a table or column name: {name!r}")
    row = f"({', '.join(columns)})" if columns else "t"
    sql = f"select count(*), coalesce(sum(hash({row})), 0) from {table} t"
    params: list[object] = []
    if where:
        sql += " where " + " and ".join(f"{col} = ?" for col in where)
        params = list(where.values())
    count, total = con.execute(sql, params).fetchone()
    return int(count), int(total)


def query_fingerprint(con, sql: str, params: list | dict | None = None) -> tuple[int, int]:
    """(rows, sum of row hashes) of what the query `sql` selects: `rows_fingerprint` for a
    selection a where-clause of equalities cannot say (rows of the answers in a set, say)."""
    # fetchall: the result finished, so the connection is free for (un)registering frames
    [(count, total)] = con.execute(
        f"select count(*), coalesce(sum(hash(t)), 0) from ({sql}) t", params or []).fetchall()
    return int(count), int(total)


def queries_fingerprint(con, *queries: str | tuple[str, list]) -> str:
    """`fingerprint` of several queries' `query_fingerprint`s (each query: SQL, or SQL and its
    parameters), for the key of a step that reads them. A query reading a table not built
    yet counts as "missing" (DuckDB's catalog error; outside a transaction, where the failed
    statement aborts nothing)."""
    parts: list[object] = []
    for query in queries:
        sql, params = (query, None) if isinstance(query, str) else query
        try:
            parts.append(query_fingerprint(con, sql, params))
        except duckdb.CatalogException:
            parts.append("missing")
    return fingerprint(*parts)


class Joined(NamedTuple):
    """Rows of `table` (alias t) about the staged answers (joined on answer_id): `hashed` is
    the hashed expression ("t" for the whole row, or "t.a, t.b"), `where` an optional
    condition on them with its parameters. `hashed` and `where` are SQL written by the
    caller (constants; values go in `params`), not checked here as `table` is."""
    table: str
    hashed: str = "t"
    where: str = ""
    params: tuple = ()


class SessionPrint(NamedTuple):
    school_year: str
    session_number: int | None
    answers: tuple[int, int]        # (rows, sum of hashes) of the answers' hashed columns
    joined: list[tuple[int, int]]   # the same of each `Joined` query's rows, (0, 0) for none


def session_fingerprints(con, answer_columns: Sequence[str],
                         joined: Sequence[Joined] = ()) -> list[SessionPrint]:
    """Each session of staging.answers (school year and session number, in that order, a
    missing session last): the `rows_fingerprint` of its answers' `answer_columns` and of
    each `joined` table's rows about its answers. One grouped query per table, so a key per
    session costs a scan, not a read: what a step that keeps its work per session keys it by."""
    for name in (*answer_columns, *(j.table for j in joined)):
        if not SQL_NAME.fullmatch(name):
            raise ValueError(f"not a table or column name: {name!r}")
    by = "group by a.school_year, a.session_number"
    cols = ", ".join(f"a.{c}" for c in answer_columns)
    answers = con.execute(
        f"select a.school_year, a.session_number, count(*), coalesce(sum(hash({cols})), 0) "
        f"from staging.answers a {by} "
        "order by a.school_year nulls last, a.session_number nulls last"
    ).fetchall()
    tables = [{(y, n): (int(c), int(h)) for y, n, c, h in con.execute(
        f"select a.school_year, a.session_number, count(*), coalesce(sum(hash({j.hashed})), 0) "
        f"from {j.table} t join staging.answers a on t.answer_id = a.answer_id "
        f"{'where ' + j.where if j.where else ''} {by}", list(j.params)).fetchall()}
        for j in joined]
    return [SessionPrint(year, number, (int(count), int(total)),
                         [rows.get((year, number), (0, 0)) for rows in tables])
            for year, number, count, total in answers]


def fingerprint(*parts: object) -> str:
    """A hex digest of `parts` (fingerprints, versions, settings: anything with a stable
    `repr`) and the DuckDB version, for a cache key."""
    h = hashlib.sha256(f"duckdb {duckdb.__version__}".encode())
    for part in parts:
        h.update(b"\x1f")
        h.update(repr(part).encode())
    return h.hexdigest()


def code_digest(*modules: ModuleType) -> str:
    """A digest of the modules' source files: the code version of a cached result, so an edit
    of the code that computes it (or of a check it depends on) means computing again."""
    h = hashlib.sha256()
    for module in modules:
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def files_digest(folder: str | Path, pattern: str = "*") -> str:
    """sha256 over the files under `folder` whose names match `pattern`: each one's path
    relative to `folder` and its bytes, in path order."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
        h.update(f"|{path.relative_to(folder)}|".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def package_digest() -> str:
    """A digest of every .py file of the `pipeline` package (read once per process): the code
    version of results whose making spans many modules (frame_memo.py's keys)."""
    return files_digest(Path(__file__).resolve().parents[2], "*.py")


def library_versions(*distributions: str) -> str:
    """The installed versions of these distributions ("name=version,..."), without importing
    them: for the key of a result they compute (a statistic, a rendering)."""
    from importlib.metadata import PackageNotFoundError, version

    def one(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    return ",".join(f"{name}={one(name)}" for name in distributions)


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a frame's rows in order, with its index, columns and dtypes (pandas'
    vectorised row hash; values of an object column are hashed by their text)."""
    h = hashlib.sha256(repr((list(frame.columns), [str(t) for t in frame.dtypes])).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()
