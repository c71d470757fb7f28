"""Discrepancies: one row per (answer, code) two human coders decided differently.

In: both coders' applications and coder units, the staged answers, the keyword coder's
applications (shown beside each discrepancy). Out: coding.discrepancies (DISCREPANCY_COLUMNS),
each with a stable `discrepancy_id`. The workflow is in docs/reconciliation.md.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY
from pipeline.core.ingest.ids import QUESTION_IDS

DISCREPANCY_COLUMNS = [
    "discrepancy_id", "answer_id", "school_year", "question_id", "framework", "dimension",
    "code_id", "answer_text", "coder_a", "decision_a", "coder_b", "decision_b",
    "keyword_applied", "keyword_evidence",
]


def discrepancy_id(answer_id: str, framework: str, code_id: str) -> str:
    """Stable id of one (answer, code): the same on every run and for either coder order."""
    raw = "\x1f".join((str(answer_id), str(framework), str(code_id)))
    return "D" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]



def keyword_frame(keyword_applications: pd.DataFrame) -> pd.DataFrame:
    """Keyword applications keyed by answer_id (matcher frames call the column 'id')."""
    kw = keyword_applications
    if "answer_id" not in kw.columns and "id" in kw.columns:
        kw = kw.rename(columns={"id": "answer_id"})
    if "evidence" not in kw.columns:
        kw = kw.assign(evidence="[]")
    return kw


def _matched_texts(evidence: object) -> str:
    items = json.loads(evidence) if isinstance(evidence, str) and evidence else []
    return " | ".join(dict.fromkeys(str(e.get("matched_text", "")) for e in items))


def discrepancies(applications: pd.DataFrame, units: pd.DataFrame, answers: pd.DataFrame,
                  keyword_applications: pd.DataFrame, coder_a: str, coder_b: str
                  ) -> pd.DataFrame:
    """One row per (answer, code) where coder_a and coder_b decided differently.

    Over the answers both coders coded, a code one applied and the other did not. A code
    applied on an answer only one of them coded is also listed (decision of the other coder:
    'not coded'), so nothing a single coder decided is taken as agreed. decision_a/decision_b
    are 'applied', 'not applied' or 'not coded'. Columns: DISCREPANCY_COLUMNS.
    """
    if coder_a == coder_b:
        raise ValueError(f"discrepancies compare two coders, got {coder_a!r} twice")
    keys = ["answer_id", *CODE_KEY]
    apps = applications.loc[applications["coder"].isin([coder_a, coder_b]),
                            [*keys, "coder"]].drop_duplicates()
    # a code exactly one of the two applied (vectorised: one row per disputed (answer, code))
    single = apps[apps.groupby(keys, sort=False)["coder"].transform("size") == 1]
    info = answers[["answer_id", "school_year", "question_id", "answer_text"]] \
        .drop_duplicates("answer_id")
    out = single.merge(info, on="answer_id", how="left", indicator=True)
    if (out["_merge"] == "left_only").any():
        missing = out.loc[out["_merge"] == "left_only", "answer_id"].iloc[0]
        raise KeyError(f"answer {missing!r} of a coder's application is not in the answers")

    def decision(coder: str) -> pd.Series:
        coded = out["answer_id"].isin(units.loc[units["coder"] == coder, "answer_id"])
        applied = out["coder"] == coder
        return pd.Series(np.where(applied, "applied", np.where(coded, "not applied",
                                                               "not coded")),
                         index=out.index, dtype=object)

    kw = keyword_frame(keyword_applications)[["answer_id", "framework", "code_id", "evidence"]]
    kw = kw.drop_duplicates(["answer_id", "framework", "code_id"], keep="last")
    out = out.drop(columns="_merge").merge(kw, on=["answer_id", "framework", "code_id"],
                                           how="left", indicator=True)
    applied_kw = (out["_merge"] == "both").to_numpy()
    out = out.assign(
        discrepancy_id=[discrepancy_id(a, f, c) for a, f, c in
                        zip(out["answer_id"], out["framework"], out["code_id"], strict=True)],
        coder_a=coder_a, decision_a=decision(coder_a),
        coder_b=coder_b, decision_b=decision(coder_b),
        keyword_applied=applied_kw,
        keyword_evidence=[_matched_texts(e) if hit else "" for e, hit in
                          zip(out["evidence"], applied_kw, strict=True)],
    )
    out = out.reindex(columns=DISCREPANCY_COLUMNS).astype(object)
    out["keyword_applied"] = out["keyword_applied"].astype(bool)
    return in_answer_order(out)


def in_answer_order(frame: pd.DataFrame) -> pd.DataFrame:
    """School year, then question ('worked' before 'improve'), answer, code."""
    rank = {q: i for i, q in enumerate(QUESTION_IDS)}
    return frame.sort_values(
        ["school_year", "question_id", "answer_id", *CODE_KEY], ignore_index=True,
        key=lambda col: col.map(rank) if col.name == "question_id" else col)
