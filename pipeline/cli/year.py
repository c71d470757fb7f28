"""`survey-pipeline year list` and `survey-pipeline year retire YEAR`: the year lifecycle.

`list` shows each school year the landing folder or the warehouse knows: its files (in the
landing folder; loaded, refused, unreadable), its answers and quarantined rows, its coding
state, and whether it is retired. `retire` does what the landing sensor does when a year's
folder is removed, on demand: the year's rows leave every year table (an audit row stays in
raw.year_retirements), its Dagster partition is deleted (when DAGSTER_HOME is set) and the
all-years assets (agreement, marts, report) are rebuilt without it (`--no-refresh` skips that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli import app, fail

year_app = typer.Typer(help="School years: list them, retire one.", no_args_is_help=True)
app.add_typer(year_app, name="year")

WarehouseOption = Annotated[Path | None, typer.Option(
    "--warehouse", help="The DuckDB file (default: SURVEY_WAREHOUSE or warehouse/survey.duckdb)")]
LandingOption = Annotated[Path | None, typer.Option(
    "--landing", help="The landing folder (default: SURVEY_LANDING_DIR or the sample's)")]


def _paths(warehouse: Path | None, landing: Path | None) -> tuple[Path, Path]:
    from pipeline import settings

    return (warehouse or Path(settings.warehouse_path()),
            landing or Path(settings.landing_dir()))


@year_app.command("list")
def list_years(warehouse: WarehouseOption = None, landing: LandingOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="One JSON object per "
                                                     "year")] = False) -> None:
    """Each school year: files, answers, quarantined rows, coding state, retired or not."""
    from pipeline.core.ingest.years import year_list
    from pipeline.core.warehouse.connection import WarehouseLockedError, connect

    wh_path, landing_dir = _paths(warehouse, landing)
    try:
        if wh_path.is_file():
            with connect(wh_path, read_only=True, wait_seconds=5) as con:
                table = year_list(con, landing_dir)
        else:
            table = year_list(None, landing_dir)
    except WarehouseLockedError as exc:
        fail(str(exc))
    if as_json:
        for row in table.to_dict("records"):
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    if table.empty:
        typer.echo(f"no school years in {landing_dir} or {wh_path}")
        return
    for r in table.itertuples(index=False):
        typer.echo(f"{r.school_year}  {r.state}")
        typer.echo(f"  files: {r.landing_files} in the landing folder; {r.files_loaded} loaded, "
                   f"{r.files_refused} refused, {r.files_unreadable} unreadable or skipped")
        typer.echo(f"  answers: {r.answers} staged, {r.rows_quarantined} rows quarantined")
        typer.echo(f"  coding: {r.coding}; keyword-coded {r.keyword_coded}, final codes on "
                   f"{r.final_coded} answers")
        if r.aliases:
            typer.echo(f"  names: {r.aliases}")


@year_app.command("retire")
def retire(
    school_year: Annotated[str, typer.Argument(help="The year to retire, e.g. 2024-25")],
    warehouse: WarehouseOption = None,
    landing: LandingOption = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Retire although the landing folder still holds the year (the next "
        "refresh would load it again)")] = False,
    refresh: Annotated[bool, typer.Option(
        "--refresh/--no-refresh", help="Rebuild the all-years assets (agreement, marts, "
        "report) without the year (default: yes)")] = True,
) -> None:
    """Retire one school year from the warehouse, as removing its landing folder does."""
    from pipeline.core.ingest.mapping import MAPPING_FILE_NAME, valid_school_year
    from pipeline.core.ingest.years import COMMAND, retire_year, years_in_warehouse
    from pipeline.core.warehouse.connection import WarehouseLockedError, connect

    if not valid_school_year(school_year):
        fail(f"{school_year!r} is not a school year like 2024-25")
    wh_path, landing_dir = _paths(warehouse, landing)
    folder = landing_dir / school_year
    if (folder / MAPPING_FILE_NAME).is_file() and not force:
        fail(f"{folder} still holds the year's exports: the next refresh would load it again; "
             "move the folder out of the landing folder first (the sensor then retires the "
             "year by itself), or pass --force")
    if not wh_path.is_file():
        fail(f"no warehouse at {wh_path}")
    try:
        with connect(wh_path, wait_seconds=60, on_wait=lambda m: typer.echo(m, err=True)) as con:
            held = years_in_warehouse(con)
            if school_year not in held:
                fail(f"school year {school_year} is not in {wh_path} (years held: "
                     f"{', '.join(held) or 'none'})")
            row = retire_year(con, school_year, COMMAND,
                              detail=f"survey-pipeline year retire {school_year}"
                              + (" --force" if force else ""))
    except WarehouseLockedError as exc:
        fail(str(exc))
    deleted = json.loads(row["rows_deleted"])
    typer.echo(f"retired {school_year}: {row['n_answers']} answers; rows deleted: "
               + ", ".join(f"{t} {n}" for t, n in deleted.items()))
    _delete_partition(school_year)
    if refresh:
        ok = _refresh_all_years()
        if not ok:
            fail("the all-years refresh failed: see the step errors above")
        typer.echo("all-years assets rebuilt without it")
    else:
        typer.echo("the marts and the report still show it until the next refresh "
                   "(survey-pipeline run, or the all-years automation)")


def _delete_partition(year: str) -> None:
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return
    from pipeline.defs.partitions import school_years
    from pipeline.runner import instance_for_cli

    instance = instance_for_cli()
    if year in instance.get_dynamic_partitions(school_years.name):
        instance.delete_dynamic_partition(school_years.name, year)
        typer.echo(f"dynamic partition {year} deleted")


def _refresh_all_years() -> bool:
    """Materialise the all-years assets (those downstream of the school-year partitions)."""
    import dagster as dg

    from pipeline.definitions import build_defs
    from pipeline.runner import instance_for_cli, run_order

    repo = build_defs().get_repository_def()
    _, _, after = run_order(repo.asset_graph)
    assets = list({id(a): a for a in [*repo.assets_defs_by_key.values(),
                                      *repo.asset_checks_defs_by_key.values()]}.values())
    typer.echo(f"rebuilding {len(after)} all-years assets")
    result = dg.materialize(assets, instance=instance_for_cli(), selection=after,
                            raise_on_error=False,
                            run_config={"loggers": {"console": {"config": {
                                "log_level": "WARNING"}}}})
    return result.success
