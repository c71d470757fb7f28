"""Report inputs worked out in DuckDB instead of from every final code read into pandas
(1.5 million rows at a million answers): the rows per school year and provenance that
`marts.coding_sources_of_counts` reads, and the counted codes of only those codes that may
fire together, for `codebook.co_firing_groups`. Both give what the pandas functions give on
the whole table (tests/test_report_from_warehouse.py)."""

from __future__ import annotations

import pandas as pd

from pipeline.core.coding.codebook import CO_FIRING_MIN_ANSWERS
from pipeline.core.marts.marts import COUNTED
from pipeline.core.warehouse.connection import table_columns

FINAL = "coding.final_codes"


def provenance_counts(con) -> pd.DataFrame:
    """The final codes' rows per school year (index) and provenance (columns), zeros where
    none: `pd.crosstab(final["school_year"], final["provenance"])`."""
    if not table_columns(con, FINAL):
        return pd.crosstab(pd.Series([], name="school_year", dtype=object),
                           pd.Series([], name="provenance", dtype=object))
    rows = con.execute(f"select school_year, provenance, count(*) as n from {FINAL} "
                       "where school_year is not null and provenance is not null "
                       "group by all").df()
    counts = rows.pivot(index="school_year", columns="provenance", values="n")
    return counts.fillna(0).astype("int64")


def co_firing_candidates(con, min_answers: int = CO_FIRING_MIN_ANSWERS) -> pd.DataFrame:
    """The counted final codes (question_id, answer_id, framework, code_id; each once) of the
    codes that may be applied to exactly the same answers as another code of their question:
    at least `min_answers` answers, and the same number of answers and sum of answer-id hashes
    as another. Codes with the same answers always share both, so `co_firing_groups` of these
    rows finds every group it finds over all counted codes, and compares the sets itself."""
    if not table_columns(con, FINAL):
        return pd.DataFrame(columns=["question_id", "answer_id", "framework", "code_id"])
    counted = ", ".join("?" for _ in COUNTED)
    return con.execute(f"""
        with apps as (
            select distinct question_id, answer_id, framework, code_id from {FINAL}
            where provenance in ({counted})
        ),
        per_code as (
            select question_id, framework, code_id, count(*) as n, sum(hash(answer_id)) as h
            from apps group by all having count(*) >= ?
        ),
        shared as (
            select question_id, n, h from per_code group by all having count(*) > 1
        )
        select a.question_id, a.answer_id, a.framework, a.code_id
        from apps a
        join per_code p using (question_id, framework, code_id)
        join shared s using (question_id, n, h)
        order by a.question_id, a.framework, a.code_id, a.answer_id
    """, [*COUNTED, min_answers]).df()
