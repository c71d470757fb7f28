"""Publishing: the last asset of every refresh copies the working warehouse to
warehouse/published/ for analysts (pipeline/core/warehouse/publish.py does the copy).

`warehouse/published` depends on every sink of the asset graph (so on everything), is in the
"warehouse" pool (no step writes the working file while it is copied) and refuses to publish,
keeping the previous copy, while any blocking check's latest evaluation on any current school
year did not pass. Being an asset, it runs at the end of `survey-pipeline run`, and after the
all-years automation of sensor and schedule runs alike, and shows in the UI with its manifest.
"""

import os
from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from pipeline.core.privacy.redact import load_roster, roster_fingerprint
from pipeline.core.warehouse import publish as core_publish
from pipeline.core.warehouse.fingerprint import fingerprint, package_digest
from pipeline.defs.resources import ProjectPaths, Warehouse

PUBLISHED = dg.AssetKey(["warehouse", "published"])
# set (1/true/yes) to make the next copies whole: docs/operations.md, "Publishing"
WHOLE_ENV = "SURVEY_PUBLISH_WHOLE"


def sink_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Asset keys no other asset depends on: depending on them is depending on everything."""
    keys = {k for a in assets for k in a.keys}
    used = {d for a in assets for deps in a.asset_deps.values() for d in deps}
    return sorted(keys - used - {PUBLISHED}, key=lambda k: k.to_user_string())


def blocking_checks(assets: Sequence[dg.AssetsDefinition],
                    checks: Sequence[dg.AssetChecksDefinition]) -> dict:
    """Every blocking check key -> the partitions definition of the asset it checks."""
    partitions = {k: a.partitions_def for a in assets for k in a.keys}
    specs = [s for d in [*assets, *checks] for s in d.check_specs]
    return {s.key: partitions.get(s.asset_key) for s in specs if s.blocking}


HISTORY = 500   # check executions read at most per partitioned check to find each year's latest
PAGE = 20       # read newest first, a page at a time, until every current year has been seen


def latest_check_statuses(instance: dg.DagsterInstance, checks: dict, live: dict) -> dict:
    """(check key, school year or None) -> status of the latest execution. The instance keeps
    one history per check, not per partition: a partitioned asset's executions are told apart
    by their record's partition, else their run's partition tag. `live`: id(partitions def)
    -> the current years; a check's history is read page by page, newest first, until each
    of them has been seen or HISTORY executions have been read (reading HISTORY every time
    cost 1.3 s per refresh on the sample's instance, growing with its history)."""
    storage = instance.event_log_storage
    partition_of: dict[str, str | None] = {}     # run id -> its partition tag, read once

    latest = {}
    for key, partitions_def in checks.items():
        if partitions_def is None:
            records = storage.get_asset_check_execution_history(key, limit=1)
            if records:
                latest[(key, None)] = _status(records[0])
            continue
        wanted, seen = live.get(id(partitions_def), set()), set()
        cursor, read = None, 0
        while read < HISTORY:
            records = storage.get_asset_check_execution_history(
                key, limit=min(PAGE, HISTORY - read), cursor=cursor)   # newest first
            unknown = {r.run_id for r in records if not r.partition} - partition_of.keys()
            if unknown:
                partition_of.update({
                    rec.dagster_run.run_id: rec.dagster_run.tags.get("dagster/partition")
                    for rec in instance.get_run_records(dg.RunsFilter(run_ids=list(unknown)))})
            for record in records:
                partition = record.partition or partition_of.get(record.run_id)
                seen.add(partition)
                latest.setdefault((key, partition), _status(record))
            read += len(records)
            if not records or wanted <= seen:
                break
            cursor = records[-1].id
    return latest


def _status(record) -> AssetCheckExecutionRecordStatus:
    """The record's status, with a failed evaluation of severity WARN counted as passed: a
    blocking check that only warns (e.g. the data-quality expectations on a year whose exports
    were all refused) does not stop the refresh, so it does not stop publishing either."""
    if record.status == AssetCheckExecutionRecordStatus.FAILED and record.event is not None:
        evaluation = getattr(record.event.dagster_event, "event_specific_data", None)
        if getattr(evaluation, "severity", None) == dg.AssetCheckSeverity.WARN:
            return AssetCheckExecutionRecordStatus.SUCCEEDED
    return record.status


def unpassed_blocking_checks(instance: dg.DagsterInstance, checks: dict) -> list[str]:
    """Blocking checks whose latest execution (per current school year for partitioned
    assets) failed or did not complete (its step failed, was skipped or was killed). Checks
    never run are not counted: a check added since the last refresh runs in the next one."""
    live = {id(d): set(d.get_partition_keys(dynamic_partitions_store=instance))
            for d in checks.values() if d is not None}
    bad = []
    for (key, partition), status in sorted(latest_check_statuses(instance, checks, live).items(),
                                           key=lambda kv: (kv[0][0].to_user_string(),
                                                           kv[0][1] or "")):
        partitions_def = checks[key]
        if partition is not None and partitions_def is not None:
            if partition not in live[id(partitions_def)]:
                continue   # a retired year
        if status == AssetCheckExecutionRecordStatus.SUCCEEDED:
            continue
        where = f" [{partition}]" if partition else ""
        outcome = "failed" if status == AssetCheckExecutionRecordStatus.FAILED else \
            "did not complete"
        bad.append(f"{key.asset_key.to_user_string()}:{key.name}{where} {outcome}")
    return bad


def published_warehouse_asset(upstream: Sequence[dg.AssetsDefinition],
                              checks: Sequence[dg.AssetChecksDefinition] = ()
                              ) -> dg.AssetsDefinition:
    """The publishing asset, depending on the sinks of `upstream` (every other asset) and
    gated on the blocking checks of `upstream` and `checks`."""
    gate = blocking_checks(upstream, checks)

    @dg.asset(
        key=PUBLISHED,
        deps=sink_keys(upstream),
        group_name="warehouse",
        pool="warehouse",
        kinds={"duckdb"},
        description="A consistent read-only copy of the warehouse for analysts: "
        "warehouse/published/survey.duckdb (every table and view) and manifest.json (run id, "
        "time, school years, codebook versions, row counts, what was copied). Built under a "
        "temporary name (the previous copy brought up to date: only the school years whose "
        "rows changed are copied; or a whole copy) and renamed into place at the end of a refresh whose blocking checks all passed; the "
        "previous copy stays until then.",
    )
    def published_warehouse(context: dg.AssetExecutionContext, paths: ProjectPaths,
                            warehouse: Warehouse) -> dg.MaterializeResult:
        unpassed = unpassed_blocking_checks(context.instance, gate)
        if unpassed:
            raise dg.Failure(
                description=f"not published (the previous copy stays): {len(unpassed)} blocking "
                f"check(s) did not pass: {'; '.join(unpassed[:10])}",
                metadata={"checks": dg.MetadataValue.json(unpassed)})
        # copied from the warehouse's connection: `survey-pipeline run` holds the file open
        # across its runs, and a held file cannot be attached by another connection
        core_publish.working_file(warehouse.path)   # a clear error before connecting
        with warehouse.connect(context.log, read_only=True) as con:
            # a copy brought up to date while the roster and the code are the same; made
            # whole when either changed (a row redacted anew leaves no old bytes behind), or
            # when asked ($SURVEY_PUBLISH_WHOLE)
            whole = os.environ.get(WHOLE_ENV, "").strip().lower() in ("1", "true", "yes")
            pub = core_publish.publish(
                warehouse.path, warehouse.published_path(), run_id=context.run_id, con=con,
                whole_copy_key=None if whole else fingerprint(
                    roster_fingerprint(load_roster(paths.roster_path)), package_digest()))
        context.log.info(f"published {pub.path} ({pub.size_bytes / 1e6:.1f} MB, "
                         f"{pub.seconds:.1f}s)")
        m = pub.manifest
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(pub.path)),
            "manifest": dg.MetadataValue.path(str(pub.manifest_path)),
            "school_years": ", ".join(m["school_years"]),
            "codebook_versions": dg.MetadataValue.json(m["codebook_versions"]),
            "tables": len(m["row_counts"]),
            "views": len(m["views"]),
            "size_mb": round(pub.size_bytes / 1e6, 2),
            "seconds": round(pub.seconds, 2),
            "copied": dg.MetadataValue.json(m["copied"]),
            "row_counts": dg.MetadataValue.json(m["row_counts"]),
        })

    return published_warehouse
