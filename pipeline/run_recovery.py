"""Start-up step of `survey-pipeline run`: clean up after a run that was killed.

A run killed with `kill -9` (an OOM kill, a power cut) never records its end: the instance
still shows it as started and the `warehouse` pool slot its step claimed stays taken, so the
next run waits for that slot for ever. Every run `survey-pipeline run` starts carries the tag
`survey/process` (host, PID and start time of its process, pipeline/core/processes.py); at
start-up, runs with that tag that are not finished and whose process is gone are marked failed
and their slots freed, and slots still held by finished runs are freed too. Runs launched
elsewhere (the UI, the daemon) have no such tag and are left to Dagster's run monitoring
(pipeline/dagster.yaml).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES, NOT_FINISHED_STATUSES

from pipeline.core.processes import process_gone, process_token

PROCESS_TAG = "survey/process"


def run_tags() -> dict[str, str]:
    """Tags for every run this process starts."""
    return {PROCESS_TAG: process_token()}


def release_dead_runs(instance: dg.DagsterInstance,
                      echo: Callable[[str], None] = print) -> list[str]:
    """Mark unfinished runs whose process is gone as failed and free their pool slots; free
    the slots of finished runs. Returns the ids of the runs marked failed."""
    dead = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES)))
    for run in runs:
        token = run.tags.get(PROCESS_TAG)
        if token is None or not process_gone(token):
            continue
        instance.report_run_failed(
            run, f"survey-pipeline run: the process of this run ({token}) is gone "
            "(killed?); marked failed at the next start")
        freed = _free_slots(instance, run.run_id)
        echo(f"recovered: run {run.run_id[:8]} was left unfinished by a process that is gone "
             f"({token}); marked it failed and freed {freed} warehouse slot(s)")
        dead.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holding = storage.get_concurrency_run_ids() - set(dead)
        if holding:
            finished = instance.get_runs(filters=dg.RunsFilter(run_ids=list(holding),
                                                               statuses=list(FINISHED_STATUSES)))
            for run in finished:
                freed = _free_slots(instance, run.run_id)
                if freed:
                    echo(f"recovered: freed {freed} warehouse slot(s) still held by finished "
                         f"run {run.run_id[:8]} ({run.status.value.lower()})")
    return dead


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0
    held = sum(1 for key in storage.get_concurrency_keys()
               for slot in storage.get_concurrency_info(key).claimed_slots
               if slot.run_id == run_id)
    storage.free_concurrency_slots_for_run(run_id)
    return held
