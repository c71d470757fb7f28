"""The `warehouse/published` asset (pipeline/defs/publish.py) with stand-in upstream assets:
it depends on the sinks of the graph, publishes when every blocking check passed, and refuses
(keeping the previous copy) while a blocking check's latest evaluation on a current school
year failed, including one from an earlier run."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pipeline.core.warehouse import connection as wh
from pipeline.defs.partitions import school_years
from pipeline.defs.publish import PUBLISHED, published_warehouse_asset, sink_keys
from pipeline.defs.resources import ProjectPaths, Warehouse

FAIL = {"2020-21": False, "2023-24": False}
WARN_ONLY = {"on": False}   # the failed evaluation has severity WARN (the run goes on)


@dg.asset(key=["staging", "stub"], partitions_def=school_years, pool="warehouse",
          check_specs=[dg.AssetCheckSpec("stub_ok", asset=["staging", "stub"], blocking=True)])
def stub_year(context, warehouse: Warehouse):
    year = context.partition_key
    with warehouse.connect(context.log) as con:
        con.execute("create schema if not exists staging")
        con.execute("create table if not exists staging.stub (school_year varchar)")
        con.execute("delete from staging.stub where school_year = ?", [year])
        con.execute("insert into staging.stub values (?)", [year])
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="stub_ok", passed=not FAIL[year],
                            severity=dg.AssetCheckSeverity.WARN if WARN_ONLY["on"]
                            else dg.AssetCheckSeverity.ERROR)])


@dg.asset(key=["marts", "stub"], deps=[stub_year])
def stub_mart() -> None: ...


@dg.asset(key=["reports", "stub"], deps=[stub_mart])
def stub_report() -> None: ...


def materialize(root: Path, instance, selection, partition_key=None):
    upstream = [stub_year, stub_mart, stub_report]
    assets = [*upstream, published_warehouse_asset(upstream)]
    return dg.materialize(assets, selection=selection, partition_key=partition_key,
                          instance=instance, raise_on_error=False,
                          resources={"warehouse": Warehouse(path=str(root / "w.duckdb"),
                                                            wait_seconds=1),
                                     "paths": _paths(root)})


def _paths(root: Path) -> ProjectPaths:
    """The publishing asset reads the roster (its fingerprint keys the copy brought up to
    date)."""
    roster = root / "roster.csv"
    if not roster.exists():
        roster.write_text("full_name,role\nMarisol Quintero,teacher\n", encoding="utf-8")
    return ProjectPaths(landing_dir=str(root / "landing"), roster_path=str(roster),
                        coder_sheets_dir=str(root / "sheets"), reports_dir=str(root / "reports"),
                        pseudonym_salt="test")


@pytest.fixture
def instance():
    FAIL.update({"2020-21": False, "2023-24": False})
    WARN_ONLY["on"] = False
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("school_year", ["2020-21", "2023-24"])
    return inst


def test_depends_on_the_sinks():
    assert sink_keys([stub_year, stub_mart, stub_report]) == [stub_report.key]


def test_publishes_only_while_every_blocking_check_passed(tmp_path: Path, instance):
    for year in ("2020-21", "2023-24"):
        assert materialize(tmp_path, instance, [stub_year.key], year).success
    first = materialize(tmp_path, instance, [PUBLISHED])
    assert first.success
    manifest_path = tmp_path / "published" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["run_id"] == first.run_id
    assert manifest["row_counts"] == {"staging.stub": 2}
    before = (tmp_path / "published" / "survey.duckdb").read_bytes()

    # 2023-24's blocking check fails in a year run; the all-years run comes later
    FAIL["2023-24"] = True
    assert not materialize(tmp_path, instance, [stub_year.key], "2023-24").success
    refused = materialize(tmp_path, instance, [PUBLISHED])
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "not published (the previous copy stays)" in message
    assert "staging/stub:stub_ok [2023-24] failed" in message and "2020-21" not in message
    assert (tmp_path / "published" / "survey.duckdb").read_bytes() == before
    assert json.loads(manifest_path.read_text())["run_id"] == first.run_id

    # fixed and re-run: published again; a retired year's old failure no longer counts
    FAIL["2023-24"] = False
    assert materialize(tmp_path, instance, [stub_year.key], "2023-24").success
    assert materialize(tmp_path, instance, [PUBLISHED]).success
    FAIL["2020-21"] = True
    assert not materialize(tmp_path, instance, [stub_year.key], "2020-21").success
    instance.delete_dynamic_partition("school_year", "2020-21")
    assert materialize(tmp_path, instance, [PUBLISHED]).success


def test_a_working_file_that_cannot_be_copied_keeps_the_previous_copy(tmp_path: Path,
                                                                      instance):
    with wh.connect(tmp_path / "w.duckdb") as con:
        con.execute("create table t (x int)")
    assert materialize(tmp_path, instance, [PUBLISHED]).success
    (tmp_path / "w.duckdb").write_bytes(b"garbage" * 1000)
    result = materialize(tmp_path, instance, [PUBLISHED])
    assert not result.success
    with wh.connect(tmp_path / "published" / "survey.duckdb", read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone() == (0,)


def test_a_blocking_check_that_only_warns_does_not_stop_publishing(tmp_path: Path, instance):
    FAIL["2023-24"] = True
    WARN_ONLY["on"] = True
    for year in ("2020-21", "2023-24"):
        materialize(tmp_path, instance, [stub_year.key], year)
    assert materialize(tmp_path, instance, [PUBLISHED]).success
    assert (tmp_path / "published" / "survey.duckdb").exists()



def test_a_years_latest_evaluation_is_found_however_many_newer_runs_came_after(
        tmp_path: Path, instance, monkeypatch):
    """The check history is read a page at a time, newest first, until each current year has
    been seen (here a page is one execution): 2020-21's failure, three 2023-24 runs back,
    still refuses publishing."""
    from pipeline.defs import publish

    monkeypatch.setattr(publish, "PAGE", 1)
    FAIL["2020-21"] = True
    assert not materialize(tmp_path, instance, [stub_year.key], "2020-21").success
    for _ in range(3):
        assert materialize(tmp_path, instance, [stub_year.key], "2023-24").success
    refused = materialize(tmp_path, instance, [PUBLISHED])
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "staging/stub:stub_ok [2020-21] failed" in message and "2023-24" not in message
