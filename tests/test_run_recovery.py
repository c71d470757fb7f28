"""Start-up recovery of `survey-pipeline run` (pipeline/run_recovery.py): a run left
unfinished by a killed process is marked failed and its `warehouse` pool slot freed, with a
message; a run whose process lives is left alone. Also the one-line console logger."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._utils.error import SerializableErrorInfo

from pipeline.console_log import root_cause
from pipeline.core.processes import process_gone, process_token
from pipeline.run_recovery import PROCESS_TAG, release_dead_runs
from pipeline.settings import ROOT


def dead_process_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = process_token(proc.pid)
    proc.kill()
    proc.wait(10)
    return token


def started_run(instance: dg.DagsterInstance, token: str) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="__ephemeral_asset_job__", run_id=run_id,
                                status=DagsterRunStatus.STARTED, tags={PROCESS_TAG: token}))
    return run_id


def test_process_tokens_tell_a_live_process_from_a_gone_one():
    assert process_gone(process_token()) is False
    assert process_gone(dead_process_token()) is True
    assert process_gone("another-host:1:123") is None
    assert process_gone("garbage") is None


def test_a_dead_runs_slot_is_freed_and_the_run_marked_failed(tmp_path: Path):
    shutil.copy(ROOT / "pipeline" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        dead = started_run(instance, dead_process_token())
        alive = started_run(instance, process_token())
        assert storage.claim_concurrency_slot("warehouse", dead, "raw__survey_rows").is_claimed
        # the slot is taken: a new run's step cannot claim it
        assert not storage.claim_concurrency_slot("warehouse", "next", "step").is_claimed
        said = []
        assert release_dead_runs(instance, said.append) == [dead]
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED
        assert len(said) == 1 and "marked it failed and freed 1 warehouse slot(s)" in said[0]
        # the waiting step gets the slot
        assert storage.claim_concurrency_slot("warehouse", "next", "step").is_claimed
        # nothing left to do: a second start-up says nothing
        storage.free_concurrency_slots_for_run("next")
        assert release_dead_runs(instance, said.append) == [] and len(said) == 1


def test_slots_held_by_a_finished_run_are_freed(tmp_path: Path):
    shutil.copy(ROOT / "pipeline" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        run_id = str(uuid.uuid4())
        instance.add_run(DagsterRun(job_name="j", run_id=run_id, status=DagsterRunStatus.FAILURE))
        assert storage.claim_concurrency_slot("warehouse", run_id, "s").is_claimed
        said = []
        release_dead_runs(instance, said.append)
        assert said and "still held by finished run" in said[0]
        assert storage.claim_concurrency_slot("warehouse", "other", "s").is_claimed


def test_a_failed_step_is_one_line_naming_the_innermost_error():
    inner = SerializableErrorInfo(
        "pipeline.core.ingest.mapping.MappingError: mapping.yaml: columns.improve is required\n",
        [], "MappingError")
    outer = SerializableErrorInfo("Error occurred while executing op \"raw\":\n", ["trace"],
                                  "DagsterExecutionStepExecutionError", cause=inner)
    assert root_cause(outer) == "MappingError: mapping.yaml: columns.improve is required"
