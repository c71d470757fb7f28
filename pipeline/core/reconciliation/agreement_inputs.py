"""The inputs of the agreement table as integer arrays, shared by every coder pair.

In: applications, coder units and the codebook's codes (frames). Out: `Prepared` (answers and
codes by position, each coder's coded answers as a mask, each application's answer, code and
coder), after checking the inputs (`AgreementError` for missing columns, unknown codes,
applications on answers a coder did not code). Also the helpers keyword_quality shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY, require_columns
from pipeline.core.reconciliation.coefficients import AgreementError


def require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """AgreementError unless `df` has `columns`."""
    require_columns(df, columns, name, AgreementError)


def code_book(codes: pd.DataFrame) -> pd.DataFrame:
    """The distinct (framework, dimension, code_id) of the codebook; position = code_idx."""
    require(codes, CODE_KEY, "codes")
    book = codes[CODE_KEY].drop_duplicates().reset_index(drop=True)
    if book.empty:
        raise AgreementError("codes (the codebook) is empty")
    return book  # row position = code_idx


def code_index(apps: pd.DataFrame, book: pd.DataFrame, name: str) -> np.ndarray:
    """code_idx of each application; a (framework, dimension, code_id) not in the codebook is
    an error."""
    book_index = pd.MultiIndex.from_frame(book[CODE_KEY])
    idx = book_index.get_indexer(pd.MultiIndex.from_frame(apps[CODE_KEY]))
    if (idx < 0).any():
        unknown = apps.loc[idx < 0, CODE_KEY]
        examples = unknown.drop_duplicates().head(3).to_dict("records")
        raise AgreementError(
            f"{name}: {len(unknown)} application(s) use codes not in the codebook, e.g. {examples}"
        )
    return idx.astype(np.int64)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique for int keys (sort-based; numpy 2.3's hash-based unique is slower here)."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


@dataclass(frozen=True)
class Prepared:
    """Inputs of `agreement_table` as integer arrays shared by all coder pairs."""

    book: pd.DataFrame  # framework, dimension, code_id; row position = code_idx
    answers: pd.DataFrame  # answer_id, question_id, school_year; row position = answer_idx
    coded: dict[str, np.ndarray]  # coder -> boolean mask over answers they coded
    no_answers: np.ndarray  # all-False mask, for a coder absent from units
    app_answer: np.ndarray  # answer_idx of each application
    app_code: np.ndarray  # code_idx of each application
    app_coder: np.ndarray  # coder of each application


def prepare(applications: pd.DataFrame, units: pd.DataFrame, codes: pd.DataFrame) -> Prepared:
    """The checked inputs of `agreement_table` as integer arrays."""
    require(applications, ["answer_id", "coder", *CODE_KEY], "applications")
    require(units, ["answer_id", "coder", "question_id", "school_year"], "units")
    book = code_book(codes)
    answers = units[["answer_id", "question_id", "school_year"]].drop_duplicates()
    conflicting = answers["answer_id"][answers["answer_id"].duplicated()]
    if len(conflicting):
        raise AgreementError(
            f"units gives different question_id/school_year for answer {conflicting.iloc[0]!r}"
        )
    answers = answers.reset_index(drop=True)
    answer_pos = pd.Index(answers["answer_id"])
    unit_answer = answer_pos.get_indexer(units["answer_id"])
    no_answers = np.zeros(len(answers), dtype=bool)
    coded = {}
    for coder, idx in pd.Series(unit_answer).groupby(units["coder"].to_numpy()):
        coded[coder] = no_answers.copy()
        coded[coder][idx.to_numpy()] = True

    app_code = code_index(applications, book, "applications")
    app_answer = answer_pos.get_indexer(applications["answer_id"])
    app_coder = applications["coder"].to_numpy()
    orphan = app_answer < 0
    for coder in pd.unique(app_coder):
        mine = app_coder == coder
        mask = coded.get(coder, no_answers)
        orphan[mine] |= ~mask[np.where(app_answer[mine] >= 0, app_answer[mine], 0)]
    if orphan.any():
        first = applications[orphan].iloc[0]
        raise AgreementError(
            f"{int(orphan.sum())} application(s) on answers the coder did not code according "
            f"to units, e.g. coder {first['coder']!r} on answer {first['answer_id']!r}"
        )
    return Prepared(book, answers, coded, no_answers, app_answer, app_code, app_coder)
