"""`survey-pipeline agreement RATINGS.csv [--json]`: agreement of coders on nominal ratings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from pipeline.cli import app
from pipeline.core.reconciliation.agreement import (
    AgreementError,
    cohen_kappa,
    krippendorff_alpha_nominal,
    percent_agreement,
)

REQUIRED_COLUMNS = ("unit", "coder", "value")
JSON_KEYS = (
    "n_units",
    "n_coders",
    "percent_agreement",
    "krippendorff_alpha_nominal",
    "cohen_kappa",
)


class _InputError(Exception):
    """The ratings file cannot be read as unit, coder, value rows."""


def read_ratings(path: Path) -> pd.DataFrame:
    """Units x coders matrix (None = missing) from a long CSV with columns unit, coder, value.

    Every cell is read as text; an empty (or all-blank) value is missing, anything else
    (including "NA") is a value. A coder rating the same unit twice is an error.
    """
    if not path.is_file():
        raise _InputError(f"ratings file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _InputError(f"cannot read {path} as CSV: {exc}") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise _InputError(
            f"{path} is missing column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)}; found {', '.join(raw.columns) or 'none'})"
        )
    long = raw[list(REQUIRED_COLUMNS)].apply(lambda col: col.str.strip())
    for col in ("unit", "coder"):
        blank = long.index[long[col] == ""]
        if len(blank):
            raise _InputError(f"{path}: empty {col} on line {blank[0] + 2}")
    duplicated = long[long.duplicated(["unit", "coder"])]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise _InputError(
            f"{path}: coder {first['coder']!r} rated unit {first['unit']!r} more than once"
        )
    long["value"] = long["value"].where(long["value"] != "", None)
    matrix = long.pivot(index="unit", columns="coder", values="value")
    return matrix.astype(object).where(matrix.notna(), None)


def summarise(matrix: pd.DataFrame) -> dict[str, object]:
    """The figures the command prints; raises AgreementError when they are undefined."""
    n_coders = matrix.shape[1]
    values_per_unit = matrix.notna().sum(axis=1)
    return {
        "n_units": int(matrix.shape[0]),
        "n_coders": int(n_coders),
        "n_pairable_units": int((values_per_unit >= 2).sum()),
        "percent_agreement": percent_agreement(matrix),
        "krippendorff_alpha_nominal": krippendorff_alpha_nominal(matrix),
        "cohen_kappa": cohen_kappa(matrix) if n_coders == 2 else None,
    }


@app.command("agreement")
def agreement(
    ratings: Path = typer.Argument(
        ...,
        metavar="RATINGS.csv",
        help="CSV with columns unit, coder, value (nominal; an empty value is missing).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Percent agreement, Krippendorff's alpha (nominal) and, for two coders, Cohen's kappa."""
    try:
        figures = summarise(read_ratings(ratings))
    except (_InputError, AgreementError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None

    if as_json:
        typer.echo(json.dumps({k: figures[k] for k in JSON_KEYS}))
        return
    kappa = figures["cohen_kappa"]
    lines = [
        f"units:                  {figures['n_units']}"
        f" ({figures['n_pairable_units']} with values from 2+ coders)",
        f"coders:                 {figures['n_coders']}",
        f"percent agreement:      {figures['percent_agreement']:.4f}",
        f"Krippendorff's alpha:   {figures['krippendorff_alpha_nominal']:.4f} (nominal)",
        "Cohen's kappa:          "
        + (f"{kappa:.4f}" if kappa is not None else "n/a (needs exactly two coders)"),
    ]
    typer.echo("\n".join(lines))
