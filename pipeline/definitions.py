"""The one Definitions object: assets, checks, resources, sensors and schedules."""

import dagster as dg

from pipeline import process_gc
from pipeline.defs import (
    automation,
    coding,
    contracts,
    exchange,
    ingestion,
    marts,
    publish,
    reconciliation,
    report,
    sources,
    suggestions,
)
from pipeline.defs.resources import default_resources


def build_defs(resources: dict | None = None) -> dg.Definitions:
    """`resources` overrides the defaults (tests point them at a temporary warehouse)."""
    assets = dg.load_assets_from_modules([ingestion, coding, reconciliation, suggestions, marts,
                                          report, exchange])
    return dg.Definitions(
        # the published copy for analysts: last, depending on every other asset; the
        # external assets (exports, codebooks: pipeline/defs/sources.py) upstream of them all
        assets=[*sources.external_assets, *assets,
                publish.published_warehouse_asset(assets, contracts.checks)],
        asset_checks=contracts.checks,
        jobs=automation.jobs,
        sensors=automation.sensors,
        schedules=automation.schedules,
        resources={**default_resources(), **(resources or {})},
    )


defs = build_defs()
# every process that runs the pipeline loads this module: the CLI, Dagster's code server and
# run workers, the benchmarks (pipeline/process_gc.py)
process_gc.tune()
