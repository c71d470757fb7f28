"""`survey-pipeline quarantine [--year YEAR]`: every row the last run kept out, and why: export
rows (raw.quarantine), coder-sheet rows (coding.sheet_quarantine) and adjudication rows
(coding.adjudication_problems), from the warehouse opened read-only. Reasons can quote the
export's text, so what is printed goes through the roster redaction first."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app, fail

TABLES = {  # table -> (title, columns shown)
    "raw.quarantine": ("export rows", ["school_year", "file_name", "row_number", "column_name",
                                       "stage", "level", "reason"]),
    "coding.sheet_quarantine": ("coder-sheet rows", ["source_file", "source_sheet", "source_row",
                                                     "coder", "answer_id", "code", "reason"]),
    "coding.adjudication_problems": ("adjudication rows", ["source_file", "source_row",
                                                           "column_name", "discrepancy_id",
                                                           "reason"]),
}


@app.command("quarantine")
def quarantine(
    year: str = typer.Option(None, "--year", help="Only this school year's export rows."),
    warehouse: Path = typer.Option(None, "--warehouse", help="DuckDB file (default: "
                                   "SURVEY_WAREHOUSE or warehouse/survey.duckdb)."),
) -> None:
    """List the rows kept out of the analysis, with the reason for each."""
    from pipeline import settings
    from pipeline.core.privacy.redact import Redactor, load_roster
    from pipeline.core.warehouse.connection import connect, read_frame

    path = Path(warehouse or settings.warehouse_path())
    if not path.is_file():
        fail(f"no warehouse at {path}: run `make run` first")
    redactor = Redactor(load_roster(settings.roster_path()))
    with connect(path, read_only=True, wait_seconds=10) as con:
        frames = {t: read_frame(con, t) for t in TABLES}
    for table, (title, columns) in TABLES.items():
        frame = frames[table]
        if year and "school_year" in frame.columns:
            frame = frame[frame["school_year"] == year]
        typer.echo(f"{title} ({table}): {len(frame)}")
        for row in frame.reindex(columns=columns).itertuples(index=False):
            cells = [f"{c}={v}" for c, v in zip(columns, row, strict=True)
                     if v is not None and str(v) not in ("", "nan", "None", "<NA>")]
            typer.echo("  " + redactor.redact(" · ".join(cells))[0])
