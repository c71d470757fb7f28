"""The Dagster instance on PostgreSQL (pipeline/dagster.postgres.yaml), really run: Debian's
PostgreSQL started on a free local port in a temporary folder, DAGSTER_HOME holding the
Postgres yaml, the real `dagster-daemon` ticking the landing sensor (which adds the year's
partition and launches its run through the run queue), then `dg launch` of the same school
year's raw rows (the sample's 2020-21 exports) with the multiprocess executor. The run history, the
event log, the sensor's tick, the partition and the pool's slots are then read back from
Postgres with SQL, and through the instance.

PostgreSQL missing is a failure, not a skip, in CI: .ci/run installs Debian's `postgresql` and
sets SURVEY_REQUIRE_POSTGRES=1. Elsewhere (`make test` on a laptop without it) the test is
skipped with that reason, as the browser tests are without chromium."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.helpers import ROOT, SAMPLE

pytestmark = pytest.mark.slow

YEAR = "2020-21"
VENV_BIN = Path(sys.executable).parent


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db: str

    def env(self) -> dict[str, str]:
        """The variables pipeline/dagster.postgres.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_DB": self.db, "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password}

    def connect(self, db: str | None = None):
        import psycopg2  # dagster-postgres brings psycopg2-binary

        return psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                password=self.password, dbname=db or self.db)

    def query(self, sql: str, *params) -> list[tuple]:
        with contextlib.closing(self.connect()) as con, con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()


def postgres_bin() -> Path:
    """Debian's server binaries (initdb, pg_ctl): /usr/lib/postgresql/<version>/bin, newest."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3].split(".")[0]))
    if not found:
        message = ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                   "apt-get install postgresql (.ci/run does)")
        if os.environ.get("SURVEY_REQUIRE_POSTGRES") == "1":   # set by .ci/run: never skipped
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_postgres() -> Iterator[Postgres]:
    """A throw-away cluster: initdb into a temporary folder, pg_ctl start on 127.0.0.1 and a
    free port (password authentication, as a real deployment), a `dagster` database; stopped
    and deleted afterwards. PostgreSQL refuses to run as root: as root the server runs as the
    `postgres` user Debian's package creates."""
    bindir = postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="survey-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and there is no `postgres` user to run the server",
                        pytrace=False)
        os.chown(base, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = Postgres(host="127.0.0.1", port=free_port(), user="dagster",
                      password=secrets.token_hex(12), db="dagster")
    pwfile = base / "pwfile"
    pwfile.write_text(server.password + "\n")
    if as_user:
        os.chown(pwfile, pg.pw_uid, pg.pw_gid)
    data, log = base / "data", base / "server.log"

    def run(*args: str, timeout: float = 120) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=base)
        assert done.returncode == 0, (args, done.stdout, done.stderr,
                                      log.read_text() if log.exists() else "")

    run(str(bindir / "initdb"), "-D", str(data), "-U", server.user, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync")
    # fsync off: a test cluster thrown away afterwards; unix socket in the temp folder, not
    # /var/run/postgresql (whose permissions belong to the system's cluster)
    options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
        "-o", options, "start")
    try:
        with contextlib.closing(server.connect("postgres")) as con:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f"create database {server.db}")
        yield server
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                        "stop"], capture_output=True, timeout=120, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with local_postgres() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, postgres: Postgres) -> dict[str, str]:
    """DAGSTER_HOME with the Postgres yaml, one year of the bundled sample as the landing
    folder, a temporary warehouse and reports folder: the environment of every process."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "pipeline" / "dagster.postgres.yaml", home / "dagster.yaml")
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE / "landing" / YEAR, landing / YEAR)
    return {
        **os.environ, **postgres.env(),
        "DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(VENV_BIN.parent),
        "SURVEY_LANDING_DIR": str(landing), "SURVEY_ROSTER": str(SAMPLE / "roster.csv"),
        "SURVEY_WAREHOUSE": str(tmp_path / "survey.duckdb"),
        "SURVEY_REPORTS": str(tmp_path / "reports"),
        "SURVEY_SETTLE_SECONDS": "0",  # the copied exports are complete
    }


def instance_for(env: dict[str, str]) -> dg.DagsterInstance:
    """The instance DAGSTER_HOME describes, with the DAGSTER_PG_* variables of `env`."""
    saved = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_PG_")}
    os.environ.update({k: env[k] for k in saved})
    try:
        return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(VENV_BIN / args[0]), *args[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


@contextlib.contextmanager
def background(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """A long-running Dagster process in its own process group (with the processes it starts:
    run workers), stopped at the end: SIGTERM, then SIGKILL for whatever still runs."""
    with log.open("w") as out:
        proc = subprocess.Popen([str(VENV_BIN / args[0]), *args[1:]], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def wait_for(what: str, probe, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        assert proc.poll() is None, f"{proc.args[0]} exited:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    pytest.fail(f"no {what} within {timeout:.0f}s; log:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def code_server(env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """The code location as its own gRPC server (`dagster api grpc`), as on a separate machine,
    and a workspace file pointing at it: the CLI and the daemon then load no project code
    themselves, and the daemon's runs are launched by this server."""
    port, log = free_port(), tmp_path / "code_server.log"
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
                         f"      port: {port}\n      location_name: pipeline.definitions\n")
    with background(env, log, "dagster", "api", "grpc", "-m", "pipeline.definitions",
                    "-d", str(ROOT), "-h", "127.0.0.1", "-p", str(port),
                    "--location-name", "pipeline.definitions") as proc:
        wait_for("code server", lambda: "Started Dagster code server" in log.read_text(),
                 300, proc, log)
        yield workspace


