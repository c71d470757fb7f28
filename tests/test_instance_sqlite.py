"""pipeline/instance_sqlite.py: the CLI's Dagster SQLite storage commits without flushing."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipeline.instance_sqlite import relax_sqlite_flushes, sqlite_sync_mode

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
