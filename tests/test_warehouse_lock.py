"""The single-writer warehouse with a real second process holding the DuckDB file, as an
analyst's `duckdb warehouse/survey.duckdb` (read-write) or `duckdb -readonly ...` session does.

Decided behaviour (docs/operations.md): a refresh waits, logging each retry, for up to
Warehouse.wait_seconds; it succeeds if the analyst closes the session in time, else the run
fails with a message that says what to close. While a refresh writes, an analyst's session
(even read-only) cannot open the file and gets DuckDB's lock error at once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.core.warehouse import connection as wh
from pipeline.defs import ingestion
from pipeline.defs.resources import Warehouse
from pipeline.settings import ROOT
from tests.helpers import make_resources

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
con.execute("select count(*) from information_schema.tables").fetchall()
print("holding", flush=True)
sys.stdin.readline()  # hold until the parent says so (or closes the pipe)
con.close()
print("released", flush=True)
"""


@contextmanager
def analyst_session(path: Path, read_only: bool) -> Iterator[subprocess.Popen]:
    """Another OS process with the warehouse open, like the duckdb CLI."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "ro" if read_only else "rw"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def close_session(proc: subprocess.Popen) -> None:
    proc.stdin.write("close\n")
    proc.stdin.flush()


def resources(root: Path, wait_seconds: float) -> dict:
    return make_resources(root, wait_seconds)


def existing_warehouse(root: Path) -> Path:
    path = root / "wh.duckdb"
    with wh.connect(path) as con:
        wh.ensure_tables(con)
    return path


def run_raw(root: Path, wait_seconds: float) -> tuple[dg.ExecuteInProcessResult, float, list]:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    started = time.monotonic()
    result = dg.materialize([ingestion.raw_survey_rows], partition_key="2020-21",
                            resources=resources(root, wait_seconds), instance=instance,
                            raise_on_error=False)
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    return result, time.monotonic() - started, logs


@pytest.mark.parametrize("read_only", [False, True], ids=["rw-session", "readonly-session"])
def test_run_waits_for_an_analyst_session_and_succeeds_once_it_closes(tiny_landing: Path,
                                                                      read_only: bool,
                                                                      monkeypatch):
    path = existing_warehouse(tiny_landing)
    waited = threading.Event()
    connect = wh.connect

    def connect_and_tell(*args, on_wait=None, **kwargs):
        def tell(message):
            waited.set()
            if on_wait:
                on_wait(message)
        return connect(*args, on_wait=tell, **kwargs)

    # the session closes once the step has waited (whenever it starts on a busy machine)
    monkeypatch.setattr(wh, "connect", connect_and_tell)

    def close_once_the_run_waits(session):
        waited.wait(60)
        time.sleep(1.0)
        close_session(session)

    with analyst_session(path, read_only) as session:
        closer = threading.Thread(target=close_once_the_run_waits, args=[session])
        closer.start()
        result, elapsed, logs = run_raw(tiny_landing, wait_seconds=90)
        closer.join()
        assert session.stdout.readline().strip() == "released"
    assert result.success
    assert elapsed >= 1.0
    waits = [m for m in logs if "is locked by another process; retrying" in m]
    assert waits, "the run should log each wait"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (5,)


def test_run_fails_clearly_when_the_session_stays_open(tiny_landing: Path):
    path = existing_warehouse(tiny_landing)
    with analyst_session(path, read_only=False):
        result, elapsed, _ = run_raw(tiny_landing, wait_seconds=2)
    assert not result.success
    assert 2 <= elapsed < 30
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    while error.cls_name != "WarehouseLockedError" and error.cause:  # unwrap Dagster's wrapper
        error = error.cause
    assert error.cls_name == "WarehouseLockedError"
    text = error.message
    assert "held open by another process for 2s" in text
    assert "close the duckdb session or wait for the other run" in text
    with duckdb.connect(str(path), read_only=True) as con:  # nothing half-written
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (0,)


def test_analyst_cannot_open_the_file_while_a_refresh_writes(tmp_path: Path):
    path = existing_warehouse(tmp_path)
    with Warehouse(path=str(path), wait_seconds=1).connect() as con:
        con.execute("select 1").fetchall()
        probe = subprocess.run(
            [sys.executable, "-c", "import sys, duckdb; duckdb.connect(sys.argv[1], "
             "read_only=True)", str(path)], capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0
    assert "Conflicting lock" in probe.stderr or "Could not set lock" in probe.stderr
    # and as soon as the refresh closed its connection, read-only sessions work again
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (0,)


def test_readers_share_the_file_with_each_other(tmp_path: Path):
    path = existing_warehouse(tmp_path)
    with analyst_session(path, read_only=True):
        with Warehouse(path=str(path), wait_seconds=1).connect(read_only=True) as con:
            assert con.execute("select count(*) from staging.answers").fetchone() == (0,)


def test_instance_config_serialises_warehouse_writers(tmp_path: Path):
    """pipeline/dagster.yaml, loaded as `make dev` loads it, limits the warehouse pool to 1."""
    shutil.copy(ROOT / "pipeline" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity.value == "op"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    for asset in (ingestion.raw_survey_rows, ingestion.staging_answers):
        assert asset.op.pool == "warehouse"


def cli_env(root: Path, wait_seconds: float) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(SURVEY_LANDING_DIR=str(root / "landing"), SURVEY_ROSTER=str(root / "roster.csv"),
               SURVEY_WAREHOUSE=str(root / "wh.duckdb"),
               SURVEY_CODER_SHEETS=str(root / "no-sheets"), SURVEY_REPORTS=str(root / "reports"),
               SURVEY_WAREHOUSE_WAIT_SECONDS=str(wait_seconds))
    return env


def test_command_waits_once_for_an_analyst_session_then_exits_1_naming_it(tiny_landing: Path):
    """Issue 15.2: one wait and one message for the whole command (not one per internal run),
    then one line naming the holder's PID and what to do; no internal run started."""
    path = existing_warehouse(tiny_landing)
    cli = Path(sys.executable).parent / "survey-pipeline"
    with analyst_session(path, read_only=False) as session:
        started = time.monotonic()
        done = subprocess.run([str(cli), "run"], env=cli_env(tiny_landing, 3),
                              capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Stack Trace" not in done.stderr
    waits = [line for line in done.stderr.splitlines() if line.startswith("waiting:")]
    assert len(waits) == 1, done.stderr
    assert f"PID {session.pid}" in waits[0] and "up to 3s" in waits[0]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("run not started: warehouse ") and f"held by PID {session.pid}" in last
    assert "close that session" in last and "warehouse/published/survey.duckdb" in last
    assert "materialising" not in done.stdout, "no internal run may start"
    assert elapsed < 60
    with duckdb.connect(str(path), read_only=True) as con:  # untouched
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (0,)


def test_a_held_warehouse_serves_every_connect_from_one_connection(tmp_path: Path):
    """survey-pipeline run's internal runs share one open file (Warehouse.hold): each step's
    connect is a cursor with its own transaction; other processes stay out meanwhile."""
    path = existing_warehouse(tmp_path)
    warehouse = Warehouse(path=str(path), wait_seconds=1)
    with duckdb.connect(str(path)) as con:
        con.execute("create table probe (note varchar)")
    insert = "insert into probe values (?)"
    with warehouse.hold():
        with warehouse.connect() as con:
            con.execute("begin")
            con.execute(insert, ["committed"])
            con.execute("commit")
        with pytest.raises(RuntimeError, match="step failed"), warehouse.connect() as con:
            con.execute("begin")
            con.execute(insert, ["rolled back"])
            raise RuntimeError("step failed")
        with warehouse.connect(read_only=True) as con:   # the checks' connect, same file
            assert con.execute("select note from probe").fetchall() == [("committed",)]
        with warehouse.hold(), warehouse.connect() as con:   # nested: the outer one serves
            assert con.execute("select count(*) from probe").fetchone() == (1,)
        probe = subprocess.run(
            [sys.executable, "-c", "import sys, duckdb; duckdb.connect(sys.argv[1], "
             "read_only=True)", str(path)], capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "lock" in probe.stderr.lower()
    # released (and checkpointed): a reader in another process sees the committed row
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, duckdb; print(duckdb.connect(sys.argv[1], "
         "read_only=True).execute('select count(*) from probe').fetchone()[0])",
         str(path)], capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "1", (probe.stdout, probe.stderr)
