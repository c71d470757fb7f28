"""Dagster's SQLite run history, cheaper per event, for `survey-pipeline run`.

Dagster's SQLite storages (runs.db, one event-log file per run, the index, schedules.db) create
a SQLAlchemy engine for every event, open a connection, commit and close it. Two costs follow,
both paid per event (the sample's `make run` writes about 550 of them and makes some 4,000
such connections, reads included):

- Flushes. SQLite's default (`synchronous=FULL`) flushes each commit to disk and the close of
  the last connection checkpoints the write-ahead log with another flush: on this machine
  20-22 ms per event, against 0.9 ms without flushes (bench: 200 open/insert/commit/close
  cycles per mode, docs/benchmarks.md). `relax_sqlite_flushes()` sets `PRAGMA
  synchronous=OFF` on every SQLite connection SQLAlchemy opens in this process (only Dagster's
  instance storage uses SQLAlchemy here). What it risks: an operating-system crash or power
  cut during a run can lose or damage that run's history in $DAGSTER_HOME (a crash of the
  process itself cannot: SQLite still writes every commit to the file).
  SURVEY_SQLITE_SYNC=FULL (or NORMAL) keeps SQLite's flushes.
- Engines and connections. `keep_sqlite_engines()` makes those storages reuse one engine per
  database file for the life of the process, with SQLAlchemy's ordinary connection pool
  instead of none, so a connection is opened once and not closed (nor the log checkpointed)
  after every event. Every commit is still a commit: other processes (the UI, the daemon)
  see each event as before; in WAL mode an idle pooled connection holds no lock.

Both touch nothing but this process's SQLite connections: never the warehouse (DuckDB keeps
its own write-ahead log), never `dagster dev`'s processes. A deployment that needs durable
history runs on PostgreSQL (pipeline/dagster.postgres.yaml), where neither applies.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}
_installed: list[str] = []

# the Dagster modules whose storages call `create_engine(..., poolclass=NullPool)` per use
SQLITE_STORAGE_MODULES = (
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
)


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


class KeptEngines:
    """A `create_engine` for Dagster's SQLite storages that returns one engine per database
    URL and connection arguments, pooled, whose `dispose()` (called by the storage after
    each use) keeps its connections. Other URLs (PostgreSQL) get a new engine as before."""

    def __init__(self) -> None:
        self._engines: dict[tuple, Engine] = {}
        self._lock = threading.Lock()

    def __call__(self, url, *args, **kwargs) -> Engine:
        if not str(url).startswith("sqlite:///") or args:
            return sqlalchemy.create_engine(url, *args, **kwargs)
        kwargs.pop("poolclass", None)       # NullPool: a new connection per use
        key = (str(url), repr(sorted(kwargs.items())))
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = sqlalchemy.create_engine(url, **kwargs)
                engine.dispose = _keep          # the storages dispose after every use
                self._engines[key] = engine
            return engine

    def __len__(self) -> int:
        return len(self._engines)


_script_dirs: dict = {}
_script_lock = threading.Lock()


def read_migrations_once() -> None:
    """Make alembic read Dagster's migration scripts once per process (installed once).

    Dagster's SQLite storages stamp each new database with alembic (a run's event log is a
    new database per run) and check the revision of the others when the instance starts;
    each time alembic builds a `ScriptDirectory` from the config, which imports every
    migration script to find the head revision. The scripts are part of the installed
    Dagster, so one `ScriptDirectory` per script location serves the whole process; what each
    call does (stamp, check, upgrade) still runs against its own config and connection."""
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "reads_once", False):
        return
    build = ScriptDirectory.from_config.__func__

    def from_config(cls, config):
        key = (cls, config.get_main_option("script_location"))
        with _script_lock:
            if key not in _script_dirs:
                _script_dirs[key] = build(cls, config)
            return _script_dirs[key]

    from_config.reads_once = True
    ScriptDirectory.from_config = classmethod(from_config)


def _keep(*_args, **_kwargs) -> None:
    """An engine's dispose() that keeps its pooled connections for the next use."""


_kept: list[KeptEngines] = []


def keep_sqlite_engines() -> KeptEngines:
    """Point Dagster's SQLite storage modules at one KeptEngines (once per process)."""
    if not _kept:
        _kept.append(KeptEngines())
        for name in SQLITE_STORAGE_MODULES:
            module = importlib.import_module(name)
            if hasattr(module, "create_engine"):
                module.create_engine = _kept[0]
    return _kept[0]
