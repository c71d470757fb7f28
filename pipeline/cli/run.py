"""`survey-pipeline run`: materialise every asset into the warehouse, then publish it.

Expected failures end with one line on stderr and exit code 1, never a traceback: another
process holding the working file (waited for once, before any internal run), a missing landing
folder, a bad mapping or export (the step's trace stays in the Dagster event log).
"""

import typer

from pipeline.cli import app


def _config_errors() -> tuple[type[BaseException], ...]:
    """The core's one-line configuration errors (a bad mapping, an unreadable export), when
    raised outside a Dagster step (inside one they fail the step, and pipeline/console_log.py
    prints that failure in one line)."""
    from pipeline.core.ingest.exports import ExportReadError
    from pipeline.core.ingest.mapping import MappingError
    from pipeline.core.ingest.raw import LandingError

    return (MappingError, ExportReadError, LandingError)


def _wait_for_the_working_file(path: str, wait_seconds: float) -> None:
    """Wait once, before any internal run, for another process to release the file."""
    from pipeline.core.warehouse.connection import lock_holder, wait_until_writable

    said = []

    def on_wait(message: str) -> None:
        if not said:   # one message, not one per retry
            holder = lock_holder(message) or "another process"
            typer.echo(f"waiting: warehouse {path} is held by {holder}; waiting up to "
                       f"{wait_seconds:.0f}s for it to be closed", err=True)
            said.append(message)

    wait_until_writable(path, wait_seconds, on_wait=on_wait)


@app.command()
def run(log_level: str = typer.Option("INFO", help="Dagster console log level: DEBUG shows "
                                       "every event")) -> None:
    """Materialise every asset (all school years) on the configured landing folder."""
    from pipeline import settings
    from pipeline.core.warehouse.connection import WarehouseLockedError

    try:
        summary = _run(log_level, settings)
    except WarehouseLockedError as exc:
        holder = exc.holder or "another process"
        typer.echo(f"run not started: warehouse {exc.path or settings.warehouse_path()} is held "
                   f"by {holder}; close that session (analysts: open "
                   "warehouse/published/survey.duckdb instead) or wait for the other run, then "
                   "run again", err=True)
        raise typer.Exit(code=1) from None
    except _config_errors() as exc:
        typer.echo(f"run failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if summary is None:
        raise typer.Exit(code=1)


def _run(log_level: str, settings):
    from pipeline.cli.summary import print_run_summary
    from pipeline.core.ingest.raw import check_landing, folders_without_mapping
    from pipeline.core.warehouse.connection import years_in_warehouse
    from pipeline.definitions import build_defs
    from pipeline.defs.resources import warehouse_wait_seconds
    from pipeline.runner import materialize_all

    landing = settings.landing_dir()
    check_landing(landing)   # LandingError / MappingError: one line, before anything runs
    for folder in folders_without_mapping(landing):
        typer.echo(f"warning: landing folder {folder!r} has no mapping.yaml: not a school year, "
                   "nothing in it was read", err=True)
    _wait_for_the_working_file(settings.warehouse_path(), warehouse_wait_seconds())
    # built now, so the SURVEY_* settings of this process apply
    summary = materialize_all(build_defs(), landing, echo=typer.echo, log_level=log_level)
    if summary.stopped:
        typer.echo(f"run stopped: {summary.stopped.splitlines()[0]}", err=True)
        return None
    stale = sorted(set(years_in_warehouse(settings.warehouse_path())) - set(summary.years))
    if stale:
        typer.echo(f"warning: the warehouse still holds school year(s) {', '.join(stale)} whose "
                   "landing folder is gone and were not retired (see raw/year_retirements in the UI; "
                   "`survey-pipeline year retire YEAR` retires one explicitly)", err=True)
    for check in summary.warnings:
        typer.echo(f"check warning: {check} (see its metadata in the UI)", err=True)
    for check in summary.failed_checks:
        typer.echo(f"check failed: {check}", err=True)
    print_run_summary(summary)  # checks' reasons and rows; after success, where things landed
    if not summary.success:
        typer.echo("run failed: see the step errors above (warehouse/published keeps the "
                   "previous copy)", err=True)
        return None
    typer.echo(f"done: {len(summary.years)} school year(s) {', '.join(summary.years)} -> "
               f"{settings.warehouse_path()}")
    if summary.published:
        from pipeline.core.warehouse.publish import published_paths
        from pipeline.defs.resources import Warehouse

        copy, _ = published_paths(Warehouse(path=settings.warehouse_path()).published_path())
        typer.echo(f"published: {copy} (analysts open this copy)")
    return summary
