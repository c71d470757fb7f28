"""`survey-pipeline code` (code any CSV) and `survey-pipeline codebook check` (validate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import typer

from pipeline.cli import app, fail
from pipeline.core.coding.codebook import (
    CO_FIRING_MIN_ANSWERS,
    CodebookError,
    co_firing_groups,
    load_codebooks,
    meaning_gaps,
)
from pipeline.core.coding.matcher import KeywordCoder

OUTPUT_COLUMNS = ["id", "framework", "dimension", "code", "pattern", "matched_text", "start", "end"]

codebook_app = typer.Typer(help="Inspect and validate codebooks.", no_args_is_help=True)
app.add_typer(codebook_app, name="codebook")


def read_answers_csv(path: Path) -> pd.DataFrame:
    """Every cell as text, verbatim: 'NA', 'n/a', 'none' stay answers (the coder decides)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: neither UTF-8 nor cp1252 text")


def code_table(
    df: pd.DataFrame,
    text_column: str,
    id_column: str | None,
    codebooks: list,
    all_hits: bool = False,
) -> pd.DataFrame:
    """The CLI's output table: one row per code application (first hit), or per hit."""
    for col in (text_column, id_column):
        if col is not None and col not in df.columns:
            raise KeyError(f"no column {col!r} (columns: {', '.join(map(str, df.columns))})")
    ids = df[id_column] if id_column is not None else pd.Series(range(len(df)), dtype=object)
    answers = pd.DataFrame({"id": ids.to_numpy(), "text": df[text_column].to_numpy()})
    # the pipeline's own path (the compiled batch scan), one row per code application
    coded = KeywordCoder(codebooks).code_frame(answers, "id", "text")
    rows = []
    columns = ["id", "framework", "dimension", "code_id", "evidence"]
    for answer_id, framework, dimension, code, evidence in coded[columns].itertuples(index=False):
        hits = json.loads(evidence)
        for ev in hits if all_hits else hits[:1]:
            rows.append(
                (answer_id, framework, dimension, code, ev["pattern"], ev["matched_text"],
                 ev["start"], ev["end"])
            )  # fmt: skip
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


@app.command("code")
def code_command(
    input_csv: Path = typer.Argument(
        ..., help="CSV file with one answer per row.", exists=True, dir_okay=False
    ),
    text_column: str = typer.Option(..., "--text-column", help="Column with the answer text."),
    id_column: str = typer.Option(
        None, "--id-column", help="Column with the answer id (default: 0-based row number)."
    ),
    codebook: list[Path] = typer.Option(
        ..., "--codebook", help="Codebook YAML file or folder of them; repeatable."
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Output CSV (default: stdout)."),
    all_hits: bool = typer.Option(
        False, "--all-hits", help="One row per evidence hit instead of per code application."
    ),
) -> None:
    """Code the answers in a CSV with keyword codebooks.

    Output: one row per code application (id, framework, dimension, code, pattern,
    matched_text, start, end), showing the application's first hit in the answer;
    with --all-hits, one row per hit. Answers with no code give no row.
    """
    try:
        books = load_codebooks(codebook)
        table = code_table(read_answers_csv(input_csv), text_column, id_column, books, all_hits)
    except (CodebookError, KeyError, ValueError) as e:
        fail(str(e).strip("'\""))
    if output is None:
        table.to_csv(sys.stdout, index=False)
    else:
        table.to_csv(output, index=False)
    n_ids = table["id"].nunique()
    typer.echo(f"{len(table)} rows, {n_ids} answers with at least one code", err=True)


@codebook_app.command("check")
def check_command(
    paths: list[Path] = typer.Argument(..., help="Codebook YAML files or folders."),
    require_meaning: bool = typer.Option(
        False, "--require-meaning",
        help="Also fail when a code lacks a definition, use/not-use rule or 4 examples.",
    ),
    warehouse: Path = typer.Option(
        None, "--warehouse", exists=True, dir_okay=False,
        help="Also warn about codes that always fire together on the same answers, read "
        "from this warehouse's coding.final_codes (the counted codes, per question).",
    ),
    min_answers: int = typer.Option(
        CO_FIRING_MIN_ANSWERS, "--min-answers", min=1,
        help="With --warehouse: only codes applied to at least this many answers.",
    ),
) -> None:
    """Validate codebooks and print a summary; exit 1 with 'file:line: problem' if invalid.

    Codes without meaning (definition, when to use, when not to, examples) are listed as
    warnings: the keyword coder does not need them, the suggester does. With --warehouse,
    codes of these codebooks that were applied to exactly the same answers of a question are
    listed as warnings too (the report shows such codes once, with their aliases).
    """
    try:
        books = load_codebooks(paths)
    except CodebookError as e:
        fail(str(e))
    for book in books:
        n_pat = sum(len(c.patterns) for c in book.codes)
        n_exc = sum(len(c.exclusions) for c in book.codes)
        typer.echo(
            f"{book.path}: framework {book.framework} ({book.label}), version {book.version}"
        )
        typer.echo(
            f"  {len(book.dimensions)} dimensions, {len(book.codes)} codes, "
            f"{n_pat} patterns, {n_exc} exclusions"
        )
        for dim in book.dimensions:
            codes = [c for c in book.codes if c.dimension == dim]
            label = book.dimension_labels.get(dim, dim)
            typer.echo(f"  - {dim} ({label}): {len(codes)} codes, "
                       f"{sum(len(c.patterns) for c in codes)} patterns, "
                       f"{sum(len(c.examples) for c in codes)} examples")  # fmt: skip
    gaps = meaning_gaps(books)
    for gap in gaps:
        typer.echo(f"warning: {gap}", err=True)
    if warehouse is not None:
        for line in co_firing_warnings(books, warehouse, min_answers):
            typer.echo(f"warning: {line}", err=True)
    if gaps and require_meaning:
        fail(f"{len(gaps)} codes lack meaning (see the warnings above)")
    typer.echo("OK")


def co_firing_warnings(books: list, warehouse: Path, min_answers: int) -> list[str]:
    """One line per group of codes (of `books`) that fire on exactly the same answers."""
    from pipeline.core.marts.marts import counted_codes
    from pipeline.core.warehouse import connection as wh

    with wh.connect(warehouse, read_only=True, wait_seconds=10) as con:
        final = wh.read_frame(con, "coding.final_codes")
    known = {(b.framework, c.code_id) for b in books for c in b.codes}
    apps = counted_codes(final) if len(final) else final
    apps = apps[[(f, c) in known for f, c in zip(apps["framework"], apps["code_id"],
                                                  strict=True)]]
    groups = co_firing_groups(apps, min_answers)
    return [f"codes fire together on the same {int(g['n_answers'].iloc[0])} answers to "
            f"{question!r}: {', '.join(g['framework'] + '/' + g['code_id'])} (one code to a "
            "reader: merge them, or tell them apart with exclusions)"
            for (question, _), g in groups.groupby(["question_id", "group"], sort=True)]
