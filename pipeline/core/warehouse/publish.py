"""The published warehouse: a consistent, read-only copy of the working DuckDB file for analysts.

The pipeline writes `warehouse/survey.duckdb` (the working file; one writer process, see
docs/operations.md). After a successful refresh it publishes a copy that readers open instead:

    warehouse/published/survey.duckdb    every schema, table and view of the working file
                                         except the raw layer (it holds the exports as
                                         read, names included: it stays in the working file)
    warehouse/published/manifest.json    run id, time, school years, codebook versions,
                                         row counts per table

`publish` copies with DuckDB (from a connection on the working file, the caller's or its own
attaching it read-only) into a temporary file attached beside the target: the previous copy
brought up to date (only the school years whose rows changed are copied again) or a whole
copy (`COPY FROM DATABASE (SCHEMA)`, the raw schema dropped, then the other tables' rows);
docs/operations.md says when each. It checks the copy's row counts against the source, then
renames it over the published file (`os.replace`, atomic on one file system). Until the rename
the previous copy stays in place and readers keep using it; a reader that opened the previous
copy keeps reading it (its open file survives the rename on POSIX), and the next connection
sees the new one. Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.core.files import atomic_write_text

PUBLISHED_NAME = "survey.duckdb"
MANIFEST_NAME = "manifest.json"
TMP_PREFIX = ".publishing."
# Schemas the analysts' copy leaves out: raw keeps the exports verbatim, names included
# (privacy: names never leave the raw layer, so they never leave the working file).
UNPUBLISHED_SCHEMAS = ("raw",)
COPY_CATALOG = "published_copy"   # the copy's name while it is attached (with a unique tail)
# A copy brought up to date keeps the blocks of the rows it replaced until DuckDB reuses them;
# once it is this many times the size of the last whole copy, the next one is made whole.
# (A small file grows by whole blocks: not before it grew by GROWTH_SLACK bytes too.)
GROWTH_LIMIT = 1.5
GROWTH_SLACK = 64 * 2**20


class PublishError(RuntimeError):
    """The copy could not be made or does not match its source; the previous copy is kept."""


@dataclass(frozen=True)
class Publication:
    path: Path
    manifest_path: Path
    manifest: dict
    seconds: float
    size_bytes: int


def published_paths(published_dir: str | Path) -> tuple[Path, Path]:
    """(database, manifest) inside the published folder."""
    folder = Path(published_dir)
    return folder / PUBLISHED_NAME, folder / MANIFEST_NAME


def _quoted(catalog: str) -> str:
    return '"' + catalog.replace('"', '""') + '"'


def table_row_counts(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int]:
    """schema.table -> rows, for every base table of an attached database."""
    names = [f"{s}.{t}" for s, t in con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? "
        "order by 1, 2", [catalog]).fetchall()]
    cat = _quoted(catalog)
    return {name: con.execute(f"select count(*) from {cat}.{name}").fetchone()[0]
            for name in names}


def view_names(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    return [f"{s}.{v}" for s, v in con.execute(
        "select schema_name, view_name from duckdb_views() where database_name = ? "
        "and not internal order by 1, 2", [catalog]).fetchall()]


def _has_table(con, catalog: str, schema: str, table: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? "
        "and table_name = ?", [catalog, schema, table]).fetchone()[0])


def school_years(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    if not _has_table(con, catalog, "staging", "answers"):
        return []
    return [y for (y,) in con.execute(
        f"select distinct school_year from {_quoted(catalog)}.staging.answers order by 1"
    ).fetchall()]


def codebook_versions(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    """framework -> codebook version (first 12 hex of the file's sha256)."""
    if not _has_table(con, catalog, "coding", "codebook_codes"):
        return {}
    rows = con.execute(
        f"select framework, string_agg(distinct codebook_version, ',' order by codebook_version) "
        f"from {_quoted(catalog)}.coding.codebook_codes group by 1 order by 1").fetchall()
    return dict(rows)


def working_file(working: str | Path) -> Path:
    """The working file; PublishError when there is none."""
    working = Path(working)
    if not working.exists():
        raise PublishError(f"no working warehouse at {working}: nothing to publish")
    return working


def publish(working: str | Path, published_dir: str | Path, run_id: str | None = None,
            extra: dict | None = None, con: duckdb.DuckDBPyConnection | None = None,
            whole_copy_key: str | None = None) -> Publication:
    """Copy `working` into `published_dir`/survey.duckdb (temporary name, then rename) and
    write manifest.json. The caller makes sure no process writes `working` meanwhile (the
    Dagster "warehouse" pool does); raises PublishError and keeps the previous copy if the
    copy fails or its row counts differ from the source's. `con`: a connection (or cursor)
    on `working` to copy from, e.g. the one `survey-pipeline run` holds; without one, the
    file is attached read-only to a connection of this function's own.

    The previous copy is brought up to date (`_copy_changes`: only the school years whose rows
    changed are copied) when its manifest has the same `whole_copy_key` (not None), its
    definitions are the source's and it has grown less than GROWTH_LIMIT times since its
    last whole copy; else the copy is made whole. The replaced rows' old bytes can stay in a
    copy brought up to date until the next whole copy, so the caller's key changes with what
    usually removes a name from the published tables (the roster, the code that redacts), and
    None asks for a whole copy (docs/operations.md: when to force one)."""
    started = time.monotonic()
    working = working_file(working)
    target, manifest_path = published_paths(published_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{TMP_PREFIX}*"):   # left by a publisher killed mid-copy
        stale.unlink(missing_ok=True)
    tmp = target.parent / f"{TMP_PREFIX}{os.getpid()}.{PUBLISHED_NAME}"
    previous = _previous_manifest(published_dir) if target.exists() else None
    own = con is None
    con = duckdb.connect() if own else con
    dst = f"{COPY_CATALOG}_{uuid.uuid4().hex[:12]}"   # never one a failed copy left attached
    try:
        if own:
            con.execute(f"attach '{_sql_text(working)}' as src (read_only)")
        src = "src" if own else con.execute("select current_database()").fetchone()[0]
        copied = None
        if (whole_copy_key is not None and previous is not None
                and previous.get("whole_copy_key") == whole_copy_key
                and not _grown(target.stat().st_size, previous)):
            copied = _copy_changes(con, src, target, tmp, dst)
        if copied is None:
            _copy_whole(con, src, tmp, dst)
        source_counts = {name: n for name, n in table_row_counts(con, src).items()
                         if name.split(".")[0] not in UNPUBLISHED_SCHEMAS}
        counts = table_row_counts(con, dst)
        if counts != source_counts:
            differ = sorted(k for k in set(counts) | set(source_counts)
                            if counts.get(k) != source_counts.get(k))
            raise PublishError(f"the copy differs from {working} in {', '.join(differ)}")
        manifest = {
            "run_id": run_id,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": str(working),
            "school_years": school_years(con, dst),
            "codebook_versions": codebook_versions(con, dst),
            "row_counts": counts,
            "views": view_names(con, dst),
            "copied": "every table" if copied is None else copied,
            "whole_copy_key": whole_copy_key,
            **(extra or {}),
        }
        con.execute(f"detach {dst}")   # checkpoints: the copy is one self-contained file
    except duckdb.Error as exc:
        _let_go(con, own, dst)
        _remove_database(tmp)
        raise PublishError(f"could not copy {working} to {target}: {exc}") from exc
    except OSError as exc:   # copying the previous file: disk full, permissions
        _let_go(con, own, dst)
        _remove_database(tmp)
        raise PublishError(f"could not copy {working} to {target}: {exc}") from exc
    except BaseException:
        _let_go(con, own, dst)
        _remove_database(tmp)
        raise
    if own:
        con.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    size = tmp.stat().st_size
    manifest["size_bytes"] = size
    manifest["full_copy_bytes"] = size if copied is None else previous.get("full_copy_bytes",
                                                                           size)
    os.chmod(tmp, 0o444)   # a copy to read: opening it read-write fails (except for root)
    os.replace(tmp, target)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Publication(path=target, manifest_path=manifest_path, manifest=manifest,
                       seconds=time.monotonic() - started, size_bytes=size)


def _previous_manifest(published_dir: str | Path) -> dict | None:
    """The current copy's manifest, or None (a whole copy) when it cannot be read."""
    try:
        manifest = read_manifest(published_dir)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _grown(size: int, previous: dict) -> bool:
    """Whether the previous copy grew past the limit since its last whole copy."""
    whole = previous.get("full_copy_bytes", size)
    if not isinstance(whole, int) or isinstance(whole, bool):
        return True   # a manifest not written by this function: make the copy whole
    return size > max(GROWTH_LIMIT * whole, whole + GROWTH_SLACK)


def _copy_whole(con, src: str, tmp: Path, dst: str) -> None:
    """Every published table's rows into a new file at `tmp`, attached as `dst`."""
    # read_write: a connection opened read-only would attach the copy read-only too
    con.execute(f"attach '{_sql_text(tmp)}' as {dst} (read_write)")
    # the definitions first, then the rows of the published schemas only: copying the
    # raw layer to drop it cost a fifth of the copy and left its blocks in the file
    con.execute(f"copy from database {_quoted(src)} to {dst} (schema)")
    for schema in UNPUBLISHED_SCHEMAS:
        con.execute(f"drop schema if exists {dst}.{schema} cascade")
    for name in table_row_counts(con, dst):
        schema, table = (_quoted(part) for part in name.split("."))
        con.execute(f"insert into {dst}.{schema}.{table} "
                    f"select * from {_quoted(src)}.{schema}.{table}")


def _copy_changes(con, src: str, target: Path, tmp: Path, dst: str) -> list[str] | None:
    """The previous copy brought up to date at `tmp` (attached as `dst`): the rows of each
    table's school years (or of the table, without that column) whose fingerprint differs
    from the source's are replaced, the others stay. The names of what was replaced, or
    None (nothing attached, `tmp` removed) when the definitions differ."""
    shutil.copyfile(target, tmp)
    os.chmod(tmp, 0o644)
    con.execute(f"attach '{_sql_text(tmp)}' as {dst} (read_write)")
    if definitions(con, src) != definitions(con, dst):
        con.execute(f"detach {dst}")
        _remove_database(tmp)
        return None
    new, old = slice_fingerprints(con, src), slice_fingerprints(con, dst)
    replaced = []
    for name, slices in new.items():
        schema, table = (_quoted(part) for part in name.split("."))
        by_year = YEAR_COLUMN in table_columns_of(con, src, name)
        for year in sorted(set(slices) | set(old.get(name, {})), key=str):
            if slices.get(year) == old.get(name, {}).get(year):
                continue
            where, params = (f"where {YEAR_COLUMN} is not distinct from ?", [year]) \
                if by_year else ("", [])
            con.execute(f"delete from {dst}.{schema}.{table} {where}", params)
            con.execute(f"insert into {dst}.{schema}.{table} select * from "
                        f"{_quoted(src)}.{schema}.{table} {where}", params)
            replaced.append(f"{name} [{year}]" if by_year else name)
    return replaced


YEAR_COLUMN = "school_year"


def table_columns_of(con, catalog: str, name: str) -> list[str]:
    schema, table = name.split(".")
    return [c for (c,) in con.execute(
        "select column_name from duckdb_columns() where database_name = ? and schema_name = ? "
        "and table_name = ? order by column_index", [catalog, schema, table]).fetchall()]


def definitions(con, catalog: str) -> list:
    """What `copy from database (schema)` would create of the published schemas: tables'
    columns (names, types, nullability, defaults), constraints, views, indexes, sequences
    and macros."""
    skip = ", ".join(f"'{s}'" for s in UNPUBLISHED_SCHEMAS)
    where = f"database_name = ? and schema_name not in ({skip})"
    queries = [
        "select schema_name, table_name, column_index, column_name, data_type, is_nullable, "
        f"column_default from duckdb_columns() where {where} and not internal",
        "select schema_name, table_name, constraint_type, constraint_text "
        f"from duckdb_constraints() where {where}",
        f"select schema_name, view_name, sql from duckdb_views() where {where} "
        "and not internal",
        f"select schema_name, index_name, sql from duckdb_indexes() where {where}",
        "select schema_name, sequence_name, start_value, increment_by "
        f"from duckdb_sequences() where {where}",
        "select schema_name, function_name, function_type, macro_definition "
        f"from duckdb_functions() where {where} and not internal",
    ]
    return [sorted(con.execute(q, [catalog]).fetchall(), key=repr) for q in queries]


def slice_fingerprints(con, catalog: str) -> dict[str, dict]:
    """schema.table -> {school year: (rows, sum of row hashes)} for a table with a
    school_year column, else {None: (rows, sum)}, for every published table."""
    out: dict[str, dict] = {}
    for name in table_row_counts(con, catalog):
        if name.split(".")[0] in UNPUBLISHED_SCHEMAS:
            continue
        schema, table = (_quoted(part) for part in name.split("."))
        full = f"{_quoted(catalog)}.{schema}.{table}"
        if YEAR_COLUMN in table_columns_of(con, catalog, name):
            rows = con.execute(f"select {YEAR_COLUMN}, count(*), coalesce(sum(hash(t)), 0) "
                               f"from {full} t group by all").fetchall()
            out[name] = {y: (n, int(h)) for y, n, h in rows}
        else:
            n, h = con.execute(f"select count(*), coalesce(sum(hash(t)), 0) "
                               f"from {full} t").fetchone()
            out[name] = {None: (n, int(h))}
    return out


def read_manifest(published_dir: str | Path) -> dict | None:
    """The manifest of the current published copy (None before the first publication)."""
    _, manifest_path = published_paths(published_dir)
    if not manifest_path.exists():
        return None
    return json.loads(manifest_path.read_text(encoding="utf-8"))


def _let_go(con: duckdb.DuckDBPyConnection, own: bool, dst: str) -> None:
    """After a failed copy: close this function's connection, or detach the copy from the
    caller's (after a rollback: a failed statement inside a transaction refuses the rest)."""
    if own:
        con.close()
        return
    for statement in ("rollback", f"detach database if exists {dst}"):
        try:
            con.execute(statement)
        except duckdb.Error:
            pass


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


def _remove_database(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)
