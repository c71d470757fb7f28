"""Resources: the project's paths and the DuckDB warehouse connection."""


import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipeline import settings
from pipeline.core.warehouse import connection as warehouse


class ProjectPaths(dg.ConfigurableResource):
    """Inputs of the pipeline. Defaults come from pipeline.settings (env overrides)."""

    landing_dir: str
    roster_path: str
    codebook_dir: str
    coder_sheets_dir: str
    reports_dir: str
    pseudonym_salt: str


DEFAULT_WAIT_SECONDS = 120.0


def warehouse_wait_seconds() -> float:
    """How long a writer waits for another process to release the working file
    (env SURVEY_WAREHOUSE_WAIT_SECONDS, default 120)."""
    return float(os.environ.get("SURVEY_WAREHOUSE_WAIT_SECONDS") or DEFAULT_WAIT_SECONDS)


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file. DuckDB allows one writer process: a connection waits (with backoff,
    logged) while another process holds the file, up to `wait_seconds`, then fails clearly.
    No connection is opened when definitions load, only inside a run."""

    path: str
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    # the read-only copy for analysts (pipeline/defs/publish.py); default: published/ beside
    # the working file
    published_dir: str | None = None

    def published_path(self) -> str:
        return self.published_dir or str(Path(self.path).parent / "published")

    @contextmanager
    def connect(self, log=None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        on_wait = log.warning if log is not None else None
        with warehouse.connect(self.path, read_only=read_only, wait_seconds=self.wait_seconds,
                               on_wait=on_wait) as con:
            yield con


def default_resources() -> dict:
    return {
        "paths": ProjectPaths(
            landing_dir=settings.landing_dir(),
            roster_path=settings.roster_path(),
            codebook_dir=settings.codebook_dir(),
            coder_sheets_dir=settings.coder_sheets_dir(),
            reports_dir=settings.reports_dir(),
            pseudonym_salt=settings.pseudonym_salt(),
        ),
        "warehouse": Warehouse(path=settings.warehouse_path(),
                               wait_seconds=warehouse_wait_seconds()),
    }
