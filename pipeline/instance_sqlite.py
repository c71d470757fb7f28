"""Dagster's SQLite run history without an fsync per event, for `survey-pipeline run`.

Dagster's SQLite storages (runs.db, one event-log file per run, the index, schedules.db) open a
connection for every event, commit it and close it. SQLite's default (`synchronous=FULL`)
flushes each commit to disk and the close of the last connection checkpoints the write-ahead
log with another flush: on this machine 20-22 ms per event, against 0.9 ms without flushes
(bench: 200 open/insert/commit/close cycles per mode, docs/benchmarks.md). `make run` on the
sample writes about 2,400 such events, so the flushes were most of its fixed cost.

`relax_sqlite_flushes()` sets `PRAGMA synchronous=OFF` on every SQLite connection SQLAlchemy
opens in this process (only Dagster's instance storage uses SQLAlchemy here). What it risks:
an operating-system crash or power cut during a run can lose or damage that run's history in
$DAGSTER_HOME (a crash of the process itself cannot: SQLite still writes every commit to the
file). It never touches the warehouse (DuckDB keeps its own write-ahead log and checkpoints).
A deployment that needs durable history runs on PostgreSQL (pipeline/dagster.postgres.yaml),
where this does not apply; SURVEY_SQLITE_SYNC=FULL (or NORMAL) keeps SQLite's flushes.
"""

from __future__ import annotations

import os
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}
_installed: list[str] = []


def sqlite_sync_mode() -> str:
    mode = os.environ.get("SURVEY_SQLITE_SYNC", "OFF").strip().upper()
    if mode not in MODES:
        raise ValueError(f"SURVEY_SQLITE_SYNC={mode!r}: use one of {sorted(MODES)}")
    return mode


def _on_connect(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection) and _installed:
        dbapi_connection.execute(f"PRAGMA synchronous={_installed[0]}")


def relax_sqlite_flushes() -> str:
    """Install the connect hook once per process; returns the mode in force."""
    mode = sqlite_sync_mode()
    if not _installed:
        event.listen(Engine, "connect", _on_connect)
        _installed.append(mode)
    else:
        _installed[0] = mode
    return mode
