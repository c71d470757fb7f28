"""Frames worked out before, kept on disk under a sha256 of exactly what they were computed from.

For results that are a pure function of their inputs and expensive to recompute, whose inputs
do not change when a refresh adds a session nobody has coded yet: a school year's suggestion
rows per answer text (suggest/row_memo.py), its suggestion-quality table
(suggest/stage.year_quality), the coder sheets' import (coding/dual_coding.import_sheets), a
hand-coded year's reconciliation (defs/reconciliation.coded_year_key), a loaded export's raw
frames (ingest/raw.read_file_kept), the name checks' clean texts (privacy/clean_memo.py) and
marts.year_over_year (marts/year_comparison.kept_year_over_year). The key is the caller's: `key(...)` hashes strings and
frames (values, column names and order), so any change in what the result depends on is a new
key, never a stale hit. Every key also covers the source of the pipeline (`package_digest`: every
.py file of the `pipeline` package, the Dagster layer too, since some memoised steps are wired
there), so a change to how a result is made can never be answered with one made by the old
code. The digests are pipeline/core/warehouse/fingerprint.py's, which the all-years writers'
result_cache keys use too.

Stored as cache_dir()/<kind>/<key>.parquet, written and read through DuckDB (column types as
DuckDB maps them: the caller restores pandas dtypes where it needs them). A missing, damaged or
unreadable file means computing again; a file that cannot be written is skipped. Growth: at most
MAX_FILES files per kind (least recently used deleted), or the `max_files` a caller gives for a
kind it keeps in many parts (the coder-sheet import: two per school year); deleting the
folders is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from pipeline.core.files import store_cache_file
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse.fingerprint import frame_digest, package_digest

log = logging.getLogger(__name__)

MAX_FILES = 50


def key(*parts: str | pd.DataFrame) -> str:
    """sha256 over the pipeline's code version (fingerprint.package_digest) and `parts` in
    order: strings as UTF-8, frames by their rows in order, columns and dtypes
    (fingerprint.frame_digest; the index ignored)."""
    h = hashlib.sha256(package_digest().encode())
    for part in parts:
        if isinstance(part, pd.DataFrame):
            h.update(f"|frame {frame_digest(part.reset_index(drop=True))}".encode())
        else:
            h.update(f"|{part}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def folder(kind: str) -> Path:
    return cache_dir() / kind


_memory = None  # the in-memory DuckDB connection the reads and writes take cursors of
_memory_lock = threading.Lock()


@contextmanager
def memory_cursor() -> Iterator:
    """A cursor on this process's one in-memory DuckDB database. A new database instance costs
    45-60 ms here (a cursor, under 1 ms), and a sample run reads about 70 memos."""
    import duckdb

    global _memory
    with _memory_lock:
        if _memory is None:
            _memory = duckdb.connect()
        cursor = _memory.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def load(kind: str, key: str) -> pd.DataFrame | None:
    import duckdb

    path = folder(kind) / f"{key}.parquet"
    if not path.exists():
        return None
    try:
        with memory_cursor() as con:
            frame = con.execute("select * from read_parquet(?)", [str(path)]).df()
        os.utime(path)  # recently used: kept by the pruning
    except (OSError, duckdb.Error) as exc:
        log.warning("cached frame %s unreadable (%s): computing again", path, exc)
        return None
    return frame


def store(kind: str, key: str, frame: pd.DataFrame, max_files: int = MAX_FILES) -> None:
    """Keep `frame` under `key`; the kind's least recently used files beyond `max_files` are
    deleted."""
    import duckdb

    def write(tmp: Path) -> None:
        with memory_cursor() as con:
            con.register("memo_frame", frame)
            con.execute(f"copy memo_frame to '{str(tmp).replace(chr(39), chr(39) * 2)}' "
                        "(format parquet)")

    path = folder(kind) / f"{key}.parquet"
    if store_cache_file(path, path.with_name(f"{key}.{os.getpid()}.tmp.parquet"), write,
                        "cached frame", (OSError, duckdb.Error)):
        prune(path.parent, "*.parquet", max_files)


def prune(directory: Path, pattern: str, max_files: int) -> None:
    """Delete the least recently used files matching `pattern` in `directory` beyond
    `max_files` (a reader touches what it uses; temporary files are left alone)."""
    files = []
    for f in directory.glob(pattern):
        if ".tmp." in f.name:
            continue
        try:
            files.append((f.stat().st_mtime, f))
        except OSError:
            continue
    for _, f in sorted(files)[: max(0, len(files) - max_files)]:
        try:
            f.unlink()
        except OSError:
            pass
