"""pandera models: the column contract of every stage, in one place.

Each model is run by a blocking asset check (pipeline/defs/checks.py), whose failure
metadata names the failing rule and the rows it failed on.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.core.exports import READER_KINDS
from pipeline.core.ids import QUESTION_IDS
from pipeline.core.staging import ROLE_VALUES
from pipeline.core.suggest.suggester import SOURCES as SUGGESTION_SOURCES

SCHOOL_YEAR = r"^\d{4}-\d{2}$"


class RawSurveyRows(pa.DataFrameModel):
    school_year: Series[str] = pa.Field(str_matches=SCHOOL_YEAR)
    file_name: Series[str] = pa.Field(str_length={"min_value": 1})
    file_sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$")
    row_number: Series[int] = pa.Field(ge=1)
    reader: Series[str] = pa.Field(
        isin=list(READER_KINDS))
    record: Series[str] = pa.Field(str_startswith="{")

    class Config:
        strict = False
        coerce = True
        unique = ["file_name", "row_number"]


class StagingAnswers(pa.DataFrameModel):
    answer_id: Series[str] = pa.Field(unique=True, str_matches=r"^A[0-9a-f]{12}$")
    school_year: Series[str] = pa.Field(str_matches=SCHOOL_YEAR)
    session_number: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1, le=99)
    response_id: Series[str] = pa.Field(str_length={"min_value": 1})
    school_id: Series[str] = pa.Field(nullable=True, str_matches=r"^school_[0-9a-f]{8}$")
    coach_id: Series[str] = pa.Field(nullable=True, str_matches=r"^coach_[0-9a-f]{8}$")
    role: Series[str] = pa.Field(
        nullable=True,
        isin=ROLE_VALUES)
    question_id: Series[str] = pa.Field(isin=list(QUESTION_IDS))
    answer_text: Series[str] = pa.Field(str_length={"min_value": 1})
    non_substantive: Series[bool]
    n_redactions: Series[int] = pa.Field(ge=0)

    class Config:
        strict = False
        coerce = True
        unique = ["response_id", "question_id", "school_year"]


class Suggestions(pa.DataFrameModel):
    """coding.suggestions: one row per suggested (answer, code)."""

    answer_id: Series[str] = pa.Field(str_matches=r"^A[0-9a-f]{12}$")
    school_year: Series[str] = pa.Field(str_matches=SCHOOL_YEAR)
    question_id: Series[str] = pa.Field(isin=list(QUESTION_IDS))
    framework: Series[str] = pa.Field(str_length={"min_value": 1})
    dimension: Series[str] = pa.Field(str_length={"min_value": 1})
    code_id: Series[str] = pa.Field(str_matches=r"^[a-z][a-z0-9_]*$")
    probability: Series[float] = pa.Field(ge=0, le=1)
    source: Series[str] = pa.Field(isin=list(SUGGESTION_SOURCES))
    evidence_start: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    evidence_end: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    model_sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$")

    class Config:
        strict = False
        coerce = True
        unique = ["answer_id", "code_id"]


class SuggestionQuality(pa.DataFrameModel):
    """coding.suggestion_quality: suggester and keyword coder against the human final codes."""

    evaluation: Series[str] = pa.Field(isin=["stored", "school_grouped_cv"])
    level: Series[str] = pa.Field(isin=["code", "dimension", "framework"])
    n_answers: Series[int] = pa.Field(ge=0)
    tp: Series[int] = pa.Field(ge=0)
    fp: Series[int] = pa.Field(ge=0)
    fn: Series[int] = pa.Field(ge=0)
    tn: Series[int] = pa.Field(ge=0)
    precision: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    recall: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    f1: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    cohen_kappa: Series[float] = pa.Field(nullable=True, ge=-1, le=1)

    class Config:
        strict = False
        coerce = True
        unique = ["evaluation", "level", "framework", "dimension", "code_id", "question_id",
                  "school_year"]


def failure_summary(exc: pa.errors.SchemaErrors, limit: int = 20) -> dict:
    """The failing rules and a sample of failing rows, for asset-check metadata."""
    cases = exc.failure_cases
    rules = (cases.groupby(["column", "check"], dropna=False).size()
             .reset_index(name="n_failures").sort_values("n_failures", ascending=False))
    return {
        "n_failures": int(len(cases)),
        "failing_rules": rules.to_dict("records"),
        "sample": cases.head(limit)[["column", "check", "failure_case", "index"]]
        .astype(str).to_dict("records"),
    }
