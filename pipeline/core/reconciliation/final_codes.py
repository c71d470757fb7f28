"""Final codes: agreed + adjudicated codes, the rest 'unresolved', and a machine stand-in.

In: human applications and coder units, adjudications, discrepancies, the stand-in codes
(`suggestion_standin`, `keyword_standin`, `standin_by_year`) and the staged answers. Out:
coding.final_codes (FINAL_COLUMNS), each row saying who decided (`provenance`, `decided_by`),
and `reconciliation_summary`'s counts. The rules are in docs/reconciliation.md.
"""

from __future__ import annotations

import pandas as pd

from pipeline.core.frames import CODE_KEY
from pipeline.core.reconciliation.discrepancies import in_answer_order, keyword_frame
from pipeline.core.reconciliation.queue import APPLY, DO_NOT_APPLY

FINAL_COLUMNS = [
    "answer_id", "school_year", "question_id", "framework", "dimension", "code_id",
    "provenance", "decided_by", "discrepancy_id",
]
PROVENANCES = ("agreed", "adjudicated", "unresolved", "trained_suggestion",
               "zero_shot_suggestion", "keyword")
# provenance of a stand-in row, by coding.suggestions.source
SUGGESTION_PROVENANCE = {"trained": "trained_suggestion", "zero_shot": "zero_shot_suggestion"}
STANDIN_COLUMNS = ["answer_id", "framework", "dimension", "code_id", "provenance", "decided_by"]
KEYWORD_CODER = "keyword coder"
SUGGESTER = "suggester"


def final_codes(applications: pd.DataFrame, units: pd.DataFrame, adjudications: pd.DataFrame,
                discrepancies: pd.DataFrame, standin: pd.DataFrame,
                answers: pd.DataFrame, coders: list[str] | None = None) -> pd.DataFrame:
    """The reconciled codes, one row per (answer, code), with provenance and who decided.

    - agreed: both human coders coded the answer and applied the code (decided_by 'a+b');
    - adjudicated: a discrepancy with an accepted 'apply' (decided_by = the adjudicator); an
      accepted 'do not apply' gives no row;
    - unresolved: a discrepancy with no accepted decision (decided_by empty) — never agreed;
    - in school years where nobody coded by hand (no row of `units` in that year), the rows of
      `standin` (columns STANDIN_COLUMNS), with their own provenance and decided_by: from
      `suggestion_standin` ('trained_suggestion' / 'zero_shot_suggestion', decided_by
      'suggester <model sha256 prefix>') or `keyword_standin` ('keyword', decided_by
      'keyword coder'). Stand-in rows of human-coded years are ignored.
    The two human coders are those named in `discrepancies` or, when it is empty, the coders in
    `units` (there must then be exactly two, or none), unless `coders` names them (units
    given for some answers only may hold one). Columns: FINAL_COLUMNS.
    """
    coders = tuple(coders) if coders is not None else _human_coders(units, discrepancies)
    parts = []
    if coders:
        a, b = coders
        both = set(units.loc[units["coder"] == a, "answer_id"]) & set(
            units.loc[units["coder"] == b, "answer_id"])
        apps = applications[applications["answer_id"].isin(both)]
        keys = ["answer_id", *CODE_KEY]
        agreed = (apps[apps["coder"] == a][keys].drop_duplicates()
                  .merge(apps[apps["coder"] == b][keys].drop_duplicates(), on=keys))
        parts.append(agreed.assign(provenance="agreed", decided_by=f"{a}+{b}",
                                   discrepancy_id=None))
        disputed = set(zip(discrepancies["answer_id"], discrepancies["code_id"], strict=True))
        clash = [k for k in zip(agreed["answer_id"], agreed["code_id"], strict=True)
                 if k in disputed]
        if clash:
            raise ValueError(f"discrepancies are out of date: {len(clash)} agreed codes are "
                             f"also listed as discrepancies (e.g. {clash[0]})")
    parts.append(_decided(discrepancies, adjudications))
    parts.append(_standin_years(units, standin, answers))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=FINAL_COLUMNS)
    info = answers.set_index("answer_id")[["school_year", "question_id"]]
    out = out.drop(columns=["school_year", "question_id"], errors="ignore").join(
        info, on="answer_id")
    out = out.reindex(columns=FINAL_COLUMNS).astype(object).where(lambda f: f.notna(), None)
    return in_answer_order(out)


