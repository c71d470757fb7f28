"""The landing-folder sensor, the monthly schedule and the all-years automation, evaluated the
way the daemon evaluates them (build_sensor_context / build_schedule_context, the cursor passed
from tick to tick), on a hand-made landing folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._utils.schedules import cron_string_iterator  # the daemon's own fire-time logic

from pipeline.defs import automation, ingestion
from pipeline.defs.partitions import school_years
from pipeline.defs.sources import CODEBOOK_FILES
from tests.helpers import SESSION_1, make_resources, write_landing

YEAR = "2020-21"


def resources(root: Path) -> dict:
    return make_resources(root)


def settle(landing: Path, seconds_ago: float = 600) -> None:
    """Age every file past the settle time, as if the writer finished a while ago."""
    then = time.time() - seconds_ago
    for path in landing.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


class Daemon:
    """Ticks the sensor like the daemon: passes the cursor on and applies partition requests."""

    def __init__(self, root: Path):
        self.root = root
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                          resources=resources(self.root))
        result = automation.landing_folder_sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name,
                                                 list(request.partition_keys))
        self.cursor = result.cursor
        return result


@pytest.fixture
def daemon(tiny_landing: Path) -> Daemon:
    settle(tiny_landing / "landing")
    return Daemon(tiny_landing)


def requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_new_year_adds_its_partition_and_requests_its_run(daemon: Daemon):
    result = daemon.tick()
    assert result.dynamic_partitions_requests == [school_years.build_add_request([YEAR])]
    [request] = result.run_requests
    assert request.partition_key == YEAR
    assert request.run_key.startswith(f"{YEAR}:1:")
    assert request.tags["survey/files"] == "2 new"  # mapping.yaml and session-01.csv
    assert daemon.instance.get_dynamic_partitions("school_year") == [YEAR]


def test_unchanged_folder_requests_nothing(daemon: Daemon):
    daemon.tick()
    os.utime(daemon.root / "landing" / YEAR / "session-01.csv")  # touched, same bytes
    settle(daemon.root / "landing")
    result = daemon.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert "no new or changed exports" in result.skip_reason.skip_message


def test_changed_content_requests_a_run_without_adding_the_partition_again(daemon: Daemon):
    first = daemon.tick().run_requests[0]
    write_landing(daemon.root, {"session-01.csv": SESSION_1.replace("ran out", "had no")})
    settle(daemon.root / "landing")
    result = daemon.tick()
    assert requested(result) == [YEAR] and result.dynamic_partitions_requests == []
    assert result.run_requests[0].tags["survey/files"] == "1 changed"
    assert result.run_requests[0].run_key != first.run_key


def test_mapping_change_requests_a_run(daemon: Daemon):
    daemon.tick()
    mapping = daemon.root / "landing" / YEAR / "mapping.yaml"
    mapping.write_text(mapping.read_text() + "# coder notes\n", encoding="utf-8")
    settle(daemon.root / "landing")
    assert requested(daemon.tick()) == [YEAR]


def test_growing_file_is_skipped_then_picked_up(daemon: Daemon):
    daemon.tick()
    export = daemon.root / "landing" / YEAR / "session-02.csv"
    export.write_text("\r\n".join(SESSION_1.split("\r\n")[:3]))  # mtime = now: being written
    waiting = daemon.tick()
    assert waiting.run_requests == []
    assert "1 file(s) still being written" in waiting.skip_reason.skip_message
    export.write_text(SESSION_1.replace("2020", "2021"))
    settle(daemon.root / "landing", seconds_ago=60)
    later = daemon.tick()
    assert requested(later) == [YEAR] and later.run_requests[0].tags["survey/files"] == "1 new"


def test_removed_file_reruns_its_year(daemon: Daemon):
    daemon.tick()
    (daemon.root / "landing" / YEAR / "session-01.csv").unlink()
    result = daemon.tick()
    assert requested(result) == [YEAR]
    assert result.run_requests[0].tags["survey/files"] == "1 removed"


def test_second_year_folder_gets_its_own_partition_and_run(daemon: Daemon):
    daemon.tick()
    write_landing(daemon.root, {"session-01.csv": SESSION_1},
                  mapping=(daemon.root / "landing" / YEAR / "mapping.yaml").read_text()
                  .replace(YEAR, "2023-24"), year="2023-24")
    settle(daemon.root / "landing")
    result = daemon.tick()
    assert requested(result) == ["2023-24"]
    assert result.dynamic_partitions_requests == [school_years.build_add_request(["2023-24"])]
    assert sorted(daemon.instance.get_dynamic_partitions("school_year")) == [YEAR, "2023-24"]


def test_removed_year_folder_requests_its_retirement(daemon: Daemon):
    import shutil

    daemon.tick()
    write_landing(daemon.root, {"session-01.csv": SESSION_1},
                  mapping=(daemon.root / "landing" / YEAR / "mapping.yaml").read_text()
                  .replace(YEAR, "2023-24"), year="2023-24")
    settle(daemon.root / "landing")
    daemon.tick()
    shutil.rmtree(daemon.root / "landing" / "2023-24")
    result = daemon.tick()
    [request] = result.run_requests
    assert request.job_name == automation.retire_removed_years.name
    assert request.tags["survey/retire"] == "2023-24"
    assert request.run_key == "retire:2023-24.1"
    # until the retirement deletes the partition, later ticks repeat the same key (Dagster
    # launches a run key once)
    assert [r.run_key for r in daemon.tick().run_requests] == ["retire:2023-24.1"]


def test_nothing_is_retired_while_the_landing_folder_is_missing(daemon: Daemon):
    import shutil

    daemon.tick()
    shutil.rmtree(daemon.root / "landing")
    result = daemon.tick()
    assert result.run_requests == []
    assert daemon.instance.get_dynamic_partitions("school_year") == [YEAR]


def test_requested_run_loads_the_year(daemon: Daemon):
    """The run request the sensor emits is executable as is: the job loads the year's rows."""
    [request] = daemon.tick().run_requests
    defs = dg.Definitions(assets=[ingestion.raw_survey_rows, ingestion.staging_answers],
                          jobs=automation.jobs, resources=resources(daemon.root))
    job = defs.resolve_job_def(automation.school_year_refresh.name)
    result = job.execute_in_process(partition_key=request.partition_key, tags=request.tags,
                                    instance=daemon.instance)
    assert result.success
    with duckdb.connect(str(daemon.root / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (5,)
        assert con.execute("select count(distinct school_year) from staging.answers"
                           ).fetchone() == (1,)


# --- the monthly schedule ------------------------------------------------------------------

def fire_times(cron: str, timezone: str, after: datetime, n: int) -> list[datetime]:
    times = cron_string_iterator(after.timestamp(), cron, timezone)
    return [next(times) for _ in range(n)]


@contextmanager
def scheduled_at(when: datetime, years: list[str]) -> Iterator[dg.ScheduleEvaluationContext]:
    """A schedule context needs a persistent instance; both are closed in order (a context left
    to the garbage collector would reinstate the closed instance's storage for later tests)."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("school_year", years)
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as ctx:
            yield ctx


def test_default_schedule_fires_monthly_and_requests_every_known_year(monkeypatch):
    monkeypatch.delenv("SURVEY_REFRESH_CRON", raising=False)
    assert automation.refresh_cron() == automation.monthly_refresh.cron_schedule == "0 6 1 * *"
    fires = fire_times(automation.monthly_refresh.cron_schedule,
                       automation.monthly_refresh.execution_timezone,
                       datetime(2024, 1, 15, tzinfo=UTC), 3)
    assert [(f.month, f.day, f.hour, f.minute) for f in fires] == [
        (2, 1, 6, 0), (3, 1, 6, 0), (4, 1, 6, 0)]
    with scheduled_at(fires[0], ["2023-24", "2020-21"]) as context:
        requests = automation.monthly_refresh(context)
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("2020-21", "2020-21:2024-02-01T06:00"), ("2023-24", "2023-24:2024-02-01T06:00")]
    assert all(r.job_name in (None, "school_year_refresh") for r in requests)


def test_cron_and_timezone_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SURVEY_REFRESH_CRON", "30 7 * * 1")
    monkeypatch.setenv("SURVEY_REFRESH_TIMEZONE", "America/New_York")
    schedule = automation.build_refresh_schedule(automation.refresh_cron(),
                                                 automation.refresh_timezone())
    fires = fire_times(schedule.cron_schedule, schedule.execution_timezone,
                       datetime(2024, 9, 4, tzinfo=UTC), 2)
    assert [(f.strftime("%a %H:%M"), f.utcoffset().total_seconds() / 3600) for f in fires] == [
        ("Mon 07:30", -4.0), ("Mon 07:30", -4.0)]
    assert fires[0].date().isoformat() == "2024-09-09"


def test_schedule_skips_when_no_year_is_known():
    with scheduled_at(datetime(2024, 2, 1, 6, tzinfo=UTC), []) as context:
        skip = automation.monthly_refresh(context)
    assert isinstance(skip, dg.SkipReason) and "no school years known" in skip.skip_message


# --- the all-years assets follow the school-year partitions ---------------------------------

gate = threading.Event()


@dg.asset(key=["staging", "stub"], partitions_def=school_years)
def stub_year(context) -> None:
    if context.partition_key == "2023-24":
        gate.wait(30)


@dg.asset(key=["marts", "stub"], deps=[stub_year])
def stub_mart() -> None: ...


@dg.asset(key=["report", "stub"], deps=[stub_mart])
def stub_report() -> None: ...


class Automation:
    def __init__(self, root: Path | None = None):
        # the year retirement is part of every real graph: the all-years condition watches it
        root = root or Path(tempfile.mkdtemp())
        self.defs = dg.Definitions(assets=[stub_year, stub_mart, stub_report,
                                           ingestion.year_retirements],
                                   jobs=automation.jobs, sensors=automation.sensors,
                                   resources=resources(root))
        self.instance = dg.DagsterInstance.ephemeral()
        self.instance.add_dynamic_partitions("school_year", [YEAR, "2023-24"])
        self.cursor = None

    def tick(self) -> list[set[str]]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                          definitions=self.defs)
        result = automation.all_years_automation(context)
        self.cursor = result.cursor
        return [{k.to_user_string() for k in r.asset_selection} for r in result.run_requests]

    def load(self, year: str) -> None:
        dg.materialize([stub_year], partition_key=year, instance=self.instance)


def test_selections_split_the_graph_by_partitioning():
    graph = Automation().defs.resolve_asset_graph()
    assert automation.SCHOOL_YEAR_ASSETS.resolve(graph) == {stub_year.key}
    assert automation.ALL_YEARS_ASSETS.resolve(graph) == {stub_mart.key, stub_report.key}
    assert automation.RETIREMENT_ASSETS.resolve(graph) == {ingestion.RETIREMENTS}
    for sensor in automation.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert automation.monthly_refresh.default_status == dg.DefaultScheduleStatus.RUNNING


def test_all_years_assets_refresh_once_after_their_partitions_update():
    auto = Automation()
    assert auto.tick() == []  # nothing loaded yet: nothing to aggregate
    auto.load(YEAR)  # 2023-24 was never loaded (or failed): the marts still follow 2020-21
    assert auto.tick() == [{"marts/stub", "report/stub"}]
    assert auto.tick() == []  # handled; no new partition run since
    auto.load(YEAR)
    assert auto.tick() == [{"marts/stub", "report/stub"}]


def test_all_years_assets_wait_while_a_partition_run_is_in_progress():
    auto = Automation()
    auto.load(YEAR)
    gate.clear()
    slow = threading.Thread(target=auto.load, args=("2023-24",))
    slow.start()
    try:
        time.sleep(1.5)  # the 2023-24 run has started and waits on the gate
        assert auto.tick() == []
    finally:
        gate.set()
        slow.join()
    assert auto.tick() == [{"marts/stub", "report/stub"}]


# --- external assets (the files read) as dependencies of all-years assets ------------------

@dg.asset(key=["coding", "stub_codebook_codes"], deps=[CODEBOOK_FILES])
def stub_codebook_codes(context) -> None:
    """Like coding/codebook_codes: its only upstream is the external codebooks/yaml_files, and
    it observes the files it read."""
    context.log_event(dg.AssetObservation(asset_key=CODEBOOK_FILES, metadata={"codes": 1}))


def test_an_all_years_asset_fed_only_by_files_is_built_once_on_a_new_warehouse():
    """External dependencies are never materialised: the all-years condition ignores them, or
    coding/codebook_codes would count as waiting for a missing upstream forever; and the
    observation it logs of the codebooks it read does not request it again."""
    external = dg.AssetSpec(CODEBOOK_FILES, group_name="codebooks")
    defs = dg.Definitions(assets=[external, stub_codebook_codes, ingestion.year_retirements],
                          jobs=automation.jobs, sensors=automation.sensors,
                          resources=resources(Path(tempfile.mkdtemp())))
    instance = dg.DagsterInstance.ephemeral()
    cursor, requested = None, []
    for _ in range(4):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        result = automation.all_years_automation(context)
        cursor = result.cursor
        for request in result.run_requests:
            requested.append({k.to_user_string() for k in request.asset_selection})
            dg.materialize([external, stub_codebook_codes], instance=instance,
                           selection=[stub_codebook_codes.key])
    assert requested == [{"coding/stub_codebook_codes"}]


# --- backfill from the command line ---------------------------------------------------------

def test_command_line_backfill_of_a_year(tiny_landing: Path, tmp_path: Path):
    """`dg launch --assets ... --partition YEAR`, as docs/operations.md gives it, against a
    persistent DAGSTER_HOME that knows the year: the year lands in the warehouse and the run is
    recorded in the instance (so the UI shows it)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    root = Path(__file__).resolve().parents[1]
    (home / "dagster.yaml").write_text((root / "pipeline" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("school_year", [YEAR])
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(venv_bin.parent),
           "SURVEY_LANDING_DIR": str(tiny_landing / "landing"),
           "SURVEY_ROSTER": str(tiny_landing / "roster.csv"),
           "SURVEY_WAREHOUSE": str(tmp_path / "cli.duckdb")}
    done = subprocess.run(
        [str(venv_bin / "dg"), "launch", "--assets", "raw/survey_rows,staging/answers",
         "--partition", YEAR, "--config-json", '{"execution": {"config": {"in_process": {}}}}'],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "cli.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (5,)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == YEAR
