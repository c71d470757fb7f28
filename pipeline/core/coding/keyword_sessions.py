"""coding.keyword_applications for one school year, session by session
(pipeline/core/warehouse/session_rows.py): a refresh codes the answers of the sessions whose
answers changed (a new session's export) and leaves every other session's rows in the table.

The keyword coder codes each answer on its own, from the answer's text, question and year, so
a session's rows depend on its answers' INPUT_COLUMNS, the codebooks (their versions are
content hashes) and the pipeline's code, which together key the session's record. What the
evidence check found in a session's rows (span mismatches, evidence items) is kept in the
record beside them, so the check still covers every row of the year.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from pipeline.core.coding.keyword import KEYWORD_COLUMNS, keyword_applications, span_mismatches
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse import session_rows
from pipeline.core.warehouse.fingerprint import package_digest

TABLE = "coding.keyword_applications"
INPUT_COLUMNS = ["answer_id", "school_year", "question_id", "answer_text", "non_substantive"]
SAMPLE = 10   # span mismatches kept per session, for the check's metadata
MAX_FILES = 4000   # result-cache records: one per session, for years of sessions


@dataclass
class KeywordYear:
    plan: session_rows.SessionPlan
    written: int              # rows written this run (the stale sessions')
    evidence_items: int       # over the whole year
    mismatches: int           # over the whole year
    sample: list[dict]        # some of them


def code_year(con, codebooks, year: str, cache: ResultCache | None) -> KeywordYear:
    """Code the year's stale sessions into coding.keyword_applications (see the module doc)."""
    settings = (package_digest(), sorted((b.framework, b.version) for b in codebooks))
    plan = session_rows.plan(con, cache, "keyword", TABLE, year, INPUT_COLUMNS, settings)
    answers = session_rows.read_answers(con, year, plan.stale, INPUT_COLUMNS)
    # no stale session: no coder built (about a second of the sample's run)
    apps = keyword_applications(answers, codebooks) if len(answers) \
        else pd.DataFrame(columns=KEYWORD_COLUMNS)
    session_of = dict(zip(answers["answer_id"], answers["session_number"].map(
        session_rows.session_value), strict=True))
    extras = {s: {"evidence_items": 0, "mismatches": 0, "sample": []} for s in plan.stale}
    items = apps["n_evidence"].groupby(apps["answer_id"].map(session_of), dropna=False).sum()
    for session, n in items.items():
        extras[session_rows.session_value(session)]["evidence_items"] = int(n)
    bad = span_mismatches(apps, answers)
    for session, n in Counter(session_of[b["answer_id"]] for b in bad).items():
        extras[session]["mismatches"] = n
    for b in bad:
        sample = extras[session_of[b["answer_id"]]]["sample"]
        if len(sample) < SAMPLE:
            sample.append(b)
    session_rows.write(con, plan, apps, extras, cache, KEYWORD_COLUMNS)
    every = [*plan.current.values(), *extras.values()]
    return KeywordYear(plan, len(apps),
                       evidence_items=sum(int(e.get("evidence_items", 0)) for e in every),
                       mismatches=sum(int(e.get("mismatches", 0)) for e in every),
                       sample=[b for e in every for b in e.get("sample", [])][:SAMPLE])


def unknown_codes(con, year: str, codes: pd.DataFrame, table: str = TABLE) -> pd.DataFrame:
    """The year's rows of `table` (the keyword applications, or another table of codes
    applied to answers) whose (framework, dimension, code_id) is not in `codes`."""
    con.register("_codes", codes[["framework", "dimension", "code_id"]].drop_duplicates())
    try:
        return con.execute(
            f"select framework, dimension, code_id, answer_id from {table} t "
            "where school_year = ? and not exists (select 1 from _codes c where "
            "c.framework = t.framework and c.dimension is not distinct from t.dimension "
            "and c.code_id = t.code_id) order by answer_id, code_id", [year]).df()
    finally:
        con.unregister("_codes")


def year_summary(con, year: str) -> dict:
    """What the asset's metadata shows about the year's rows, from DuckDB."""
    rows, coded = con.execute(f"select count(*), count(distinct answer_id) from {TABLE} "
                              "where school_year = ?", [year]).fetchone()
    substantive, uncoded = con.execute(
        "select count(*), count(*) filter (where answer_id not in "
        f"(select answer_id from {TABLE} where school_year = ?)) from staging.answers "
        "where school_year = ? and not non_substantive", [year, year]).fetchone()
    per_code = con.execute(
        f"select framework, dimension, code_id, count(*) as answers from {TABLE} "
        "where school_year = ? group by all order by answers desc, framework, dimension, "
        "code_id", [year]).df()
    preview = con.execute(
        f"select t.answer_id, t.code_id, t.evidence, a.answer_text from {TABLE} t "
        "join staging.answers a on a.answer_id = t.answer_id where t.school_year = ? "
        "order by t.answer_id, t.code_id limit 10", [year]).df()
    return {"rows": int(rows), "answers_coded": int(coded), "substantive": int(substantive),
            "uncoded": int(uncoded), "per_code": per_code, "preview": preview}