def keyword_standin(keyword_applications: pd.DataFrame) -> pd.DataFrame:
    """The keyword coder's codes as a stand-in for `final_codes`: provenance 'keyword',
    decided_by 'keyword coder'. Columns: STANDIN_COLUMNS."""
    kw = keyword_frame(keyword_applications)
    return (kw[["answer_id", *CODE_KEY]].drop_duplicates()
            .assign(provenance="keyword", decided_by=KEYWORD_CODER)
            .reindex(columns=STANDIN_COLUMNS).reset_index(drop=True))


def suggestion_standin(suggestions: pd.DataFrame) -> pd.DataFrame:
    """coding.suggestions rows as a stand-in for `final_codes`: provenance 'trained_suggestion'
    or 'zero_shot_suggestion' (from `source`), decided_by 'suggester <model_sha256[:12]>'. One
    row per (answer, code): a code suggested twice keeps its trained row (then the higher
    probability). Columns: STANDIN_COLUMNS."""
    if suggestions is None or suggestions.empty:
        return pd.DataFrame(columns=STANDIN_COLUMNS)
    unknown = sorted(set(suggestions["source"].dropna()) - set(SUGGESTION_PROVENANCE))
    if unknown or suggestions["source"].isna().any():
        raise ValueError(f"coding.suggestions: unknown source(s) {unknown or [None]}; "
                         f"expected {sorted(SUGGESTION_PROVENANCE)}")
    s = suggestions.assign(
        provenance=suggestions["source"].map(SUGGESTION_PROVENANCE),
        decided_by=SUGGESTER + " " + suggestions["model_sha256"].fillna("").astype(str).str[:12],
        _trained=(suggestions["source"] == "trained").astype(int),
        _p=pd.to_numeric(suggestions.get("probability", 0.0), errors="coerce").fillna(0.0))
    s = s.sort_values(["_trained", "_p"], ascending=False, kind="mergesort")
    s = s.drop_duplicates(["answer_id", *CODE_KEY])
    return s.reindex(columns=STANDIN_COLUMNS).reset_index(drop=True)


def _human_coders(units: pd.DataFrame, discrepancies: pd.DataFrame) -> tuple[str, str] | None:
    if len(discrepancies):
        pairs = set(zip(discrepancies["coder_a"], discrepancies["coder_b"], strict=True))
        if len(pairs) != 1:
            raise ValueError(f"discrepancies name several coder pairs: {sorted(pairs)}")
        return pairs.pop()
    coders = sorted(units["coder"].unique())
    if not coders:
        return None
    if len(coders) != 2:
        raise ValueError(f"final codes need exactly two human coders, found {coders}")
    return coders[0], coders[1]


