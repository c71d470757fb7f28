"""Two school years compared: marts.year_over_year and the statistics behind it.

In: marts.code_frequencies (rates per level x question x code, with each year's coding
source). Out: marts.year_over_year (YOY_COLUMNS): the change in rate between two years with a
Newcombe interval, Cohen's h, a two-proportion test and Benjamini-Hochberg adjusted p-values,
and whether the two years were coded the same way (`comparability`). docs/report.md explains
each column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.core.marts.marts import LEVELS

# scipy.stats.norm.ppf(0.975), written out: scipy.stats is imported only where a test runs
# (importing it costs ~1 s in every process that loads the definitions; a test checks the value)
Z95 = 1.959963984540054


def _wilson(x: float, n: float) -> tuple[float, float]:
    p = x / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """95% CI of p2 - p1 by Newcombe's hybrid score method (method 10, from two Wilson
    intervals); well behaved at 0 and small counts."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1)
    l2, u2 = _wilson(x2, n2)
    d = p2 - p1
    return d - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def cohens_h(p1: float, p2: float) -> float:
    return float(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[str, float, float]:
    """(test, statistic, p): Pearson chi-square on the 2x2 table without continuity
    correction, or Fisher's exact test (two-sided; statistic = odds ratio) when any expected
    count is below 5."""
    from scipy import stats

    table = np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if (expected < 5).any():
        odds, p = stats.fisher_exact(table.astype(int), alternative="two-sided")
        return "fisher", float(odds), float(p)
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return "chi2", float(chi2), float(p)


def year_sources(frequencies: pd.DataFrame) -> dict[str, str]:
    """school_year -> coding_source, as the marts carry it."""
    f = frequencies[["school_year", "coding_source"]].dropna(subset=["school_year"])
    f = f.drop_duplicates("school_year")
    return {str(y): (s if isinstance(s, str) else "none")
            for y, s in zip(f["school_year"], f["coding_source"], strict=True)}


def default_years(frequencies: pd.DataFrame) -> tuple[str, str] | None:
    """The pair year_over_year compares by default, like with like: the first and the latest
    human-coded school year when there are two; otherwise the first and the latest year
    present (then the rows say the sources differ). None with fewer than two years."""
    sources = year_sources(frequencies)
    years = sorted(sources)
    human = [y for y in years if sources[y] == "human"]
    if len(human) >= 2:
        return human[0], human[-1]
    return (years[0], years[-1]) if len(years) >= 2 else None


def comparability(source_a: object, source_b: object) -> tuple[bool, str | None]:
    """(comparable, note) for two years' coding sources: comparable when both years were coded
    the same way (human and human, or the same machine stand-in alone); otherwise the note
    says what differs, since the change then measures the change of method too."""
    names = {"human": "human coders", "trained_suggestion": "the trained suggester",
             "zero_shot_suggestion": "the zero-shot suggester", "keyword": "the keyword coder",
             "mixed": "several sources", "none": "no final codes"}
    a = source_a if isinstance(source_a, str) else "none"
    b = source_b if isinstance(source_b, str) else "none"
    if a == b and a not in ("mixed", "none"):
        note = None if a == "human" else (
            f"both years coded by {names[a]}, not by human coders (like with like, but "
            "machine codes)")
        return True, note
    return False, (f"not comparable: year a coded by {names.get(a, a)}, year b by "
                   f"{names.get(b, b)}; the change mixes a change of method with a change "
                   "of feedback")


def year_over_year(
    frequencies: pd.DataFrame,
    year_a: str | None = None,
    year_b: str | None = None,
    levels: Sequence[str] = ("code", "dimension", "framework"),
) -> pd.DataFrame:
    """marts.year_over_year from marts.code_frequencies: the change in rate from year_a to
    year_b per level x question x framework [x dimension [x code]]. Default years
    (default_years): like with like, the first and the latest human-coded year when there are
    two, else the first and the latest year present; naming only one year compares it with the
    latest (year_a) or the first (year_b) year present. `comparable` says whether both years were
    coded the same way and `note` says how they differ (a comparison across coding sources is
    kept, flagged, never dropped). Rows where the code appears in neither year, or a year has
    no substantive answers for the question, get no test (p_value NaN). p_adjusted is
    Benjamini-Hochberg within each level (scipy.stats.false_discovery_control) over the rows
    with a test."""
    if year_a is None or year_b is None:
        pair = default_years(frequencies)
        if pair is None:
            return pd.DataFrame(columns=YOY_COLUMNS)
        if year_a is None and year_b is None:
            year_a, year_b = pair
        else:   # one year named: the other is the first / the latest year present
            years = sorted(year_sources(frequencies))
            year_a, year_b = year_a or years[0], year_b or years[-1]
    sources = year_sources(frequencies)
    key = ["level", "question_id", "framework", "dimension", "code_id"]
    freq = frequencies[frequencies["level"].isin(levels)]
    cols = [*key, "n_answers", "n_substantive"]
    a = freq[freq["school_year"] == year_a][[*cols, "label"]]
    b = freq[freq["school_year"] == year_b][cols]
    both = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"))
    if both.empty:
        return pd.DataFrame(columns=YOY_COLUMNS)
    rows = [_yoy_row(r) for r in both.itertuples(index=False)]
    counts = ["n_answers_a", "n_substantive_a", "n_answers_b", "n_substantive_b"]
    out = pd.concat([both.drop(columns=counts).reset_index(drop=True), pd.DataFrame(rows)],
                    axis=1)
    out["year_a"], out["year_b"] = year_a, year_b
    out["coding_source_a"] = sources.get(str(year_a), "none")
    out["coding_source_b"] = sources.get(str(year_b), "none")
    comparable, note = comparability(out["coding_source_a"].iloc[0],
                                     out["coding_source_b"].iloc[0])
    out["comparable"], out["note"] = comparable, note
    out["p_adjusted"] = np.nan
    from scipy import stats

    for level in out["level"].unique():
        mask = (out["level"] == level) & out["p_value"].notna()
        if mask.any():
            out.loc[mask, "p_adjusted"] = stats.false_discovery_control(
                out.loc[mask, "p_value"].to_numpy(), method="bh"
            )
    for col in ("dimension", "code_id", "label", "note"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    out["comparable"] = out["comparable"].astype(bool)
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    out = out.assign(_lvl=out["level"].map(order)).sort_values(
        ["_lvl", "question_id", "framework", "dimension", "code_id"], na_position="first"
    )
    return out[YOY_COLUMNS].reset_index(drop=True)


YOY_COLUMNS = [
    "level", "question_id", "framework", "dimension", "code_id", "label", "year_a", "year_b",
    "n_answers_a", "n_substantive_a", "rate_a", "n_answers_b", "n_substantive_b", "rate_b",
    "diff_per_100", "diff_ci_low", "diff_ci_high", "cohens_h", "test", "statistic", "p_value",
    "p_adjusted", "coding_source_a", "coding_source_b", "comparable", "note",
]


def _yoy_row(r) -> dict:
    x1, n1 = int(np.nan_to_num(r.n_answers_a)), int(np.nan_to_num(r.n_substantive_a))
    x2, n2 = int(np.nan_to_num(r.n_answers_b)), int(np.nan_to_num(r.n_substantive_b))
    row = {
        "n_answers_a": x1, "n_substantive_a": n1, "n_answers_b": x2, "n_substantive_b": n2,
        "rate_a": 100 * x1 / n1 if n1 else np.nan, "rate_b": 100 * x2 / n2 if n2 else np.nan,
        "diff_per_100": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
        "cohens_h": np.nan, "test": None, "statistic": np.nan, "p_value": np.nan,
    }
    if x1 > n1 or x2 > n2:
        raise ValueError(f"{r.level} {r.code_id or r.dimension or r.framework} "
                         f"({r.question_id}): more coded than substantive answers")
    if n1 == 0 or n2 == 0:
        return row
    low, high = newcombe_interval(x1, n1, x2, n2)
    row.update(diff_per_100=row["rate_b"] - row["rate_a"], diff_ci_low=100 * low,
               diff_ci_high=100 * high, cohens_h=cohens_h(x1 / n1, x2 / n2))
    if x1 + x2 > 0:
        row["test"], row["statistic"], row["p_value"] = two_proportion_test(x1, n1, x2, n2)
    return row


MEMO_KIND = "year_over_year"


def kept_year_over_year(frequencies: pd.DataFrame, year_a: str | None = None,
                        year_b: str | None = None) -> pd.DataFrame:
    """year_over_year, kept in the frame memo (frame_memo.py) under the frequencies and the two
    years asked for: a run whose frequencies did not change skips the tests, and with them
    scipy's import (about a second of the sample's run)."""
    from pipeline.core import frame_memo
    from pipeline.core.warehouse.fingerprint import library_versions

    key = frame_memo.key(MEMO_KIND, frequencies, f"{year_a}|{year_b}",
                         library_versions("scipy", "numpy", "pandas"))
    kept = frame_memo.load(MEMO_KIND, key)
    if kept is not None and list(kept.columns) == list(YOY_COLUMNS):
        return kept
    out = year_over_year(frequencies, year_a, year_b)
    frame_memo.store(MEMO_KIND, key, out)
    return out
