"""`survey-pipeline run`: materialise every asset into the warehouse."""

import typer

from pipeline.cli import app


@app.command()
def run(log_level: str = typer.Option("INFO", help="Dagster console log level: DEBUG shows "
                                       "every event")) -> None:
    """Materialise every asset (all school years) on the configured landing folder."""
    from pipeline import settings
    from pipeline.cli.summary import print_run_summary
    from pipeline.core.ingest.raw import folders_without_mapping
    from pipeline.core.warehouse.connection import years_in_warehouse
    from pipeline.definitions import build_defs
    from pipeline.runner import materialize_all

    for folder in folders_without_mapping(settings.landing_dir()):
        typer.echo(f"warning: landing folder {folder!r} has no mapping.yaml: not a school year, "
                   "nothing in it was read", err=True)
    # built now, so the SURVEY_* settings of this process apply
    summary = materialize_all(build_defs(), settings.landing_dir(), echo=typer.echo,
                              log_level=log_level)
    stale = sorted(set(years_in_warehouse(settings.warehouse_path())) - set(summary.years))
    if stale:
        typer.echo(f"warning: the warehouse still holds school year(s) {', '.join(stale)} whose "
                   "landing folder is gone; their rows are kept (docs/operations.md: "
                   "retiring a year)", err=True)
    for check in summary.warnings:
        typer.echo(f"check warning: {check} (see its metadata in the UI)", err=True)
    for check in summary.failed_checks:
        typer.echo(f"check failed: {check}", err=True)
    print_run_summary(summary)  # checks' reasons and rows; after success, where things landed
    if not summary.success:
        typer.echo("run failed: see the step errors above", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"done: {len(summary.years)} school year(s) {', '.join(summary.years)} -> "
               f"{settings.warehouse_path()}")