def _decided(discrepancies: pd.DataFrame, adjudications: pd.DataFrame) -> pd.DataFrame:
    ok = adjudications[adjudications["accepted"].astype(bool)] if len(adjudications) else \
        adjudications
    columns = ["answer_id", *CODE_KEY, "provenance", "decided_by", "discrepancy_id"]
    if discrepancies.empty:
        return pd.DataFrame(columns=columns)
    # the last accepted row of an id decides (there is one: conflicting rows are not accepted)
    last = (ok.drop_duplicates("discrepancy_id", keep="last").set_index("discrepancy_id")
            if len(ok) else pd.DataFrame(columns=["decision", "adjudicator"]))
    ids = discrepancies["discrepancy_id"]
    decision = ids.map(last["decision"]) if len(last) else pd.Series(None, index=ids.index)
    who = ids.map(last["adjudicator"]) if len(last) else pd.Series(None, index=ids.index)
    keep = (decision != DO_NOT_APPLY).to_numpy()
    apply = (decision == APPLY).to_numpy()
    out = discrepancies.loc[keep, ["answer_id", *CODE_KEY, "discrepancy_id"]].copy()
    out["provenance"] = pd.Series(apply, index=discrepancies.index)[keep].map(
        {True: "adjudicated", False: "unresolved"}).astype(object)
    out["decided_by"] = who[keep].where(pd.Series(apply, index=discrepancies.index)[keep],
                                        None).astype(object)
    return out[columns].reset_index(drop=True)


def standin_by_year(suggestions: pd.DataFrame, keyword_applications: pd.DataFrame,
                    answers: pd.DataFrame) -> pd.DataFrame:
    """The stand-in `final_codes` takes: the suggestions in the school years coding.suggestions
    covers, the keyword coder's codes in the other years (so a warehouse without suggestions,
    or a year whose suggestions were not built yet, still gets codes). Each year has one kind
    of machine source. Columns: STANDIN_COLUMNS."""
    covered = set(suggestions["school_year"].dropna()) if len(suggestions) else set()
    years = answers.drop_duplicates("answer_id").set_index("answer_id")["school_year"]
    kw = keyword_standin(keyword_applications)
    kw = kw[~kw["answer_id"].map(years).isin(covered)]
    parts = [p for p in (suggestion_standin(suggestions), kw) if len(p)]
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame(columns=STANDIN_COLUMNS))


def _standin_years(units: pd.DataFrame, standin: pd.DataFrame,
                   answers: pd.DataFrame) -> pd.DataFrame:
    """The stand-in's rows on answers of school years without human coding."""
    missing = [c for c in STANDIN_COLUMNS if c not in standin.columns]
    if missing:
        raise ValueError(f"the stand-in codes lack column(s) {', '.join(missing)}: build them "
                         "with keyword_standin() or suggestion_standin()")
    unknown = sorted(set(standin["provenance"].dropna()) - set(PROVENANCES))
    if unknown:
        raise ValueError(f"stand-in provenance(s) {unknown} are not in {PROVENANCES}")
    human_years = set(units["school_year"])
    years = answers.set_index("answer_id")["school_year"]
    rows = standin[standin["answer_id"].map(years).isin(set(years) - human_years)]
    return rows[STANDIN_COLUMNS].drop_duplicates(["answer_id", *CODE_KEY]).assign(
        discrepancy_id=None)


def reconciliation_summary(discrepancies: pd.DataFrame, adjudications: pd.DataFrame,
                           final: pd.DataFrame) -> dict:
    """Counts for metadata and reports: discrepancies, accepted decisions, unresolved, and the
    final codes by provenance."""
    ok = adjudications[adjudications["accepted"].astype(bool)] if len(adjudications) else \
        adjudications
    ok = ok[ok["discrepancy_id"].isin(set(discrepancies["discrepancy_id"]))] if len(ok) else ok
    by_prov = final["provenance"].value_counts()
    return {
        "n_discrepancies": len(discrepancies),
        "n_decided_apply": int((ok.get("decision", pd.Series(dtype=object)) == APPLY).sum()),
        "n_decided_do_not_apply": int(
            (ok.get("decision", pd.Series(dtype=object)) == DO_NOT_APPLY).sum()),
        "n_unresolved": int(by_prov.get("unresolved", 0)),
        "n_final_codes": int(len(final) - by_prov.get("unresolved", 0)),
        "by_provenance": {p: int(by_prov.get(p, 0)) for p in PROVENANCES},
        "n_answers_coded": int(final.loc[final["provenance"] != "unresolved",
                                         "answer_id"].nunique()),
    }
