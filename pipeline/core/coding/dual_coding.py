"""Glue between the coder-sheet import, the agreement statistics and reconciliation: the shapes
the warehouse stores, and the coder pairs compared."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from pipeline.core.coding.coder_sheets import coder_sheet_files, read_coder_sheets
from pipeline.core.coding.keyword import HUMAN_COLUMNS
from pipeline.core.coding.sheet_validation import sheet_codes, validate_coder_sheets
from pipeline.core.privacy.redact import Redactor
from pipeline.core.warehouse.connection import empty_frame

KEYWORD = "keyword"
ADJUDICATION_NAMES = ("adjudications.xlsx", "adjudications.csv")
QUEUE_NAMES = ("discrepancy_queue.xlsx", "discrepancy_queue.csv")


def redact_columns(frame: pd.DataFrame, redactor: Redactor, columns) -> pd.DataFrame:
    """Free text typed by coders and adjudicators (notes, reasons) can name people too. Each
    distinct text is redacted once (the redactor is a pure function of the text; notes and
    reasons repeat a lot)."""
    frame = frame.copy()
    for column in columns:
        if column in frame.columns:
            values = frame[column].tolist()
            distinct = list(dict.fromkeys(v for v in values if isinstance(v, str)))
            redacted = dict(zip(distinct, redactor.redact_all(distinct), strict=True))
            frame[column] = [redacted[v] if isinstance(v, str) else v for v in values]
    return frame


def import_sheets(sheet_dir: str | Path, answers: pd.DataFrame, codebooks,
                  redactor: Redactor):
    """Read and validate every coder sheet in `sheet_dir`; notes and quarantine texts are
    redacted (the sheets themselves are the raw record).

    Returns (applications in coding.human_applications' shape, units, quarantine, unaccounted):
    `unaccounted` lists sheet rows naming a code that became neither an application nor a
    quarantine row (always empty unless the validator has a bug: a check asserts it)."""
    files = coder_sheet_files([Path(sheet_dir)]) if Path(sheet_dir).is_dir() else []
    if not files:
        return (empty_frame("coding.human_applications"), empty_frame("coding.coder_units"),
                empty_frame("coding.sheet_quarantine"), pd.DataFrame())
    rows = read_coder_sheets(files)
    apps, units, quarantine = validate_coder_sheets(rows, answers, sheet_codes(codebooks))
    apps = redact_columns(apps, redactor, ["note"])
    quarantine = redact_columns(quarantine, redactor, ["code", "reason", "answer_id"])
    key = ["source_file", "source_sheet", "source_row", "source_column"]
    named = rows[rows["code"].fillna("").astype(str).str.strip() != ""]
    seen = pd.concat([apps[key], quarantine[key]]).astype(str).drop_duplicates()
    probe = named[key].astype(str).merge(seen, on=key, how="left", indicator=True)
    unaccounted = named[(probe["_merge"] == "left_only").to_numpy()]
    meta = answers.set_index("answer_id")[["school_year", "question_id"]]
    out = apps.join(meta, on="answer_id")
    out["coder_kind"] = "human"
    return out[HUMAN_COLUMNS], units, quarantine, unaccounted


def keyword_units(answers: pd.DataFrame) -> pd.DataFrame:
    """The keyword coder codes every substantive answer."""
    sub = answers.loc[~answers["non_substantive"].astype(bool),
                      ["answer_id", "question_id", "school_year"]].copy()
    sub["coder"] = KEYWORD
    sub["basis"] = "all substantive"
    return sub


def coder_pairs(human_coders: list[str]) -> list[tuple[str, str]]:
    """Human A vs B, then each human vs the keyword coder."""
    humans = sorted(human_coders)
    return [*combinations(humans, 2), *((h, KEYWORD) for h in humans)]


def first_existing(folder: str | Path, names: tuple[str, ...]) -> Path | None:
    return next((Path(folder) / n for n in names if (Path(folder) / n).is_file()), None)
