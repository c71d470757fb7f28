"""The published warehouse: a consistent, read-only copy of the working DuckDB file for analysts.

The pipeline writes `warehouse/survey.duckdb` (the working file; one writer process, see
docs/operations.md). After a successful refresh it publishes a copy that readers open instead:

    warehouse/published/survey.duckdb    every schema, table and view of the working file
                                         except the raw layer (it holds the exports as
                                         read, names included: it stays in the working file)
    warehouse/published/manifest.json    run id, time, school years, codebook versions,
                                         row counts per table

`publish` copies with DuckDB (from a connection on the working file, the caller's or its own
attaching it read-only: `COPY FROM DATABASE (SCHEMA)` into a temporary file attached beside the
target, the raw schema dropped, then the other tables' rows),
checks the copy's row counts against the source, then
renames it over the published file (`os.replace`, atomic on one file system). Until the rename
the previous copy stays in place and readers keep using it; a reader that opened the previous
copy keeps reading it (its open file survives the rename on POSIX), and the next connection
sees the new one. Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import os
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
            extra: dict | None = None, con: duckdb.DuckDBPyConnection | None = None
            ) -> Publication:
    """Copy `working` into `published_dir`/survey.duckdb (temporary name, then rename) and
    write manifest.json. The caller makes sure no process writes `working` meanwhile (the
    Dagster "warehouse" pool does); raises PublishError and keeps the previous copy if the
    copy fails or its row counts differ from the source's. `con`: a connection (or cursor)
    on `working` to copy from, e.g. the one `survey-pipeline run` holds; without one, the
    file is attached read-only to a connection of this function's own."""
    started = time.monotonic()
    working = working_file(working)
    target, manifest_path = published_paths(published_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{TMP_PREFIX}*"):   # left by a publisher killed mid-copy
        stale.unlink(missing_ok=True)
    tmp = target.parent / f"{TMP_PREFIX}{os.getpid()}.{PUBLISHED_NAME}"
    own = con is None
    con = duckdb.connect() if own else con
    dst = f"{COPY_CATALOG}_{uuid.uuid4().hex[:12]}"   # never one a failed copy left attached
    try:
        if own:
            con.execute(f"attach '{_sql_text(working)}' as src (read_only)")
        src = "src" if own else con.execute("select current_database()").fetchone()[0]
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
            **(extra or {}),
        }
        con.execute(f"detach {dst}")   # checkpoints: the copy is one self-contained file
    except duckdb.Error as exc:
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
    os.chmod(tmp, 0o444)   # a copy to read: opening it read-write fails (except for root)
    os.replace(tmp, target)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Publication(path=target, manifest_path=manifest_path, manifest=manifest,
                       seconds=time.monotonic() - started, size_bytes=size)


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
