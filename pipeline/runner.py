"""Materialise every asset in-process: each school-year partition, then the all-years assets.

This is what `make run` / `survey-pipeline run` does. The in-process executor avoids the
per-step re-import of dagster and great_expectations that the multiprocess executor pays.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import dagster as dg

from pipeline.console_log import brief_console_logger
from pipeline.core.ingest.raw import school_years
from pipeline.defs.partitions import school_years as school_year_partitions
from pipeline.defs.publish import PUBLISHED
from pipeline.defs.resources import Warehouse
from pipeline.instance_sqlite import (
    keep_sqlite_engines,
    read_migrations_once,
    relax_sqlite_flushes,
)
from pipeline.run_recovery import release_dead_runs, run_tags


@dataclass
class RunSummary:
    years: list[str]
    runs: int
    success: bool
    failed_checks: list[str]
    warnings: list[str]
    published: bool = False          # warehouse/published was refreshed by this command
    stopped: str | None = None       # why later internal runs were not started
    # the failed and warned check evaluations, newest run first (the summary's details)
    evaluations: list = field(default_factory=list)


def instance_for_cli() -> dg.DagsterInstance:
    """The persistent instance under $DAGSTER_HOME when set (the Makefile sets one), its
    SQLite history written without a flush, or a new engine and connection, per event, and
    Dagster's migration scripts read once (pipeline/instance_sqlite.py)."""
    if os.environ.get("DAGSTER_HOME"):
        relax_sqlite_flushes()
        keep_sqlite_engines()
        read_migrations_once()
        os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def sync_partitions(instance: dg.DagsterInstance, years: list[str]) -> None:
    name = school_year_partitions.name
    known = set(instance.get_dynamic_partitions(name))
    new = [y for y in years if y not in known]
    if new:
        instance.add_dynamic_partitions(name, new)


def run_order(graph) -> tuple[list, list, list]:
    """Unpartitioned assets with no partitioned ancestor (run first), the partitioned
    assets (run per school year), and the unpartitioned assets downstream of them. External
    assets (the files read: exports/*, codebooks/*) are not run: they have no function."""
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    partitioned = [k for k in keys if graph.get(k).partitions_def is not None]
    after = set()
    for key in partitioned:
        after |= {k for k in graph.get(key).child_keys}
    frontier = list(after)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child not in after:
                after.add(child)
                frontier.append(child)
    after -= set(partitioned)
    before = [k for k in keys if k not in after and k not in partitioned]
    return before, partitioned, [k for k in keys if k in after]


def partition_waves(graph, partitioned: list) -> list[list]:
    """The school-year assets in waves: an asset that reads other years' partitions of an
    upstream asset (a dependency with an AllPartitionMapping, e.g. trained suggestions read
    every year's human codes) runs in a later wave than that upstream, so every year's
    upstream partition exists first. With no such dependency: one wave, all of them."""
    wave: dict = {}

    def of(key) -> int:
        if key not in wave:
            wave[key] = 0
            for parent in graph.get(key).parent_keys:
                if graph.get(parent).partitions_def is None:
                    continue
                cross = isinstance(graph.get_partition_mapping(key, parent),
                                   dg.AllPartitionMapping)
                wave[key] = max(wave[key], of(parent) + int(cross))
        return wave[key]

    for key in partitioned:
        of(key)
    for key in partitioned:  # the keys of one multi-asset step run together, in its last wave
        siblings = [k for k in graph.get(key).assets_def.keys if k in wave]
        last = max(wave[k] for k in siblings)
        wave.update(dict.fromkeys(siblings, last))
    n = max((wave[k] for k in partitioned), default=-1) + 1
    return [[k for k in partitioned if wave[k] == w] for w in range(n)]


