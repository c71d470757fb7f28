"""`survey-pipeline explain ANSWER_ID`: one answer and how it was coded, from the warehouse
(opened read-only): each code by each coder, the keyword hits with the matched words
highlighted, the suggestions, the final decision and who made it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from pipeline.cli import app, fail


@app.command("explain")
def explain(
    answer_id: str = typer.Argument(..., help="The answer's id (`A` + 12 hex), e.g. from "
                                    "reports/coded_answers.xlsx or the discrepancy queue."),
    warehouse: Path = typer.Option(None, "--warehouse", help="DuckDB file (default: "
                                   "SURVEY_WAREHOUSE or warehouse/survey.duckdb)."),
    color: bool = typer.Option(None, "--color/--no-color", help="Highlight with ANSI colours "
                               "(default: when printing to a terminal and NO_COLOR is unset)."),
) -> None:
    """Print one answer with every code each coder, the keyword coder and the suggester gave
    it, and the final decision per code with who made it."""
    from pipeline import settings
    from pipeline.core.exchange.explain import UnknownAnswerError, gather, render
    from pipeline.core.warehouse.connection import WarehouseLockedError, connect

    path = Path(warehouse or settings.warehouse_path())
    if not path.is_file():
        fail(f"no warehouse at {path}: run `make run` first")
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        with connect(path, read_only=True, wait_seconds=10) as con:
            info = gather(con, answer_id.strip())
    except UnknownAnswerError as e:
        fail(str(e))
    except WarehouseLockedError as e:
        fail(str(e))
    typer.echo(render(info, color=color))
