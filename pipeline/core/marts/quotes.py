"""marts.exemplar_quotes: up to N supporting quotes per code and question, by a deterministic rule.

The rule (docs/report.md):
1. Candidates: answers with a counted final code (agreed, adjudicated, or a machine stand-in:
   trained_suggestion, zero_shot_suggestion, keyword) for the code and question, not
   non-substantive, whose redacted text is min_chars..max_chars long (stripped).
   The quote is always the whole redacted answer text, never cut. Repeated texts count once.
2. Preference, in this order: provenance (agreed by both coders, then adjudicated, then the
   machine stand-ins for a year without human coding: the trained suggester, the zero-shot
   suggester, the keyword coder; a quote's reason names its provenance, and the suggester's
   model for suggested codes);
   a school not yet quoted for this code; keyword evidence in the quote (a keyword-coder
   application of the code whose matched text is found at its offsets in the answer text, or
   anywhere in it if the offsets drifted); then sha256(code_id|answer_id), which makes ties
   independent of row order and of other codes.
3. Spread across years: school years take turns, oldest first; each turn takes the most
   preferred remaining candidate of that year. A year with no candidate left is skipped.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from pipeline.core.frames import require_columns
from pipeline.core.marts.marts import COUNTED, code_label, code_labels

QUOTE_COLUMNS = [
    "question_id", "framework", "dimension", "code_id", "label", "rank", "school_year",
    "session_number", "school_id", "answer_id", "quote", "n_chars", "provenance",
    "agreed", "evidence_text", "reason",
]
_PROVENANCE_RANK = {p: i for i, p in enumerate(COUNTED)}
_PROVENANCE_TEXT = {
    "agreed": "both coders applied the code independently",
    "adjudicated": "adjudicated after the coders disagreed",
    "trained_suggestion": "suggested by the trained model (stands in: no human coding this "
                          "year)",
    "zero_shot_suggestion": "suggested by the zero-shot model (stands in: no human coding "
                            "this year)",
    "keyword": "keyword coder (stands in: no human coding this year)",
}
MACHINE = ("trained_suggestion", "zero_shot_suggestion", "keyword")
KEY = ["question_id", "framework", "dimension", "code_id"]   # quotes are chosen per key
_PICK_COLUMNS = {*QUOTE_COLUMNS, "tier", "_no_evidence", "_hash", "_normq", "decided_by"}


def _stable_hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).hexdigest()


def _norm(text: str) -> str:
    """Whitespace runs as one space, stripped, casefolded (str.split's whitespace is re's \\s)."""
    return " ".join(text.split()).casefold()


def verified_evidence(evidence: object, text: str) -> str | None:
    """The first matched text of an evidence JSON list that is really in `text`, else None."""
    if not isinstance(evidence, str) or not evidence.strip():
        return None
    try:
        items = json.loads(evidence)
    except ValueError:
        return None
    folded = text.casefold()
    for item in items if isinstance(items, list) else []:
        matched = str(item.get("matched_text") or "")
        if not matched:
            continue
        start, end = item.get("start"), item.get("end")
        if isinstance(start, int) and isinstance(end, int):
            if folded[start:end] == matched.casefold():
                return matched
        if matched.casefold() in folded:
            return matched
    return None


def _candidates(final_codes, answers, applications, min_chars, max_chars,
                keyword_coder) -> pd.DataFrame:
    require_columns(final_codes, ["answer_id", "question_id", "framework", "dimension", "code_id",
                           "provenance"], "final_codes")
    require_columns(answers, ["answer_id", "school_year", "session_number", "school_id",
                       "answer_text", "non_substantive"], "answers")
    fc = final_codes[final_codes["provenance"].isin(COUNTED)].copy()
    fc["_p"] = fc["provenance"].map(_PROVENANCE_RANK)
    fc = fc.sort_values("_p").drop_duplicates(["answer_id", "framework", "dimension", "code_id"])
    text = answers[["answer_id", "school_year", "session_number", "school_id", "answer_text",
                    "non_substantive"]].drop_duplicates("answer_id")
    cand = fc.drop(columns=["school_year"], errors="ignore").merge(text, on="answer_id")
    cand = cand[~cand["non_substantive"].astype(bool) & cand["answer_text"].notna()].copy()
    cand["quote"] = cand["answer_text"].astype(str).str.strip()
    cand["n_chars"] = cand["quote"].str.len()
    cand = cand[cand["n_chars"].between(min_chars, max_chars)]
    kw = applications
    if kw is not None and len(kw):
        require_columns(kw, ["answer_id", "coder", "framework", "dimension", "code_id", "evidence"],
                 "applications")
        kw = kw[kw["coder"] == keyword_coder][["answer_id", "framework", "dimension", "code_id",
                                           "evidence"]]
        cand = cand.merge(kw, on=["answer_id", "framework", "dimension", "code_id"], how="left")
    else:
        cand["evidence"] = None
    cand["evidence_text"] = [verified_evidence(e, t) for e, t in zip(cand["evidence"],
                                                                      cand["quote"], strict=True)]
    cand = cand.sort_values("evidence_text", na_position="last").drop_duplicates(
        ["answer_id", "framework", "dimension", "code_id"])
    cand["tier"] = cand["provenance"].map(_PROVENANCE_RANK)
    cand["_no_evidence"] = cand["evidence_text"].isna()
    cand["agreed"] = cand["provenance"] == "agreed"
    cand["_hash"] = [_stable_hash(c, a) for c, a in zip(cand["code_id"], cand["answer_id"],
                                                        strict=True)]
    return cand


def _contenders(cand: pd.DataFrame, key: list[str], per_code: int) -> pd.DataFrame:
    """The candidates `_pick` can ever choose (the same picks, far fewer rows at scale).

    Within one code, year and school every candidate shares the "school already quoted" flag,
    so they are chosen in (tier, evidence, hash) order. A repeat of a better candidate's text
    there can never be chosen (the better one comes first and then excludes the text); and
    beyond the 2 x per_code best distinct texts of a school and year none can be reached
    (per_code picks and per_code excluded texts at most come before it)."""
    codes, quotes = pd.factorize(cand["quote"])   # a text's repeats normalised once
    cand = cand.assign(_normq=np.array([_norm(q) for q in quotes], dtype=object)[codes])
    cand = cand.sort_values(["tier", "_no_evidence", "_hash"], kind="mergesort")
    where = [*key, "school_year", "school_id"]
    cand = cand.drop_duplicates([*where, "_normq"])
    return cand[cand.groupby(where, dropna=False, sort=False).cumcount() < 2 * per_code]


def _reachable(cand: pd.DataFrame, per_code: int) -> pd.DataFrame:
    """The contenders `_pick` can ever choose whatever the other years hold: `_pick` needs
    only these of each code and year, so a year reduced once is kept (the same picks, tens
    of rows per code and year instead of 2 x per_code per school).

    In a year's turn `_pick` takes, in the lowest tier with a fresh text, the first candidate
    in (evidence, hash) order whose school is not yet quoted, else the first. Fewer than
    per_code picks come before it, so at most per_code - 1 schools are quoted and per_code - 1
    texts taken. Take, in that order, each candidate whose school and text differ from those
    of every candidate taken so far: once 2 x per_code - 1 are taken, one of them is always
    fresh with its school not yet quoted, so no later candidate of that tier, and none of a
    later tier, can be chosen."""
    if per_code <= 0 or cand.empty:
        return cand.iloc[:0]
    limit = 2 * per_code - 1
    group = cand.groupby([*KEY, "school_year"], dropna=False, sort=False).ngroup()
    cand = cand.assign(_group=group.to_numpy()).sort_values(
        ["_group", "tier", "_no_evidence", "_hash"], kind="mergesort")
    keep = np.zeros(len(cand), dtype=bool)
    last_group = last_tier = None
    full = False
    schools: set = set()
    texts: set = set()
    for i, (g, tier, school, text) in enumerate(zip(
            cand["_group"].tolist(), cand["tier"].tolist(), cand["school_id"].tolist(),
            cand["_normq"].tolist(), strict=True)):
        if g != last_group:
            last_group, last_tier, full = g, None, False
        if full:
            continue
        if tier != last_tier:
            last_tier, schools, texts = tier, set(), set()
        keep[i] = True   # fewer than `limit` distinct candidates before it in its tier
        school = _school({"school_id": school})
        if school not in schools and text not in texts:
            schools.add(school)
            texts.add(text)
            full = len(schools) == limit
    return cand[keep].drop(columns="_group")


def _pick(group: pd.DataFrame, per_code: int) -> list[dict]:
    """Up to `per_code` candidates of one (question, code), the years taking turns: in each
    turn the year's best fresh text (tier, a school not yet quoted, evidence, hash). Plain
    Python over the group's rows (a few hundred at most after `_contenders`): the pandas
    version filtered and sorted the frame for every pick, 0.15 s per code."""
    remaining = group.sort_values(["tier", "_no_evidence", "_hash"])
    remaining = remaining.assign(_year=remaining["school_year"].astype(str))
    years = sorted(remaining["_year"].unique())
    rows = remaining.to_dict("records")   # in (tier, evidence, hash) order; hashes differ
    left = list(range(len(rows)))
    schools: set = set()
    texts: set = set()
    picked: list[dict] = []
    turn = 0
    while len(picked) < per_code and left:
        year = years[turn % len(years)]
        turn += 1
        fresh = [i for i in left if rows[i]["_normq"] not in texts]
        pool = [i for i in fresh if rows[i]["_year"] == year]
        if not pool:
            if not fresh:
                break
            continue
        best = min(pool, key=lambda i: (rows[i]["tier"], _school(rows[i]) in schools,
                                        rows[i]["_no_evidence"], rows[i]["_hash"]))
        row = dict(rows[best])
        new_school = _school(row) not in schools
        row["reason"] = _reason(row, new_school, (turn - 1) // len(years))
        picked.append(row)
        schools.add(_school(row))
        texts.add(row["_normq"])
        left.remove(best)
    return picked


_NONE, _NAN = object(), object()


def _school(row: dict):
    """The row's school as a set key, missing values compared as pandas' isin does (every
    NaN the same, None apart)."""
    value = row["school_id"]
    if value is None:
        return _NONE
    if isinstance(value, float) and value != value:
        return _NAN
    return value


def _reason(row: dict, new_school: bool, round_no: int) -> str:
    ev = row.get("evidence_text")
    who = row.get("decided_by")
    provenance = _PROVENANCE_TEXT[row["provenance"]]
    if row["provenance"] in MACHINE[:2] and isinstance(who, str) and who:
        provenance += f", {who}"
    parts = [
        provenance,
        f'keyword evidence "{ev}" in the quote' if ev else "coded by meaning (no keyword in it)",
        f"{row['school_year']} turn {round_no + 1} of the year rotation",
        "school not yet quoted for this code" if new_school else "school already quoted "
        "(no better-provenance quote from another school in that year)",
        f"{row['n_chars']} characters",
    ]
    return "; ".join(parts)


def exemplar_quotes(
    final_codes: pd.DataFrame,
    answers: pd.DataFrame,
    applications: pd.DataFrame | None = None,
    codes: pd.DataFrame | None = None,
    *,
    per_code: int = 5,
    min_chars: int = 40,
    max_chars: int = 300,
    keyword_coder: str = "keyword",
) -> pd.DataFrame:
    """marts.exemplar_quotes: up to `per_code` quotes per (question, code) by the module's rule,
    ranked 1..n, each with the reason it was chosen. `applications` is coding.code_applications
    (only the rows of `keyword_coder` and their evidence are used)."""
    return quotes_from([contenders(final_codes, answers, applications, per_code=per_code,
                                   min_chars=min_chars, max_chars=max_chars,
                                   keyword_coder=keyword_coder)], codes, per_code=per_code)


def contenders(
    final_codes: pd.DataFrame,
    answers: pd.DataFrame,
    applications: pd.DataFrame | None = None,
    *,
    per_code: int = 5,
    min_chars: int = 40,
    max_chars: int = 300,
    keyword_coder: str = "keyword",
) -> pd.DataFrame:
    """The candidates among these answers that the rule can ever choose (`_contenders`), with
    the columns `_pick` reads or keeps. Made per session and joined, they give the same quotes
    as made over every answer at once (`quotes_from`): within a code, year and school the
    candidates are ranked by (tier, evidence, hash) and a text repeated keeps its best place,
    so a text among the 2 x per_code best of a school's year is among the 2 x per_code best
    of its own session."""
    cand = _candidates(final_codes, answers, applications, min_chars, max_chars, keyword_coder)
    cand = _contenders(cand, KEY, per_code)
    return cand[[c for c in cand.columns if c in _PICK_COLUMNS]]


def year_contenders(parts: list[pd.DataFrame], *, per_code: int = 5) -> pd.DataFrame:
    """The contenders of parts of the answers (sessions, years) joined and reduced to those
    `_pick` can ever choose (`_contenders`, then `_reachable` per code and year). Both keep
    each code and year apart, so a year's result made of its sessions' contenders can be kept
    and joined with the other years' (quotes_sessions.kept_quotes)."""
    if not parts:
        return pd.DataFrame(columns=sorted(_PICK_COLUMNS))
    cand = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if len(parts) > 1:
        cand = _contenders(cand, KEY, per_code)
    return _reachable(cand, per_code).reset_index(drop=True)


def quotes_from(parts: list[pd.DataFrame], codes: pd.DataFrame | None = None, *,
                per_code: int = 5) -> pd.DataFrame:
    """marts.exemplar_quotes from the `contenders` of parts of the answers (sessions)."""
    labels = code_labels(codes)
    rows: list[dict] = []
    cand = year_contenders(parts, per_code=per_code)
    for _, group in cand.groupby(KEY, sort=True):
        for rank, row in enumerate(_pick(group, per_code), start=1):
            row["rank"] = rank
            row["label"] = code_label(row["code_id"], labels)
            rows.append(row)
    out = pd.DataFrame(rows, columns=QUOTE_COLUMNS)
    out["session_number"] = out["session_number"].astype("Int64")
    out["rank"] = out["rank"].astype("int64")
    out["n_chars"] = out["n_chars"].astype("int64")
    out["agreed"] = out["agreed"].astype(bool)
    return out.reset_index(drop=True)
