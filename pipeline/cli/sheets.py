"""`survey-pipeline sheets YEAR --coder jm --coder ak --out DIR`: the next cycle's coder sheets."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app, fail

ANSWER_COLUMNS = ["answer_id", "response_id", "school_year", "question_id", "session_number",
                  "school_id", "role", "answer_text", "non_substantive"]


class _SheetsError(Exception):
    """A problem to report in one line (no traceback)."""


def read_year(warehouse: Path, school_year: str, with_suggestions: bool):
    """(answers of the year, suggestions or None) from the warehouse, opened read-only."""
    import duckdb

    from pipeline.core.warehouse.connection import WarehouseLockedError, connect, table_columns

    if not warehouse.is_file():
        raise _SheetsError(f"no warehouse at {warehouse}; run the pipeline first "
                           "(or give --warehouse)")
    try:
        with connect(warehouse, read_only=True, wait_seconds=5) as con:
            if not table_columns(con, "staging.answers"):
                raise _SheetsError(f"no staging.answers table in {warehouse}; "
                                   "run the pipeline first")
            years = [y for (y,) in con.execute(
                "select distinct school_year from staging.answers order by 1").fetchall()]
            if school_year not in years:
                raise _SheetsError(f"no answers for school year {school_year!r} in {warehouse} "
                                   f"(years present: {', '.join(years) or 'none'})")
            cols = ", ".join(f'"{c}"' for c in ANSWER_COLUMNS)
            answers = con.execute(f"select {cols} from staging.answers where school_year = ?",
                                  [school_year]).df()
            suggestions = None
            if with_suggestions:
                if not table_columns(con, "coding.suggestions"):
                    raise _SheetsError(f"no coding.suggestions table in {warehouse}; "
                                       "run the pipeline first")
                suggestions = con.execute(
                    "select s.answer_id, s.code_id, s.probability, s.source "
                    "from coding.suggestions s join staging.answers a using (answer_id) "
                    "where a.school_year = ?", [school_year]).df()
    except WarehouseLockedError as exc:
        raise _SheetsError(str(exc)) from None
    except duckdb.Error as exc:
        raise _SheetsError(f"cannot read {warehouse}: {exc}") from None
    return answers, suggestions


@app.command("sheets")
def sheets_command(
    school_year: str = typer.Argument(..., help="School year to code, e.g. 2024-25."),
    coder: list[str] = typer.Option(
        None, "--coder", help="Coder id (the tab name the importer reads); repeatable."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the sheets (created if needed)."),
    warehouse: Path = typer.Option(
        None, "--warehouse", help="DuckDB warehouse (default: SURVEY_WAREHOUSE or "
        "warehouse/survey.duckdb); opened read-only."
    ),
    codebook: list[Path] = typer.Option(
        None, "--codebook", help="Codebook YAML file or folder; repeatable (default: "
        "SURVEY_CODEBOOKS or codebooks/)."
    ),
    with_suggestions: bool = typer.Option(
        False, "--with-suggestions", help="Show coding.suggestions as cell comments and fills "
        "(values stay empty), least-sure answers first. For single-coder review, not for "
        "double coding."
    ),
) -> None:
    """Write one XLSX coder sheet per coder for the substantive answers of SCHOOL_YEAR.

    Blind by default: no machine suggestion in the file, rows ordered by question, session and
    answer id. Fill in the sheets, put them in the coder-sheets folder and re-run the pipeline.
    """
    from pipeline import settings
    from pipeline.core.coding.codebook import CodebookError, load_codebooks
    from pipeline.core.coding.sheet_writer import write_coder_sheets

    if not coder:
        fail("no coder given: add --coder ID for each coder (e.g. --coder jm --coder ak)")
    if with_suggestions and len(coder) > 1:
        fail("--with-suggestions is for one coder reviewing suggestions; double coding for "
             "reliability must stay blind (drop --with-suggestions, or give one --coder)")
    wh = Path(warehouse) if warehouse is not None else Path(settings.warehouse_path())
    try:
        books = load_codebooks(codebook or [settings.codebook_dir()])
        answers, suggestions = read_year(wh, school_year, with_suggestions)
        paths = write_coder_sheets(answers, books, coder, out, school_year, suggestions)
    except (_SheetsError, CodebookError, ValueError) as exc:
        fail(str(exc))
    n = int((~answers["non_substantive"].astype(bool)).sum())
    n_codes = sum(len(b.codes) for b in books)
    mode = (f"with {len(suggestions)} suggestions, least-sure answers first"
            if suggestions is not None else "blind")
    for p in paths:
        typer.echo(str(p))
    typer.echo(f"{len(paths)} sheet(s), {n} answers x {n_codes} codes, {mode}", err=True)
