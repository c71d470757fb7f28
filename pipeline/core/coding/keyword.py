"""The keyword-coding stage on staged answers: applications in the warehouse's shape, and the
validations its checks run."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.core.coding.matcher import KeywordCoder, coder_for

# coding.keyword_applications (written by the keyword coder) and coding.human_applications
# (written from the coders' sheets, pipeline/core/coding/dual_coding.py); the view
# coding.code_applications unions them with APPLICATION_COLUMNS (the catalog's order)
KEYWORD_COLUMNS = [
    "answer_id", "school_year", "question_id", "coder", "coder_kind", "framework",
    "dimension", "code_id", "codebook_version", "n_evidence", "evidence",
]
HUMAN_COLUMNS = [
    "answer_id", "school_year", "question_id", "coder", "coder_kind", "framework",
    "dimension", "code_id", "note", "source_file", "source_row",
]
APPLICATION_COLUMNS = [*KEYWORD_COLUMNS, *(c for c in HUMAN_COLUMNS if c not in KEYWORD_COLUMNS)]


def keyword_applications(answers: pd.DataFrame, codebooks, coder: KeywordCoder | None = None
                         ) -> pd.DataFrame:
    """Code every substantive answer; one row per (answer, code) with its evidence."""
    coder = coder or coder_for(codebooks)
    substantive = answers.loc[~answers["non_substantive"].astype(bool),
                              ["answer_id", "school_year", "question_id", "answer_text"]]
    coded = coder.code_frame(substantive, "answer_id", "answer_text")
    coded = coded.rename(columns={"id": "answer_id"}).merge(
        substantive[["answer_id", "school_year", "question_id"]], on="answer_id")
    coded["coder"] = "keyword"
    coded["coder_kind"] = "keyword"
    return coded[KEYWORD_COLUMNS].reset_index(drop=True)


def unknown_codes(apps: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    """Applications whose (framework, dimension, code_id) is not in the codebook table."""
    keys = ["framework", "dimension", "code_id"]
    merged = apps[keys + ["answer_id"]].merge(codes[keys].drop_duplicates(), on=keys, how="left",
                                             indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")


def span_mismatches(apps: pd.DataFrame, answers: pd.DataFrame) -> list[dict]:
    """Evidence whose span does not cut exactly the recorded matched text from the answer."""
    text_of = dict(zip(answers["answer_id"], answers["answer_text"], strict=True))
    bad = []
    for answer_id, code_id, evidence in zip(apps["answer_id"], apps["code_id"], apps["evidence"],
                                            strict=True):
        text = text_of.get(answer_id)
        for ev in json.loads(evidence or "[]"):
            if text is None or text[ev["start"]:ev["end"]] != ev["matched_text"]:
                bad.append({"answer_id": answer_id, "code_id": code_id, **ev})
    return bad
