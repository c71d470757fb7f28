"""`survey-pipeline suggest`: codes by meaning for the answers in any CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import typer

from pipeline.cli import app, fail
from pipeline.cli.code import read_answers_csv
from pipeline.core.coding.codebook import CodebookError, load_codebooks

OUTPUT_COLUMNS = ["id", "framework", "dimension", "code", "probability", "source", "evidence"]


def _column(df: pd.DataFrame, name: str | None, path: Path, what: str) -> None:
    if name is not None and name not in df.columns:
        fail(f"{path}: no {what} column {name!r} (columns: {', '.join(map(str, df.columns))})")


def _read(path: Path, text_column: str, id_column: str | None) -> pd.DataFrame:
    try:
        df = read_answers_csv(path)
    except (ValueError, pd.errors.EmptyDataError) as e:
        fail(f"{path}: {e}" if str(path) not in str(e) else str(e))
    if df.empty:
        fail(f"{path}: no rows below the header")
    _column(df, text_column, path, "text")
    _column(df, id_column, path, "id")
    if id_column is None:
        df = df.assign(_id=[str(i) for i in range(len(df))])
    return df


@app.command("suggest")
def suggest_command(
    input_csv: Path = typer.Argument(..., help="CSV file with one answer per row.",
                                     exists=True, dir_okay=False),
    text_column: str = typer.Option(..., "--text-column", help="Column with the answer text."),
    id_column: str = typer.Option(None, "--id-column",
                                  help="Column with the answer id (default: 0-based row number)."),
    codebook: list[Path] = typer.Option(..., "--codebook",
                                        help="Codebook YAML file or folder of them; repeatable."),
    train_csv: Path = typer.Option(
        None, "--train", exists=True, dir_okay=False,
        help="Coded answers to learn from: a CSV with the text column, the id column and a "
             "code_id column (one row per code; several rows per answer).",
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Output CSV (default: stdout)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of CSV."),
) -> None:
    """Suggest codes by meaning (an offline sentence-embedding model plus the keyword coder).

    Output: one row per suggested code: id, framework, dimension, code, probability, source
    (zero_shot, or trained with --train), evidence (the sentence that carries it).
    Suggestions are not codes: a human decides (docs/suggestions.md).
    """
    from pipeline.core.reconciliation.queue import neutralise
    from pipeline.core.suggest.model import ModelError
    from pipeline.core.suggest.suggester import load_zero_shot, suggest, train
    from pipeline.core.suggest.trained import MIN_POSITIVES

    try:
        books = load_codebooks(codebook)
    except CodebookError as e:
        fail(str(e))
    if train_csv is not None and id_column is None:
        fail("--train needs --id-column: a coded answer has one row per code, joined by its id")
    df = _read(input_csv, text_column, id_column)
    id_col = id_column or "_id"
    answers = pd.DataFrame({"id": df[id_col].astype(str), "text": df[text_column]})
    repeated = answers["id"][answers["id"].duplicated()]
    if len(repeated):
        fail(f"{input_csv}: id {repeated.iloc[0]!r} appears on more than one row "
             f"(column {id_col!r}); ids must be unique")
    try:
        zs = load_zero_shot(books)
    except ModelError as e:
        fail(str(e))
    except ValueError as e:
        fail(f"{', '.join(b.path for b in books)}: {e}")
    trained = None
    if train_csv is not None:
        coded = _read(train_csv, text_column, id_column)
        _column(coded, "code_id", train_csv, "code_id")
        coded_ids = coded[id_col].astype(str)
        unknown = sorted(set(coded["code_id"]) - {c.code_id for c in zs.protos.codes} - {""})
        if unknown:
            fail(f"{train_csv}: codes not in the codebook: {', '.join(unknown[:5])}")
        train_answers = pd.DataFrame({"id": coded_ids, "text": coded[text_column]}
                                     ).drop_duplicates()
        clash = train_answers["id"][train_answers["id"].duplicated()]
        if len(clash):
            fail(f"{train_csv}: id {clash.iloc[0]!r} has different texts on different rows")
        finals = pd.DataFrame({"answer_id": coded_ids, "code_id": coded["code_id"]})
        trained = train(zs, train_answers, "id", "text", finals[finals["code_id"] != ""])
    table = suggest(zs, answers, "id", "text", trained)
    out = table.rename(columns={"code_id": "code", "evidence_text": "evidence"})[OUTPUT_COLUMNS]
    if trained is not None and not trained.models:
        typer.echo(f"warning: no code has {MIN_POSITIVES} coded answers for and against it in "
                   f"{train_csv}: zero-shot suggestions only", err=True)
    if as_json:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n"
                       for r in out.to_dict(orient="records"))
        (output.write_text(text, encoding="utf-8") if output else sys.stdout.write(text))
    else:  # a spreadsheet must not run an answer that starts with = + - @ as a formula
        safe = out.assign(id=out["id"].map(neutralise), evidence=out["evidence"].map(neutralise))
        safe.to_csv(sys.stdout if output is None else output, index=False)
    n = out["id"].nunique()
    typer.echo(f"{len(out)} suggestions for {n} of {len(answers)} answers "
               f"(model {zs.model.files.model_id}, sha256 {zs.model.sha256[:12]})", err=True)