def test_daemon_and_a_multiprocess_partition_run_keep_their_history_in_postgres(
        project: dict[str, str], postgres: Postgres, tmp_path: Path):
    env = project
    with instance_for(env) as instance:  # creates Dagster's tables in the empty database
        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert instance.get_runs() == []
    assert {"runs", "event_logs", "job_ticks", "instigators", "concurrency_slots"} <= {
        name for (name,) in postgres.query("select tablename from pg_tables")}

    with code_server(env, tmp_path) as workspace:
        # Only the landing sensor should launch anything here: the all-years automation
        # (agreement, marts, report...) is switched off, a state the instance keeps in Postgres.
        cli(env, "dagster", "sensor", "stop", "all_years_automation", "-w", str(workspace))

        # 1. The real daemon: the landing sensor's first tick adds the year's partition and
        #    requests its run; the run queue launches it (school_year_refresh, in a run worker
        #    the code server starts).
        log = tmp_path / "daemon.log"
        with background(env, log, "dagster-daemon", "run", "-w", str(workspace)) as proc, \
                instance_for(env) as instance:
            def sensor_run():
                runs = instance.get_runs(dg.RunsFilter(
                    tags={"dagster/sensor_name": "landing_folder_sensor"}))
                return runs if runs and runs[0].is_finished else None

            [run] = wait_for("finished run of the landing sensor", sensor_run, 480, proc, log)
        assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
    assert run.job_name == "school_year_refresh"
    assert run.tags["dagster/partition"] == YEAR
    assert run.tags["survey/trigger"] == "landing_folder"

    # 2. The year's raw rows again, with the multiprocess executor (each step, the asset and
    #    each of its checks, in its own process), on the bundled sample's exports, recorded in
    #    the same Postgres instance.
    cli(env, "dg", "launch", "--assets", "raw/survey_rows", "--partition", YEAR,
        "--config-json", '{"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}')

    # --- read back from Postgres with SQL -----------------------------------------------------
    runs = postgres.query("select run_id, pipeline_name, status, partition from runs "
                          "order by create_timestamp")
    assert [r[1:] for r in runs] == [("school_year_refresh", "SUCCESS", YEAR),
                                     ("__ASSET_JOB", "SUCCESS", YEAR)]
    sensor_run_id, launch_run_id = runs[0][0], runs[1][0]
    assert sensor_run_id == run.run_id
    assert ("survey/trigger", "landing_folder") in postgres.query(
        "select key, value from run_tags where run_id = %s", sensor_run_id)

    materialised = postgres.query(
        "select run_id, asset_key, partition from event_logs "
        "where dagster_event_type = 'ASSET_MATERIALIZATION' order by id")
    # the sensor's run: every school-year-partitioned asset of the year
    assert sorted(r[1:] for r in materialised if r[0] == sensor_run_id) == sorted(
        (json.dumps(key.split("/")), YEAR) for key in (
            "raw/survey_rows", "staging/answers", "coding/keyword_applications",
            "coding/human_applications", "coding/suggestions", "coding/suggestion_quality",
            "coding/discrepancies",
            "coding/final_codes", "marts/code_frequencies", "marts/code_trends",
            "marts/by_school", "marts/by_coach"))
    assert [r[1:] for r in materialised if r[0] == launch_run_id] == [
        ('["raw", "survey_rows"]', YEAR)]
    checks = postgres.query("select count(*) from event_logs where run_id = %s "
                            "and dagster_event_type = 'ASSET_CHECK_EVALUATION'", launch_run_id)
    assert checks[0][0] >= 2  # raw/survey_rows' contracts

    # the multiprocess executor: one worker process per step, the asset's and its checks'
    engine = postgres.query("select event from event_logs where run_id = %s "
                            "and dagster_event_type = 'ENGINE_EVENT'", launch_run_id)
    assert any("using multiprocess executor" in event for (event,) in engine)
    workers = {step for (step,) in postgres.query(
        "select step_key from event_logs where run_id = %s "
        "and dagster_event_type = 'STEP_WORKER_STARTED'", launch_run_id)}
    assert "raw__survey_rows" in workers and len(workers) >= 3, workers
    # ... and the warehouse pool (limit 1, held in Postgres) let one step run at a time, though
    # the executor could run two: the asset's two contract checks are both ready at once
    spans = postgres.query(
        "select step_key, min(timestamp) filter (where dagster_event_type = 'STEP_START'), "
        "max(timestamp) filter (where dagster_event_type = 'STEP_SUCCESS') from event_logs "
        "where run_id = %s and step_key is not null group by step_key order by 2", launch_run_id)
    assert {s for s, _, _ in spans} == workers and all(end for _, _, end in spans), spans
    for (_, _, end), (step, start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"{step} started before the previous warehouse step ended: {spans}"

    # the sensor's state (its cursor: every file's hash), its successful tick, the partition it
    # added, the automation sensor stopped, and the warehouse pool's one slot (default_limit 1)
    # that every run's warehouse steps claimed: all rows in Postgres
    sensors = dict(postgres.query(
        "select instigator_body::json->'origin'->>'job_name', status from instigators "
        "where instigator_type = 'SENSOR'"))
    assert sensors == {"landing_folder_sensor": "DECLARED_IN_CODE",
                       "all_years_automation": "STOPPED"}, sensors
    ticks = postgres.query(
        "select t.status, t.tick_body::json->'run_ids' from job_ticks t "
        "join instigators i using (selector_id) "
        "where i.instigator_body::json->'origin'->>'job_name' = 'landing_folder_sensor' "
        "order by t.id")
    assert ticks[0] == ("SUCCESS", [sensor_run_id])
    cursor = postgres.query(
        "select instigator_body::json->'job_specific_data'->>'cursor' from instigators "
        "where instigator_body::json->'origin'->>'job_name' = 'landing_folder_sensor'")
    assert f"{YEAR}/session-01.csv" in cursor[0][0]
    assert postgres.query("select partitions_def_name, partition from dynamic_partitions") == [
        ("school_year", YEAR)]
    assert postgres.query("select concurrency_key, \"limit\", using_default_limit "
                          "from concurrency_limits") == [("warehouse", 1, True)]
    assert postgres.query("select concurrency_key, count(*) from concurrency_slots "
                          "where not deleted group by 1") == [("warehouse", 1)]

    # --- and through the instance, as the UI reads it -----------------------------------------
    with instance_for(env) as instance:
        for run_id in (sensor_run_id, launch_run_id):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        latest = instance.get_latest_materialization_event(dg.AssetKey(["raw", "survey_rows"]))
        assert latest.run_id == launch_run_id
        assert latest.asset_materialization.partition == YEAR
        assert instance.get_dynamic_partitions("school_year") == [YEAR]

    # the runs wrote the temporary warehouse, not the repository's
    with duckdb.connect(env["SURVEY_WAREHOUSE"], read_only=True) as con:
        [(rows,)] = con.execute("select count(*) from raw.survey_rows where school_year = ?",
                                [YEAR]).fetchall()
        [(answers,)] = con.execute("select count(*) from staging.answers where school_year = ?",
                                   [YEAR]).fetchall()
    assert rows > 0 and answers > 0
