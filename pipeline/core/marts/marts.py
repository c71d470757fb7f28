"""Longitudinal marts computed from the final codes (pure pandas; the Dagster assets call these).

Counting rule: a code counts for an answer when its provenance is 'agreed', 'adjudicated', or a
machine stand-in ('trained_suggestion', 'zero_shot_suggestion', 'keyword': such rows exist only
for school years without human coding); 'unresolved' never counts, nor does a code on a
non-substantive answer or one missing from staging (uncounted_codes lists those). An answer
counts once per code however many rows repeat it. Every row carries its year's coding_source
(coding_sources). Rates are per 100 substantive answers (staging.answers with non_substantive =
false) of the same school year and question (and session / school / coach for the finer marts).
docs/report.md explains each column and choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY, require_columns

# in order of preference (exemplar quotes): human codes, then the machine stand-ins
COUNTED = ("agreed", "adjudicated", "trained_suggestion", "zero_shot_suggestion", "keyword")
HUMAN_PROVENANCES = ("agreed", "adjudicated", "unresolved")
# a machine stand-in's provenance is also the coding_source of a year it codes alone
MACHINE_SOURCES = ("trained_suggestion", "zero_shot_suggestion", "keyword")
CODING_SOURCES = ("human", *MACHINE_SOURCES, "mixed", "none")
LEVELS = ("code", "dimension", "framework")
LEVEL_KEYS = {
    "code": ["framework", "dimension", "code_id"],
    "dimension": ["framework", "dimension"],
    "framework": ["framework"],
}
BASE_KEY = ["school_year", "question_id"]
# what the year's marts read of staging.answers
ANSWER_COLUMNS = ["answer_id", *BASE_KEY, "school_id", "coach_id", "session_number",
                  "non_substantive"]
FREQ_COLUMNS = [
    "level", "school_year", "question_id", "framework", "dimension", "code_id", "label",
    "n_answers", "n_substantive", "rate_per_100", "n_schools", "n_sessions", "coding_source",
]


def counted_codes(final_codes: pd.DataFrame) -> pd.DataFrame:
    """The final codes that count, one row per (answer, code)."""
    require_columns(final_codes, ["answer_id", *BASE_KEY, *CODE_KEY, "provenance"], "final_codes")
    kept = final_codes[final_codes["provenance"].isin(COUNTED)]
    return kept.drop_duplicates(["answer_id", *CODE_KEY]).reset_index(drop=True)


def coding_sources(final_codes: pd.DataFrame) -> pd.DataFrame:
    """Per school year, who coded it (coding_source): 'human' (agreed / adjudicated /
    unresolved rows only), one machine stand-in ('trained_suggestion', 'zero_shot_suggestion'
    or 'keyword'), or 'mixed' (more than one of those: human and machine rows, which the
    reconciliation stage does not produce). A year of trained suggestions whose rarest codes
    kept their zero-shot figures (too few human examples to train them) is
    'trained_suggestion': that is how the trained suggester works; the counts show the share.
    With row counts per provenance (n_agreed, n_adjudicated, n_unresolved, n_keyword,
    n_trained_suggestion, n_zero_shot_suggestion)."""
    require_columns(final_codes, ["school_year", "provenance"], "final_codes")
    return coding_sources_of_counts(pd.crosstab(final_codes["school_year"],
                                                final_codes["provenance"]))


def coding_sources_of_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """`coding_sources` from the final codes' row counts per school year (index) and
    provenance (columns), as `pd.crosstab` gives them."""
    counts = counts.copy()
    for col in (*HUMAN_PROVENANCES, *MACHINE_SOURCES):
        if col not in counts:
            counts[col] = 0
    kinds = pd.DataFrame({"human": counts[list(HUMAN_PROVENANCES)].sum(axis=1) > 0,
                          **{m: counts[m] > 0 for m in MACHINE_SOURCES}})
    kinds.loc[kinds["trained_suggestion"], "zero_shot_suggestion"] = False
    n_kinds = kinds.sum(axis=1)
    source = [("mixed" if n > 1 else next((k for k in kinds.columns if row[k]), "none"))
              for n, (_, row) in zip(n_kinds, kinds.iterrows(), strict=True)]
    out = pd.DataFrame({
        "school_year": counts.index.astype(str),
        "coding_source": source,
        "n_agreed": counts["agreed"].to_numpy(),
        "n_adjudicated": counts["adjudicated"].to_numpy(),
        "n_unresolved": counts["unresolved"].to_numpy(),
        "n_keyword": counts["keyword"].to_numpy(),
        "n_trained_suggestion": counts["trained_suggestion"].to_numpy(),
        "n_zero_shot_suggestion": counts["zero_shot_suggestion"].to_numpy(),
    })
    return out.sort_values("school_year").reset_index(drop=True)


def machine_coded(source: object) -> bool:
    """A coding_source whose counts come (at least partly) from a machine stand-in."""
    return source in MACHINE_SOURCES or source == "mixed"


def code_labels(codes: pd.DataFrame | None) -> dict[str, str]:
    if codes is None or codes.empty:
        return {}
    return dict(zip(codes["code_id"], codes["label"], strict=False))


def code_label(code_id: object, labels: dict[str, str]) -> object:
    if code_id is None or (isinstance(code_id, float) and np.isnan(code_id)):
        return None
    return labels.get(code_id) or str(code_id).replace("_", " ").capitalize()


def _coded_with_context(final_codes: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """Counted codes on substantive answers, with the answer's school, coach and session."""
    context = _substantive(answers)[["answer_id", "school_id", "coach_id", "session_number"]]
    return counted_codes(final_codes).merge(context, on="answer_id", how="inner")


