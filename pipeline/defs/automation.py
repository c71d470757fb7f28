"""Automation: a new or changed export refreshes its school year, then the all-years assets.

- `landing_folder_sensor` watches `<landing>/<year>/` (core.landing) and requests a run of
  `school_year_refresh` (every school-year partitioned asset) for each year whose files
  changed, adding the year's partition first when it is new. A year folder that is gone (or a
  year Dagster knows without a folder) gets a run of `retire_removed_years`
  (raw/year_retirements: the year's rows leave every year table, an audit row is kept, the
  partition is deleted); the all-years assets then refresh without it.
- `all_years_automation` is declarative automation for every unpartitioned asset (agreement,
  marts, report...): it requests them once their upstream partitions updated and no upstream
  run is still in progress, so a backfill of all years is followed by one refresh, not one per
  year.
- `monthly_refresh` is the fallback after each coaching cycle: every known year, once a month.

All three are on by default: `make dev` starts the UI and the daemon, no click needed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from pipeline.core.ingest import landing
from pipeline.defs.ingestion import LIFECYCLE_TAG, RETIREMENTS
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import ProjectPaths
from pipeline.defs.sources import external_assets

# "partitions:dynamic" is every asset on the school_year partitions (raw, staging, coding...);
# "partitions:none" every all-years asset; "is:materializable" leaves out the external assets
# (exports/*, codebooks/*: files the pipeline reads, pipeline/defs/sources.py). Resolved against whatever assets are loaded. The
# year retirement is unpartitioned but not an all-years asset: the landing sensor runs it.
SCHOOL_YEAR_ASSETS = dg.AssetSelection.from_string("partitions:dynamic and is:materializable")
RETIREMENT_ASSETS = dg.AssetSelection.tag(*LIFECYCLE_TAG)
ALL_YEARS_ASSETS = (dg.AssetSelection.from_string("partitions:none and is:materializable")
                    - RETIREMENT_ASSETS)
# the files read (pipeline/defs/sources.py): never materialised, observed by the assets that
# read them; the all-years condition ignores them as dependencies (below)
EXTERNAL_ASSETS = dg.AssetSelection.assets(*(spec.key for spec in external_assets))

DEFAULT_REFRESH_CRON = "0 6 1 * *"  # 06:00 on the 1st of every month
SENSOR_INTERVAL_SECONDS = 30


def settle_seconds() -> float:
    """How long a file must sit unmodified before it is read (env SURVEY_SETTLE_SECONDS)."""
    return float(os.environ.get("SURVEY_SETTLE_SECONDS", landing.DEFAULT_SETTLE_SECONDS))


school_year_refresh = dg.define_asset_job(
    name="school_year_refresh",
    selection=SCHOOL_YEAR_ASSETS,
    partitions_def=school_years,
    # one process per run: each multiprocess step would re-import dagster and GX (~3 s each)
    executor_def=dg.in_process_executor,
    description="Every school-year partitioned asset (raw -> staging -> coding) for one year.",
)

retire_removed_years = dg.define_asset_job(
    name="retire_removed_years",
    selection=RETIREMENT_ASSETS,
    executor_def=dg.in_process_executor,
    description="Retires every school year whose landing folder is gone (raw/year_retirements)",
)


@dg.sensor(
    name="landing_folder_sensor",
    jobs=[school_year_refresh, retire_removed_years],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New, changed or removed files in <landing>/<school_year>/ -> a run of that "
    "year's partition (a new year folder adds its partition). A removed year folder -> a run "
    "of retire_removed_years. Half-written files wait.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext, paths: ProjectPaths):
    scans = landing.scan_landing(paths.landing_dir, settle_seconds=settle_seconds())
    plan = landing.plan(scans, landing.decode_cursor(context.cursor))
    for line in landing.describe(plan):
        context.log.info(line)
    known = set(context.instance.get_dynamic_partitions(school_years.name))
    new_years = sorted({r.year for r in plan.runs} - known)
    run_requests = [
        dg.RunRequest(run_key=r.run_key, partition_key=r.year, job_name=school_year_refresh.name,
                      tags={"survey/trigger": "landing_folder", "survey/files": r.summary()})
        for r in plan.runs
    ]
    usable = Path(paths.landing_dir).is_dir() and bool(scans)
    retire = landing.retirement(plan, known, usable)
    if retire:
        context.log.info(f"retiring {', '.join(retire.years)}: no landing folder")
        run_requests.append(dg.RunRequest(
            run_key=retire.run_key, job_name=retire_removed_years.name,
            tags={"survey/trigger": "landing_folder",
                  "survey/retire": ",".join(retire.years)}))
    elif (plan.years_gone or known - set(scans)) and not usable:
        context.log.warning(f"landing folder {paths.landing_dir} is missing or holds no year "
                            "folder: no school year is retired until it is back")
    cursor = landing.encode_cursor(plan.cursor)
    if not run_requests:
        waiting = sum(len(p) for p in plan.pending.values())
        reason = (f"{waiting} file(s) still being written; retrying next tick" if waiting
                  else f"no new or changed exports in {paths.landing_dir}")
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[school_years.build_add_request(new_years)]
        if new_years else [],
        cursor=cursor,
    )


# AutomationCondition.eager() minus its "no missing dependency" clause: an all-years asset
# depends on every school-year partition, and one year that failed would otherwise hold the
# marts back for good. Still waits while any upstream partition is in progress. `missing()`
# rather than eager's `newly_missing()`: an asset already missing when the sensor first looks
# (coding/codebook_codes on a new warehouse, which has no upstream to update) is built too.
# A retired year updates no dependency (its rows are deleted, no partition is materialised):
# the retirement asset's own materialisation triggers the all-years refresh.
# External dependencies (exports, codebooks) are ignored: never materialised, they would count
# as missing forever (coding/codebook_codes, whose only upstream is codebooks/yaml_files, would
# never be built), and the observation an all-years asset logs of the file it read would count
# as an update of its own upstream (a refresh loop).
ALL_YEARS_CONDITION = (
    (
        (dg.AutomationCondition.missing()
         & ~dg.AutomationCondition.any_deps_missing().ignore(EXTERNAL_ASSETS))
        | dg.AutomationCondition.any_deps_updated().ignore(EXTERNAL_ASSETS)
        | dg.AutomationCondition.asset_matches(RETIREMENTS,
                                               dg.AutomationCondition.newly_updated())
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after school-year refresh")

with warnings.catch_warnings():  # default_condition is beta in Dagster 1.13
    warnings.simplefilter("ignore", dg.BetaWarning)
    all_years_automation = dg.AutomationConditionSensorDefinition(
        name="all_years_automation",
        target=ALL_YEARS_ASSETS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        # default_condition applies ALL_YEARS_CONDITION to every all-years asset without one, so
        # the coding/marts/report modules need no automation code; it requires evaluating the
        # sensor in the code server.
        use_user_code_server=True,
        default_condition=ALL_YEARS_CONDITION,
        emit_backfills=False,
        description="Refreshes every all-years (unpartitioned) asset after its school-year inputs "
        "updated and none is still running.",
    )


def build_refresh_schedule(cron: str, timezone: str = "UTC") -> dg.ScheduleDefinition:
    @dg.schedule(
        name="monthly_refresh",
        cron_schedule=cron,
        execution_timezone=timezone,
        job=school_year_refresh,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Fallback after each coaching cycle: every known school year is refreshed "
        "(the all-years assets follow through all_years_automation).",
    )
    def monthly_refresh(context: dg.ScheduleEvaluationContext):
        years = sorted(context.instance.get_dynamic_partitions(school_years.name))
        if not years:
            return dg.SkipReason("no school years known yet (the landing sensor adds them)")
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
        return [dg.RunRequest(run_key=f"{year}:{stamp}", partition_key=year,
                              tags={"survey/trigger": "monthly_refresh"}) for year in years]

    return monthly_refresh


def refresh_cron() -> str:
    """The schedule's cron (env SURVEY_REFRESH_CRON), read when the definitions load."""
    return os.environ.get("SURVEY_REFRESH_CRON") or DEFAULT_REFRESH_CRON


def refresh_timezone() -> str:
    return os.environ.get("SURVEY_REFRESH_TIMEZONE") or "UTC"


monthly_refresh = build_refresh_schedule(refresh_cron(), refresh_timezone())

jobs = [school_year_refresh, retire_removed_years]
sensors = [landing_folder_sensor, all_years_automation]
schedules = [monthly_refresh]
