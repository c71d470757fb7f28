"""pipeline/instance_sqlite.py: the CLI's Dagster SQLite storage commits without flushing,
with one engine and pooled connections per database file."""

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from pipeline.instance_sqlite import (
    SQLITE_STORAGE_MODULES,
    KeptEngines,
    keep_sqlite_engines,
    read_migrations_once,
    relax_sqlite_flushes,
    sqlite_sync_mode,
)

LEVEL = {"OFF": 0, "NORMAL": 1, "FULL": 2}


def synchronous(tmp_path) -> int:
    # a new engine and connection, as Dagster's SQLite storages open for every event
    engine = create_engine(f"sqlite:///{tmp_path / 'runs.db'}", poolclass=NullPool)
    with engine.connect() as con:
        return con.execute(text("PRAGMA synchronous")).scalar()


@pytest.mark.parametrize("mode", ["OFF", "NORMAL", "FULL"])
def test_every_new_sqlite_connection_gets_the_mode(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("SURVEY_SQLITE_SYNC", mode.lower())
    assert relax_sqlite_flushes() == mode
    assert synchronous(tmp_path) == LEVEL[mode]
    monkeypatch.setenv("SURVEY_SQLITE_SYNC", "OFF")
    relax_sqlite_flushes()


def test_default_is_off_and_a_bad_mode_is_refused(monkeypatch):
    monkeypatch.delenv("SURVEY_SQLITE_SYNC", raising=False)
    assert sqlite_sync_mode() == "OFF"
    monkeypatch.setenv("SURVEY_SQLITE_SYNC", "sometimes")
    with pytest.raises(ValueError, match="SURVEY_SQLITE_SYNC"):
        sqlite_sync_mode()


def test_kept_engines_reuse_one_engine_and_connection_per_sqlite_file(tmp_path):
    kept = KeptEngines()
    url = f"sqlite:///{tmp_path / 'index.db'}"
    opened = []
    first = kept(url, poolclass=NullPool, connect_args={"timeout": 30})
    event.listen(first, "connect", lambda dbapi, _record: opened.append(dbapi))
    for i in range(5):   # as a Dagster storage does per event: engine, connect, commit, dispose
        engine = kept(url, poolclass=NullPool, connect_args={"timeout": 30})
        with engine.connect() as con, con.begin():
            con.execute(text("create table if not exists t (i int)"))
            con.execute(text("insert into t values (:i)"), {"i": i})
        engine.dispose()
    assert engine is first and len(kept) == 1
    assert len(opened) == 1   # one connection for the five uses
    # every use was committed: another process (a fresh connection) sees all the rows
    other = create_engine(url, poolclass=NullPool)
    with other.connect() as con:
        assert con.execute(text("select count(*) from t")).scalar() == 5
    assert kept(f"sqlite:///{tmp_path / 'run.db'}") is not first


def test_kept_engines_leave_other_databases_alone(tmp_path):
    kept = KeptEngines()
    url = "sqlite://"   # in memory: not a file Dagster's storages use
    assert kept(url, poolclass=NullPool) is not kept(url, poolclass=NullPool)
    assert len(kept) == 0


def test_keep_sqlite_engines_points_dagsters_sqlite_storages_at_one_keeper():
    import importlib

    kept = keep_sqlite_engines()
    assert keep_sqlite_engines() is kept
    for name in SQLITE_STORAGE_MODULES:
        assert importlib.import_module(name).create_engine is kept


def test_migrations_read_once_and_every_new_run_database_still_stamped(tmp_path, monkeypatch):
    """read_migrations_once: one alembic ScriptDirectory per script location, and a SQLite
    instance whose runs each get a new event-log database (stamped with alembic) still runs,
    its history readable and at the head revision."""
    import dagster as dg
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    read_migrations_once()
    read_migrations_once()   # installed once
    config = get_alembic_config(dg.__file__)
    first = ScriptDirectory.from_config(config)
    assert ScriptDirectory.from_config(get_alembic_config(dg.__file__)) is first

    @dg.asset
    def one() -> int:
        return 1

    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        runs = [dg.materialize([one], instance=instance) for _ in range(2)]
        assert all(r.success for r in runs)
        assert {r.dagster_run.run_id for r in instance.get_run_records()} == \
            {r.run_id for r in runs}
        for run in runs:
            assert len(instance.all_logs(run.run_id)) > 5