def uncounted_codes(final_codes: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """Final codes that would count but sit on an answer that is non-substantive or not in
    staging.answers: the marts leave them out (a rate's numerator must be part of its
    denominator). Columns of final_codes plus `why`. For a warning check."""
    counted = counted_codes(final_codes)
    known = answers.drop_duplicates("answer_id").set_index("answer_id")["non_substantive"]
    status = counted["answer_id"].map(known)
    why = pd.Series(None, index=counted.index, dtype=object)
    why[status.isna()] = "answer not in staging.answers"
    why[status.fillna(False).astype(bool)] = "non-substantive answer"
    return counted.assign(why=why)[why.notna()].reset_index(drop=True)


def _substantive(answers: pd.DataFrame) -> pd.DataFrame:
    require_columns(answers, ["answer_id", *BASE_KEY, "school_id", "coach_id", "session_number",
                       "non_substantive"], "answers")
    subst = answers[~answers["non_substantive"].astype(bool)]
    return subst.drop_duplicates("answer_id")


def _grid(base_keys: pd.DataFrame, codes: pd.DataFrame, level: str) -> pd.DataFrame:
    cols = LEVEL_KEYS[level]
    return base_keys.merge(codes[cols].drop_duplicates(), how="cross")


def year_marts(final_codes: pd.DataFrame, answers: pd.DataFrame,
               codes: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The four per-year marts (code_frequencies, code_trends, by_school, by_coach) of the
    same rows, the counted codes and substantive answers worked out once for all four."""
    prepared = _Prepared.of(final_codes, answers)
    return {
        "marts.code_frequencies": _frequencies(final_codes, answers, [], codes, True,
                                               prepared),
        "marts.code_trends": _trends(_frequencies(final_codes, answers, ["session_number"],
                                                  codes, True, prepared)),
        "marts.by_school": _frequencies(final_codes, answers, ["school_id"], codes, False,
                                        prepared).drop(columns=["n_schools"]),
        "marts.by_coach": _frequencies(final_codes, answers, ["coach_id"], codes, False,
                                       prepared),
    }


# the columns the marts group the counted codes by (BASE_KEY, the finer marts', the levels')
GROUP_COLUMNS = (*BASE_KEY, "session_number", "school_id", "coach_id", *LEVEL_KEYS["code"])


@dataclass
class _Prepared:
    coded: pd.DataFrame         # _coded_with_context
    substantive: pd.DataFrame   # _substantive
    sources: pd.DataFrame       # coding_sources
    # each GROUP_COLUMNS column of `coded` as numbers (-1: missing) and its distinct values:
    # grouping by numbers factorised once is several times faster than by the texts each time
    numbers: dict[str, pd.Series]
    uniques: dict[str, pd.Index]
    # what the marts count of each coded row, as numbers (one per distinct value, NaN for a
    # missing one): counting distinct numbers gives the same counts as distinct strings,
    # several times faster; made once for the four marts
    counted: pd.DataFrame

    @classmethod
    def of(cls, final_codes: pd.DataFrame, answers: pd.DataFrame) -> _Prepared:
        coded = _coded_with_context(final_codes, answers)
        numbers, uniques = {}, {}
        for col in GROUP_COLUMNS:
            codes, uniques[col] = pd.factorize(coded[col], use_na_sentinel=True)
            numbers[col] = pd.Series(codes, index=coded.index, name=col)
        sessions = coded["school_id"].astype(str) + "\x1f" + coded["session_number"].astype(str)
        counted = pd.DataFrame({"n_answers": _numbered(coded["answer_id"]),
                                "n_schools": _numbered(coded["school_id"]),
                                "n_sessions": _numbered(sessions.where(
                                    coded["session_number"].notna()))}, index=coded.index)
        return cls(coded, _substantive(answers), coding_sources(final_codes), numbers, uniques,
                   counted)

    def values(self, col: str, numbers: pd.Series) -> pd.Series:
        """The values of `col` the numbers stand for, in its dtype; -1 gives the missing value
        a grouping by the values themselves gives (NaN, or <NA> for a nullable dtype)."""
        taken = self.uniques[col].array.take(numbers.to_numpy(), allow_fill=True)
        return pd.Series(taken, index=numbers.index, name=col)


def _frequencies(
    final_codes: pd.DataFrame,
    answers: pd.DataFrame,
    extra: list[str],
    codes: pd.DataFrame | None,
    zero_fill: bool,
    prepared: _Prepared | None = None,
) -> pd.DataFrame:
    keys = [*BASE_KEY, *extra]
    prepared = prepared or _Prepared.of(final_codes, answers)
    base = prepared.substantive.groupby(keys, dropna=False).size().rename("n_substantive")
    base = base.reset_index()
    counted = prepared.counted
    labels = code_labels(codes)
    frames = []
    for level in LEVELS:
        group = keys + LEVEL_KEYS[level]
        agg = counted.groupby([prepared.numbers[c] for c in group]).nunique().reset_index()
        for c in group:
            agg[c] = prepared.values(c, agg[c])
        if zero_fill and codes is not None and not codes.empty:
            grid = _grid(base[keys].drop_duplicates(), codes, level)
            agg = grid.merge(agg, on=group, how="outer")
        agg["level"] = level
        frames.append(agg)
    out = pd.concat(frames, ignore_index=True)
    out = out.merge(base, on=keys, how="left")
    for col in ("n_answers", "n_schools", "n_sessions", "n_substantive"):
        out[col] = out[col].fillna(0).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 100.0 * out["n_answers"] / out["n_substantive"].where(out["n_substantive"] > 0)
    out["rate_per_100"] = rate.astype("float64")
    out["label"] = [code_label(c, labels) for c in out["code_id"]]
    sources = prepared.sources.set_index("school_year")["coding_source"]
    out["coding_source"] = out["school_year"].map(sources).fillna("none")
    columns = [c for c in FREQ_COLUMNS if c not in ("school_year", "question_id")]
    columns = ["level", *keys, *[c for c in columns if c != "level"]]
    for col in ("dimension", "code_id"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    out = out.assign(_lvl=out["level"].map(order))
    sort = ["_lvl", *keys, "framework", "dimension", "code_id"]
    out = out.sort_values(sort, na_position="first", kind="mergesort")
    return out[columns].reset_index(drop=True)


def _numbered(values: pd.Series) -> pd.Series:
    """Each distinct value as a number (float64), a missing one as NaN."""
    numbers = pd.factorize(values)[0].astype("float64")
    numbers[numbers < 0] = np.nan
    return pd.Series(numbers, index=values.index)


def code_frequencies(
    final_codes: pd.DataFrame, answers: pd.DataFrame, codes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """marts.code_frequencies: one row per level ('code', 'dimension', 'framework') x school year
    x question x framework [x dimension [x code]]. n_answers = distinct answers coded (a rollup
    counts an answer once however many of its codes apply); n_substantive = substantive answers
    of that year and question; rate_per_100 = 100 n_answers / n_substantive; n_schools = schools
    with a coded answer; n_sessions = coaching sessions (school x session number) with one.
    With `codes` (coding.codebook_codes) every codebook code appears, with zeros where unused,
    for every school year and question that has substantive answers."""
    return _frequencies(final_codes, answers, [], codes, zero_fill=True)


def code_trends(
    final_codes: pd.DataFrame, answers: pd.DataFrame, codes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """marts.code_trends: code_frequencies per school year x session number (within-year
    trends); the denominator is the substantive answers of that session number. Answers without
    a session number form their own group (session_number <NA>)."""
    return _trends(_frequencies(final_codes, answers, ["session_number"], codes,
                                zero_fill=True))


def _trends(out: pd.DataFrame) -> pd.DataFrame:
    out["session_number"] = out["session_number"].astype("Int64")
    return out


def by_school(final_codes: pd.DataFrame, answers: pd.DataFrame,
              codes: pd.DataFrame | None = None) -> pd.DataFrame:
    """marts.by_school: exact counts per school (non-zero rows only). Suppress before showing
    outside the team (suppress_small_cells)."""
    out = _frequencies(final_codes, answers, ["school_id"], codes, zero_fill=False)
    return out.drop(columns=["n_schools"])


def by_coach(final_codes: pd.DataFrame, answers: pd.DataFrame,
             codes: pd.DataFrame | None = None) -> pd.DataFrame:
    """marts.by_coach: exact counts per external coach (non-zero rows only)."""
    return _frequencies(final_codes, answers, ["coach_id"], codes, zero_fill=False)


def suppress_small_cells(
    frame: pd.DataFrame,
    count_columns: Sequence[str],
    min_count: int = 5,
    also_mask: Sequence[str] = (),
) -> pd.DataFrame:
    """A copy for people outside the team: counts of 1..min_count-1 become the text
    '<{min_count}' (zero is kept: it discloses no one), and in a row where any count was
    suppressed the `also_mask` columns (rates derived from it) become None. Count columns turn
    into object dtype. The warehouse keeps exact counts; only renderings are suppressed."""
    require_columns(frame, [*count_columns, *also_mask], "frame")
    out = frame.copy()
    hidden = pd.Series(False, index=out.index)
    for col in count_columns:
        values = pd.to_numeric(out[col], errors="coerce")
        small = values.notna() & (values > 0) & (values < min_count)
        hidden |= small
        masked = out[col].astype(object)
        masked[small] = f"<{min_count}"
        out[col] = masked
    for col in also_mask:
        out[col] = out[col].astype(object)
        out.loc[hidden, col] = None
    return out


# ----------------------------------------------------------------------------- reconciliation

def reconcile_marts_with_final_codes(
    frequencies: pd.DataFrame, final_codes: pd.DataFrame, answers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Mismatches between marts.code_frequencies.n_answers and a direct count of distinct
    answers with counted final codes, at every level. With `answers`, codes that
    `uncounted_codes` lists are left out of the direct count too (the marts' rule); without it
    every counted final code must be in the marts. Empty frame = reconciled. Columns: level,
    school_year, question_id, framework, dimension, code_id, expected, actual."""
    fc = final_codes[final_codes["provenance"].isin(COUNTED)]
    if answers is not None:
        ok = answers.loc[~answers["non_substantive"].astype(bool), "answer_id"]
        fc = fc[fc["answer_id"].isin(set(ok))]
    expected = []
    for level, cols in LEVEL_KEYS.items():
        sets = fc.groupby([*BASE_KEY, *cols], dropna=False)["answer_id"]
        counts = sets.nunique().rename("expected").reset_index()
        counts["level"] = level
        expected.append(counts)
    exp = pd.concat(expected, ignore_index=True)
    key = ["level", *BASE_KEY, *CODE_KEY]
    for col in CODE_KEY:
        exp[col] = exp[col].astype(object).where(exp[col].notna(), None) if col in exp else None
    act = frequencies[key + ["n_answers"]].rename(columns={"n_answers": "actual"})
    act = act.astype({c: object for c in CODE_KEY})
    merged = exp.astype({c: object for c in CODE_KEY}).fillna({"dimension": "", "code_id": ""})
    act = act.fillna({"dimension": "", "code_id": ""})
    merged = merged.merge(act, on=key, how="outer")
    merged[["expected", "actual"]] = merged[["expected", "actual"]].fillna(0).astype("int64")
    bad = merged[merged["expected"] != merged["actual"]].copy()
    for col in ("dimension", "code_id"):
        bad[col] = bad[col].replace("", None)
    return bad[[*key, "expected", "actual"]].reset_index(drop=True)


# ----------------------------------------------------------------------------- warehouse DDL

# The marts' columns are declared in the table catalog (pipeline/core/warehouse/catalog.py), which imports
# this module's constants; MART_TABLES (schema.table -> DDL) is derived from it on access, and
# YOY_COLUMNS (core.marts.year_comparison) is checked against it by tests/test_catalog.py.

def __getattr__(name: str):
    if name == "MART_TABLES":
        from pipeline.core.warehouse import catalog

        return {t: catalog.ddl(t) for t in catalog.TABLES if t.startswith("marts.")}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
