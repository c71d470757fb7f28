"""`survey-pipeline run`: materialise every asset into the warehouse."""

import typer

from pipeline.cli import app


@app.command()
def run() -> None:
    """Materialise every asset (all school years) on the configured landing folder."""
    from pipeline import settings
    from pipeline.definitions import defs
    from pipeline.runner import materialize_all

    summary = materialize_all(defs, settings.landing_dir(), echo=typer.echo)
    for check in summary.warnings:
        typer.echo(f"check warning: {check} (see its metadata in the UI)", err=True)
    for check in summary.failed_checks:
        typer.echo(f"check failed: {check}", err=True)
    if not summary.success:
        typer.echo("run failed: see the step errors above", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"done: {len(summary.years)} school year(s) {', '.join(summary.years)} -> "
               f"{settings.warehouse_path()}")
