"""The one Definitions object: assets, checks, resources, sensors and schedules."""

import dagster as dg

from pipeline.defs import ingestion
from pipeline.defs.resources import default_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion]),
    resources=default_resources(),
)