def materialize_all(
    defs: dg.Definitions,
    landing_dir: str,
    instance: dg.DagsterInstance | None = None,
    resources: dict | None = None,
    echo: Callable[[str], None] = print,
    log_level: str | None = None,
) -> RunSummary:
    """`log_level` ("INFO", "WARNING"...) quiets Dagster's console logger (default: DEBUG).

    Internal runs: shared inputs, each school year, then the all-years assets, whose last,
    `warehouse/published`, is left out unless every earlier run succeeded. A run that failed
    because another process held the warehouse stops the command: later runs would only wait
    for the same lock again."""
    instance = instance or instance_for_cli()
    release_dead_runs(instance, echo)
    years = school_years(landing_dir)
    sync_partitions(instance, years)
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    # Asset checks defined outside their asset (pipeline/defs/contracts.py) run with it: a
    # selected asset's checks are part of its step selection.
    assets = list({id(a): a for a in [*repo.assets_defs_by_key.values(),
                                      *repo.asset_checks_defs_by_key.values()]}.values())
    before, partitioned, after = run_order(graph)
    resources = resources if resources is not None else {}
    results = []
    tags = run_tags()
    stopped = None

    run_config = ({"loggers": {"console": {"config": {"log_level": log_level}}}}
                  if log_level else None)

    def run(selection, **kwargs) -> bool:
        """Run; False when the command must stop (the warehouse is held by another process)."""
        nonlocal stopped
        result = _materialize(assets, instance=instance, resources=resources,
                              selection=selection, run_config=run_config, tags=tags, **kwargs)
        results.append(result)
        stopped = lock_failure(result)
        return stopped is None

    def run_in_order() -> bool:
        # every run's steps share one open warehouse file (Warehouse.hold), the publishing
        # step too: it copies from that connection
        with held_warehouse(defs, resources):
            if before:
                echo(f"materialising {len(before)} shared inputs")
                if not run(before):
                    return False
            for wave in partition_waves(graph, partitioned):
                for year in years:
                    echo(f"materialising school year {year}: {len(wave)} partitioned assets")
                    if not run(wave, partition_key=year):
                        return False
            if after:
                selection = after
                if PUBLISHED in after and not all(r.success for r in results):
                    selection = [k for k in after if k != PUBLISHED]
                    echo("not publishing warehouse/published (an earlier run failed): "
                         "analysts keep the previous copy")
                echo(f"materialising {len(selection)} all-years assets")
                run(selection)
        return True

    run_in_order()
    evaluations = [e for r in reversed(results) for e in r.get_asset_check_evaluations()
                   if not e.passed]

    def names(severity):
        return sorted({f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations
                       if e.severity == severity})

    published = any(e.asset_key == PUBLISHED for r in results
                    for e in r.get_asset_materialization_events()
                    if e.asset_key is not None)
    return RunSummary(years=years, runs=len(results), success=all(r.success for r in results),
                      failed_checks=names(dg.AssetCheckSeverity.ERROR),
                      warnings=names(dg.AssetCheckSeverity.WARN), published=published,
                      stopped=stopped, evaluations=evaluations)


def held_warehouse(defs: dg.Definitions, resources: dict):
    """Warehouse.hold of the runs' warehouse resource (a no-op for a stand-in resource)."""
    warehouse = resources.get("warehouse", defs.resources.get("warehouse"))
    return warehouse.hold() if isinstance(warehouse, Warehouse) else nullcontext()


def _materialize(assets, selection, resources, **kwargs) -> dg.ExecuteInProcessResult:
    """dg.materialize, with the console logger that prints a failed step in one line."""
    defs = dg.Definitions(jobs=[dg.define_asset_job(name=RUN_JOB_NAME, selection=selection)],
                          assets=assets, resources=resources,
                          loggers={"console": brief_console_logger})
    return defs.resolve_job_def(RUN_JOB_NAME).execute_in_process(raise_on_error=False, **kwargs)


RUN_JOB_NAME = "__ephemeral_asset_job__"   # the name dg.materialize gives its runs
LOCK_ERROR = "WarehouseLockedError"


def lock_failure(result: dg.ExecuteInProcessResult) -> str | None:
    """The message of a step that failed because another process held the warehouse."""
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        while error is not None:
            if error.cls_name == LOCK_ERROR:
                return error.message.strip()
            error = error.cause
    return None
