"""Inter-coder agreement statistics. Pure Python (numpy / pandas), no Dagster.

Three layers:

1. General nominal coefficients on a reliability matrix (rows = units, columns = coders,
   missing values allowed): `percent_agreement`, `cohen_kappa`, `krippendorff_alpha_nominal`,
   `gwet_ac1`, `pabak`. Undefined input (no unit with two values, or a single value in the whole
   domain) raises `AgreementError`; these functions never return NaN.
2. Binary two-coder statistics from a 2x2 table (`binary_agreement`, `bootstrap_binary`), with
   closed forms that are vectorised over many tables. Degenerate tables (only one value in
   the data) are expected for rare codes: kappa and alpha are then None with a reason.
3. `agreement_table` (code presence on answers, pooled per code / dimension / framework /
   question / school year / overall for each coder pair) and `keyword_quality` (precision,
   recall and F1 of one coder against a reference set).

Formulas and sources: docs/agreement.md.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY, require_columns

__all__ = [
    "AgreementError",
    "BinaryAgreement",
    "CI_STATS",
    "LEVELS",
    "agreement_table",
    "binary_agreement",
    "binary_stats",
    "bootstrap_binary",
    "cohen_kappa",
    "gwet_ac1",
    "keyword_quality",
    "krippendorff_alpha_nominal",
    "pabak",
    "percent_agreement",
]

DEFAULT_SEED = 20241201
LEVELS = ("code", "dimension", "framework", "question", "school_year", "overall")
# Statistics that get bootstrap percentile intervals (<stat>_ci_low / <stat>_ci_high).
CI_STATS = ("percent_agreement", "cohen_kappa", "krippendorff_alpha", "gwet_ac1", "pabak")
_STATS = ("prevalence", *CI_STATS)
_GROUP_COLS = ("framework", "dimension", "code_id", "question_id", "school_year")
_CODE_KEY = CODE_KEY


class AgreementError(ValueError):
    """The data do not define the requested agreement coefficient (or are malformed)."""


# --------------------------------------------------------------------------------------------
# 1. General nominal coefficients on a reliability matrix (units x coders)
# --------------------------------------------------------------------------------------------


def _value_counts(ratings: Any) -> tuple[np.ndarray, list[Any]]:
    """Units x categories matrix of how many coders gave each value to each unit.

    `ratings` is units x coders (DataFrame, numpy array or nested sequences); None, NaN and
    pd.NA are missing. Values are compared as given (nominal), so 1 and "1" differ.
    """
    if isinstance(ratings, pd.DataFrame):
        mat = ratings.to_numpy(dtype=object)
    else:
        mat = np.asarray(ratings, dtype=object)
    if mat.ndim != 2:
        raise AgreementError(f"ratings must be a 2-D units x coders matrix, got {mat.ndim}-D")
    present = ~pd.isna(mat)
    codes, categories = pd.factorize(mat[present])
    counts = np.zeros((mat.shape[0], len(categories)), dtype=np.int64)
    np.add.at(counts, (np.nonzero(present)[0], codes), 1)
    return counts, list(categories)


def _pairable(counts: np.ndarray) -> np.ndarray:
    """Rows of units that carry values from at least two coders; error if there are none."""
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(pairable) == 0:
        raise AgreementError("no unit has values from at least two coders: agreement is undefined")
    return pairable


def _single_value_error(categories: list[Any]) -> AgreementError:
    shown = repr(categories[0]) if categories else "nothing"
    return AgreementError(
        f"only one value ({shown}) occurs in the data: chance-corrected agreement is undefined"
    )


def _pairwise_agreement(pairable: np.ndarray) -> float:
    """Mean over pairable units of the share of agreeing coder pairs (Gwet 2014, p_a)."""
    m = pairable.sum(axis=1)
    return float(np.mean((pairable * (pairable - 1)).sum(axis=1) / (m * (m - 1))))


def percent_agreement(ratings: Any) -> float:
    """Share of agreeing coder pairs, averaged over units that have at least two values.

    With two coders this is the share of units coded by both on which they agree.
    """
    counts, _ = _value_counts(ratings)
    return _pairwise_agreement(_pairable(counts))


def krippendorff_alpha_nominal(ratings: Any) -> float:
    """Krippendorff's alpha for nominal data, any number of coders, missing values allowed.

    alpha = 1 - (n - 1) * sum_u [(m_u^2 - sum_k n_uk^2) / (m_u - 1)] / (n^2 - sum_k n_k^2)
    over pairable units u (m_u >= 2 values), n_k = pairable values equal to k, n = sum n_k.
    """
    counts, categories = _value_counts(ratings)
    pairable = _pairable(counts)
    m = pairable.sum(axis=1)
    n_k = pairable.sum(axis=0)
    n = n_k.sum()
    expected = float(n * n - (n_k * n_k).sum())
    if expected == 0:
        raise _single_value_error([c for c, k in zip(categories, n_k, strict=True) if k])
    observed = float((((m * m) - (pairable * pairable).sum(axis=1)) / (m - 1)).sum())
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(ratings: Any) -> float:
    """Cohen's kappa for exactly two coders, over the units both coded."""
    counts, categories, _ = _two_coder_table(ratings)
    n = counts.sum()
    p_a = counts.sum(axis=1) / n
    p_b = counts.sum(axis=0) / n
    p_o = np.trace(counts) / n
    if len(categories) < 2:  # then p_e = 1
        raise _single_value_error(categories)
    p_e = float((p_a * p_b).sum())
    return float((p_o - p_e) / (1 - p_e))


def _two_coder_table(ratings: Any) -> tuple[np.ndarray, list[Any], int]:
    """q x q contingency table (coder 1 rows, coder 2 columns) of units coded by both."""
    mat = ratings.to_numpy(dtype=object) if isinstance(ratings, pd.DataFrame) else None
    if mat is None:
        mat = np.asarray(ratings, dtype=object)
    if mat.ndim != 2 or mat.shape[1] != 2:
        raise AgreementError(
            f"Cohen's kappa needs exactly two coders (columns), got shape {mat.shape}"
        )
    both = mat[~pd.isna(mat).any(axis=1)]
    if len(both) == 0:
        raise AgreementError("no unit was coded by both coders: agreement is undefined")
    codes, categories = pd.factorize(both.ravel())
    codes = codes.reshape(-1, 2)
    q = len(categories)
    table = np.zeros((q, q), dtype=np.int64)
    np.add.at(table, (codes[:, 0], codes[:, 1]), 1)
    return table, list(categories), len(both)


def gwet_ac1(ratings: Any, n_categories: int | None = None) -> float:
    """Gwet's AC1 (unweighted), any number of coders, missing values allowed.

    Follows Gwet (2014) / irrCAC: p_a as in `percent_agreement`; pi_k = mean over units with at
    least one value of (n_uk / m_u); p_e = sum_k pi_k (1 - pi_k) / (q - 1), q = number of
    categories (observed ones unless `n_categories` fixes the domain size).
    """
    counts, categories = _value_counts(ratings)
    q = len(categories) if n_categories is None else n_categories
    if q < len(categories):
        raise AgreementError(f"n_categories={q} but {len(categories)} distinct values occur")
    if q < 2:
        raise _single_value_error(categories)
    p_a = _pairwise_agreement(_pairable(counts))
    rated = counts[counts.sum(axis=1) >= 1]
    pi = (rated / rated.sum(axis=1, keepdims=True)).mean(axis=0)
    p_e = float((pi * (1 - pi)).sum() / (q - 1))
    return (p_a - p_e) / (1 - p_e)


def pabak(ratings: Any, n_categories: int = 2) -> float:
    """Prevalence- and bias-adjusted kappa: (q * p_a - 1) / (q - 1), q = n_categories.

    For binary data (q = 2) this is Byrt, Bishop & Carlin's PABAK = 2 p_o - 1; for q > 2 it is
    Brennan & Prediger's coefficient. p_a is `percent_agreement` (any number of coders).
    """
    counts, categories = _value_counts(ratings)
    if n_categories < 2:
        raise AgreementError("pabak needs n_categories >= 2")
    if len(categories) > n_categories:
        raise AgreementError(
            f"n_categories={n_categories} but {len(categories)} distinct values occur"
        )
    p_a = _pairwise_agreement(_pairable(counts))
    return (n_categories * p_a - 1) / (n_categories - 1)


# --------------------------------------------------------------------------------------------
# 2. Binary two-coder statistics from 2x2 tables
# --------------------------------------------------------------------------------------------


def binary_stats(n11: Any, n10: Any, n01: Any, n00: Any) -> dict[str, np.ndarray]:
    """Vectorised closed forms over arrays of 2x2 tables; NaN marks an undefined value.

    n11 = both coders applied the code, n10 = only coder A, n01 = only coder B, n00 = neither.
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (n11, n10, n01, n00))
    n = a + b + c + d
    empty = n == 0
    no_variation = empty | (a == n) | (d == n)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = (a + d) / n
        rate_a = (a + b) / n
        rate_b = (a + c) / n
        prevalence = (rate_a + rate_b) / 2
        pe_kappa = rate_a * rate_b + (1 - rate_a) * (1 - rate_b)
        kappa = (p_o - pe_kappa) / (1 - pe_kappa)
        # Coincidence matrix: o_11 = 2a, o_00 = 2d, o_10 = o_01 = b + c; 2n pairable values.
        alpha = 1 - (2 * n - 1) * (b + c) / ((2 * a + b + c) * (2 * d + b + c))
        pe_ac1 = 2 * prevalence * (1 - prevalence)
        ac1 = (p_o - pe_ac1) / (1 - pe_ac1)
        pabak_ = 2 * p_o - 1
    nan = np.nan
    return {
        "prevalence": np.where(empty, nan, prevalence),
        "percent_agreement": np.where(empty, nan, p_o),
        "cohen_kappa": np.where(no_variation, nan, kappa),
        "krippendorff_alpha": np.where(no_variation, nan, alpha),
        "gwet_ac1": np.where(empty, nan, ac1),
        "pabak": np.where(empty, nan, pabak_),
    }


def undefined_reason(n11: int, n10: int, n01: int, n00: int) -> str | None:
    """Why kappa / alpha (or everything) is undefined for this 2x2 table; None if defined."""
    n = n11 + n10 + n01 + n00
    if n == 0:
        return "no units: no answer was coded by both coders"
    if n00 == n:
        return "no variation: neither coder applied the code(s); kappa and alpha undefined"
    if n11 == n:
        return (
            "no variation: both coders applied the code(s) on every unit; kappa and alpha undefined"
        )
    return None


def _nan_percentiles(values: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolated q-quantile along the last axis, ignoring NaN (NaN if all NaN).

    Same result as np.nanquantile(values, q, axis=-1), without its per-row overhead.
    """
    ordered = np.sort(values, axis=-1)  # NaN sorts last
    n_valid = (~np.isnan(values)).sum(axis=-1)
    pos = q * np.maximum(n_valid - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n_valid - 1, 0))
    v_lo = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    v_hi = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    return np.where(n_valid > 0, v_lo + (pos - lo) * (v_hi - v_lo), np.nan)


def _bootstrap_many(
    cells: np.ndarray,
    seeds: Sequence[Any],
    n_boot: int,
    confidence: float,
    clusters: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile intervals for G 2x2 tables (cells: G x 4), one generator per table.

    A table's units are resampled one by one (a multinomial draw of its four cells), or, when
    `clusters[g]` is given as (patterns K x 4, answers per pattern K), by answer: each answer
    carries the cells of all its units, answers with the same cells share a pattern, and a
    replicate draws the answers with replacement (a multinomial draw over the patterns).
    """
    draws = np.zeros((len(cells), n_boot, 4), dtype=np.int64)
    for g, (row, seed) in enumerate(zip(cells, seeds, strict=True)):
        cluster = clusters[g] if clusters is not None else None
        patterns, weights = (np.eye(4, dtype=np.int64), row) if cluster is None else cluster
        total = int(weights.sum())
        if total > 0:
            picks = np.random.default_rng(seed).multinomial(total, weights / total, size=n_boot)
            draws[g] = picks @ patterns
    stats = binary_stats(draws[..., 0], draws[..., 1], draws[..., 2], draws[..., 3])
    tail = (1 - confidence) / 2
    return {
        s: (_nan_percentiles(stats[s], tail), _nan_percentiles(stats[s], 1 - tail))
        for s in CI_STATS
    }


def bootstrap_binary(
    n11: int,
    n10: int,
    n01: int,
    n00: int,
    *,
    n_boot: int = 1000,
    seed: int | Sequence[int] = DEFAULT_SEED,
    confidence: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """Percentile bootstrap intervals for the `CI_STATS`, resampling units.

    Resampling n units with replacement from a 2x2 table is one multinomial draw of the four
    cell counts, so B replicates are a single (B, 4) numpy draw. A replicate in which a
    statistic is undefined (no variation) is left out of that statistic's percentiles; if none
    is defined the interval is (None, None).
    """
    if min(n11, n10, n01, n00) < 0:
        raise AgreementError("2x2 cell counts must be non-negative")
    if n_boot <= 0:
        return {s: (None, None) for s in CI_STATS}
    cells = np.array([[n11, n10, n01, n00]], dtype=np.int64)
    intervals = _bootstrap_many(cells, [seed], n_boot, confidence)
    return {
        s: (_none_if_nan(low[0]), _none_if_nan(high[0])) for s, (low, high) in intervals.items()
    }


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class BinaryAgreement:
    """Agreement of two coders on binary units, from a 2x2 table. None = undefined."""

    n_both: int
    n_only_a: int
    n_only_b: int
    n_neither: int
    prevalence: float | None
    percent_agreement: float | None
    cohen_kappa: float | None
    krippendorff_alpha: float | None
    gwet_ac1: float | None
    pabak: float | None
    undefined_reason: str | None
    ci: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return self.n_both + self.n_only_a + self.n_only_b + self.n_neither


def binary_agreement(
    n11: int,
    n10: int,
    n01: int,
    n00: int,
    *,
    n_boot: int = 0,
    seed: int | Sequence[int] = DEFAULT_SEED,
    confidence: float = 0.95,
) -> BinaryAgreement:
    """All binary statistics for one 2x2 table, plus bootstrap intervals when n_boot > 0."""
    if min(n11, n10, n01, n00) < 0:
        raise AgreementError("2x2 cell counts must be non-negative")
    stats = {k: _none_if_nan(float(v)) for k, v in binary_stats(n11, n10, n01, n00).items()}
    ci = (
        bootstrap_binary(n11, n10, n01, n00, n_boot=n_boot, seed=seed, confidence=confidence)
        if n_boot > 0
        else {}
    )
    return BinaryAgreement(
        n_both=int(n11),
        n_only_a=int(n10),
        n_only_b=int(n01),
        n_neither=int(n00),
        undefined_reason=undefined_reason(n11, n10, n01, n00),
        ci=ci,
        **stats,
    )


# --------------------------------------------------------------------------------------------
# 3. Code-presence agreement over survey answers
# --------------------------------------------------------------------------------------------


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    require_columns(df, columns, name, AgreementError)


def _codebook(codes: pd.DataFrame) -> pd.DataFrame:
    _require(codes, _CODE_KEY, "codes")
    book = codes[_CODE_KEY].drop_duplicates().reset_index(drop=True)
    if book.empty:
        raise AgreementError("codes (the codebook) is empty")
    return book  # row position = code_idx


def _code_index(apps: pd.DataFrame, book: pd.DataFrame, name: str) -> np.ndarray:
    """code_idx of each application; a (framework, dimension, code_id) not in the codebook is
    an error."""
    book_index = pd.MultiIndex.from_frame(book[_CODE_KEY])
    idx = book_index.get_indexer(pd.MultiIndex.from_frame(apps[_CODE_KEY]))
    if (idx < 0).any():
        unknown = apps.loc[idx < 0, _CODE_KEY]
        examples = unknown.drop_duplicates().head(3).to_dict("records")
        raise AgreementError(
            f"{name}: {len(unknown)} application(s) use codes not in the codebook, e.g. {examples}"
        )
    return idx.astype(np.int64)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique for int keys (sort-based; numpy 2.3's hash-based unique is slower here)."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def _stable_int(*parts: object) -> int:
    raw = "\x1f".join("" if p is None or p is pd.NA else str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest(), "big")


def _answer_patterns(
    answer_of: dict[str, np.ndarray],
    group_of: dict[str, np.ndarray],
    n_groups: int,
    n_answers: int,
    units_per_answer: np.ndarray,
    answer_in_group: np.ndarray | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per group: the distinct (both, only_a, only_b, neither) cells of its answers and how
    many answers have each. answer_of / group_of: per cell, each unit's answer position (among
    the answers both coders coded) and group; units_per_answer: per group, units an answer
    has in it (the group's codes); answer_in_group: per answer its group (None: every answer
    is in every group)."""
    per_cell = [
        np.bincount(group_of[c] * n_answers + answer_of[c], minlength=n_groups * n_answers)
        .reshape(n_groups, n_answers)
        for c in ("n_both", "n_only_a", "n_only_b")
    ]  # fmt: skip
    out = []
    for g in range(n_groups):
        members = slice(None) if answer_in_group is None else answer_in_group == g
        both, only_a, only_b = (c[g][members].astype(np.int64) for c in per_cell)
        base = int(units_per_answer[g]) + 1  # each count is at most the group's codes
        keys, weights = np.unique((both * base + only_a) * base + only_b, return_counts=True)
        both, rest = np.divmod(keys, base * base)
        only_a, only_b = np.divmod(rest, base)
        neither = units_per_answer[g] - both - only_a - only_b
        out.append((np.stack([both, only_a, only_b, neither], axis=1), weights.astype(np.int64)))
    return out


def _pair_counts(
    coder_a: str, coder_b: str, data: _Prepared
) -> tuple[pd.DataFrame, list[tuple[np.ndarray, np.ndarray] | None]]:
    """2x2 cell counts for every (level, group) of one coder pair, from integer keys, and per
    row the answers' cell patterns its bootstrap resamples (None: one unit per answer)."""
    book, answers = data.book, data.answers
    n_codes = len(book)
    both_coded = data.coded.get(coder_a, data.no_answers) & data.coded.get(coder_b, data.no_answers)
    n_answers = int(both_coded.sum())

    def unit_keys(coder: str) -> np.ndarray:
        """Sorted unique answer_idx * n_codes + code_idx of the coder's applications."""
        sel = (data.app_coder == coder) & both_coded[data.app_answer]
        return _sorted_unique(data.app_answer[sel] * n_codes + data.app_code[sel])

    keys_a, keys_b = unit_keys(coder_a), unit_keys(coder_b)
    cells = {
        "n_both": np.intersect1d(keys_a, keys_b, assume_unique=True),
        "n_only_a": np.setdiff1d(keys_a, keys_b, assume_unique=True),
        "n_only_b": np.setdiff1d(keys_b, keys_a, assume_unique=True),
    }

    # Each unit's answer, as a position among the answers both coders coded (the bootstrap of a
    # pooled row resamples those answers, each with all its units).
    position = np.cumsum(both_coded) - 1
    answer_of = {cell: position[keys // n_codes] for cell, keys in cells.items()}
    code_of = {cell: keys % n_codes for cell, keys in cells.items()}

    parts, clusters = [], []
    # Per code: every code of the codebook, also those nobody applied.
    code_rows = book[_CODE_KEY].copy()
    for cell, keys in cells.items():
        code_rows[cell] = np.bincount(keys % n_codes, minlength=n_codes)
    code_rows["n_answers"] = n_answers
    code_rows["n_units"] = n_answers
    parts.append(code_rows.assign(level="code"))
    clusters += [None] * len(code_rows)
    # Per dimension and per framework: units = answers x codes in the group.
    for level, group_keys in (
        ("dimension", ["framework", "dimension"]),
        ("framework", ["framework"]),
    ):
        grouped = code_rows.groupby(group_keys, sort=False, dropna=False)
        group_idx = grouped.ngroup().to_numpy()  # same order as the aggregated rows
        rows = grouped[list(cells)].sum().join(grouped.size().rename("n_codes")).reset_index()
        rows["n_answers"] = n_answers
        codes_per_group = rows.pop("n_codes").to_numpy()
        rows["n_units"] = n_answers * codes_per_group
        parts.append(rows.assign(level=level))
        clusters += _answer_patterns(
            answer_of, {c: group_idx[k] for c, k in code_of.items()}, len(rows), n_answers,
            codes_per_group, None,
        )  # fmt: skip
    # Per question and per school year: units = answers in the group x all codes.
    for level, column in (("question", "question_id"), ("school_year", "school_year")):
        group_idx, labels = pd.factorize(answers[column], use_na_sentinel=False)
        sizes = np.bincount(group_idx[both_coded], minlength=len(labels))
        rows = pd.DataFrame({column: labels, "n_answers": sizes})
        unit_group = {cell: group_idx[keys // n_codes] for cell, keys in cells.items()}
        for cell, groups in unit_group.items():
            rows[cell] = np.bincount(groups, minlength=len(labels))
        rows["n_units"] = rows["n_answers"] * n_codes
        kept = rows["n_answers"].to_numpy() > 0
        parts.append(rows[kept].assign(level=level))
        patterns = _answer_patterns(
            answer_of, unit_group, len(labels), n_answers, np.full(len(labels), n_codes),
            group_idx[both_coded],
        )  # fmt: skip
        clusters += [p for p, keep in zip(patterns, kept, strict=True) if keep]
    overall = {cell: [len(keys)] for cell, keys in cells.items()}
    parts.append(
        pd.DataFrame(overall).assign(
            n_answers=n_answers, n_units=n_answers * n_codes, level="overall"
        )
    )
    clusters += _answer_patterns(
        answer_of, {c: np.zeros(len(k), dtype=np.int64) for c, k in cells.items()}, 1,
        n_answers, np.array([n_codes]), None,
    )  # fmt: skip

    out = pd.concat(parts, ignore_index=True)
    out["n_neither"] = out["n_units"] - out["n_both"] - out["n_only_a"] - out["n_only_b"]
    out.insert(0, "coder_b", coder_b)
    out.insert(0, "coder_a", coder_a)
    return out, clusters


@dataclass(frozen=True)
class _Prepared:
    """Inputs of `agreement_table` as integer arrays shared by all coder pairs."""

    book: pd.DataFrame  # framework, dimension, code_id; row position = code_idx
    answers: pd.DataFrame  # answer_id, question_id, school_year; row position = answer_idx
    coded: dict[str, np.ndarray]  # coder -> boolean mask over answers they coded
    no_answers: np.ndarray  # all-False mask, for a coder absent from units
    app_answer: np.ndarray  # answer_idx of each application
    app_code: np.ndarray  # code_idx of each application
    app_coder: np.ndarray  # coder of each application


def _prepare(applications: pd.DataFrame, units: pd.DataFrame, codes: pd.DataFrame) -> _Prepared:
    _require(applications, ["answer_id", "coder", *_CODE_KEY], "applications")
    _require(units, ["answer_id", "coder", "question_id", "school_year"], "units")
    book = _codebook(codes)
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

    app_code = _code_index(applications, book, "applications")
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
    return _Prepared(book, answers, coded, no_answers, app_answer, app_code, app_coder)


def agreement_table(
    applications: pd.DataFrame,
    units: pd.DataFrame,
    codes: pd.DataFrame,
    coder_pairs: Sequence[tuple[str, str]] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Agreement on code presence, one row per (coder_a, coder_b, level, group).

    applications: answer_id, coder, framework, dimension, code_id (one row per applied code;
        repeated rows count once).
    units: answer_id, coder, question_id, school_year (the answers each coder coded; a coder
        who coded an answer and applied nothing still coded it).
    codes: framework, dimension, code_id (the codebook: the universe of codes).
    coder_pairs: pairs to compare; default all pairs of coders in `units`, sorted.

    A unit is (answer, code) over the answers both coders of the pair coded; each coder's value
    is 1 if they applied the code, else 0. Each group pools its units into one 2x2 table:
    level 'code' (framework, dimension, code_id), 'dimension' (framework, dimension),
    'framework', 'question' (question_id), 'school_year' and 'overall'; group columns not part
    of the level are None. The bootstrap resamples answers (a code's row: its units; a pooled
    row: the group's answers, each with all its units, so codes on one answer stay together)
    with a seed derived from `seed` and the row's key, so an interval does not change when
    other rows are added.
    Statistic columns are nullable Float64 (<NA> where undefined, never NaN).

    Raises AgreementError for missing columns, applications with codes not in the codebook,
    applications by a coder on an answer `units` does not list for that coder, and answers whose
    question_id / school_year differ between rows of `units`.
    """
    data = _prepare(applications, units, codes)
    if coder_pairs is None:
        coder_pairs = list(itertools.combinations(sorted(units["coder"].unique()), 2))
    for a, b in coder_pairs:
        if a == b:
            raise AgreementError(f"coder pair ({a!r}, {b!r}) compares a coder with itself")
    if not coder_pairs:
        raise AgreementError("no coder pair to compare")

    per_pair = [_pair_counts(a, b, data) for a, b in coder_pairs]
    counts = pd.concat([c for c, _ in per_pair], ignore_index=True)
    clusters = [x for _, pair_clusters in per_pair for x in pair_clusters]
    cells = counts[["n_both", "n_only_a", "n_only_b", "n_neither"]].to_numpy(dtype=np.int64)
    stats = binary_stats(cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 3])

    result = counts.reindex(columns=["coder_a", "coder_b", "level", *_GROUP_COLS]).astype(object)
    result = result.where(result.notna(), None)
    for col in ("n_units", "n_answers", "n_both", "n_only_a", "n_only_b", "n_neither"):
        result[col] = counts[col].to_numpy(dtype=np.int64)
    for stat in _STATS:
        result[stat] = pd.array(stats[stat], dtype="Float64")  # NaN -> <NA>

    row_keys = result[["coder_a", "coder_b", "level", *_GROUP_COLS]].itertuples(index=False)
    seeds = [[seed, _stable_int(*key)] for key in row_keys]
    if n_boot > 0:
        intervals = _bootstrap_many(cells, seeds, n_boot, confidence, clusters)
    else:
        missing = np.full(len(cells), np.nan)
        intervals = {s: (missing, missing) for s in CI_STATS}
    for s, (low, high) in intervals.items():
        result[f"{s}_ci_low"] = pd.array(low, dtype="Float64")
        result[f"{s}_ci_high"] = pd.array(high, dtype="Float64")
    result["undefined_reason"] = [undefined_reason(*map(int, row)) for row in cells]
    return result


def keyword_quality(
    applications_test: pd.DataFrame,
    applications_ref: pd.DataFrame,
    units: pd.DataFrame,
    codes: pd.DataFrame,
) -> pd.DataFrame:
    """Precision, recall and F1 of one coder (e.g. the keyword coder) against a reference set.

    Evaluated over the distinct answer_id values in `units` (the answers that have reference
    codes); applications on other answers are ignored. One row per code of the codebook, then
    one overall row (framework / dimension / code_id null) with micro-averaged counts.
    precision = tp / (tp + fp), recall = tp / (tp + fn), f1 = 2 tp / (2 tp + fp + fn); each is
    None when its denominator is 0 (so f1 is 0, not None, when the coder never applies a code
    the reference applies).
    """
    _require(applications_test, ["answer_id", *_CODE_KEY], "applications_test")
    _require(applications_ref, ["answer_id", *_CODE_KEY], "applications_ref")
    _require(units, ["answer_id"], "units")
    book = _codebook(codes)
    n_codes = len(book)
    answer_pos = pd.Index(units["answer_id"].unique())

    def unit_keys(apps: pd.DataFrame, name: str) -> np.ndarray:
        apps = apps[apps["answer_id"].isin(answer_pos)]
        code_idx = _code_index(apps, book, name)
        return _sorted_unique(answer_pos.get_indexer(apps["answer_id"]) * n_codes + code_idx)

    test = unit_keys(applications_test, "applications_test")
    ref = unit_keys(applications_ref, "applications_ref")
    tp = np.bincount(np.intersect1d(test, ref, assume_unique=True) % n_codes, minlength=n_codes)
    fp = np.bincount(np.setdiff1d(test, ref, assume_unique=True) % n_codes, minlength=n_codes)
    fn = np.bincount(np.setdiff1d(ref, test, assume_unique=True) % n_codes, minlength=n_codes)

    out = book.astype(object)
    out.loc[len(out)] = [None, None, None]
    out["n_answers"] = len(answer_pos)
    out["tp"] = np.append(tp, tp.sum())
    out["fp"] = np.append(fp, fp.sum())
    out["fn"] = np.append(fn, fn.sum())
    tp_, fp_, fn_ = (out[c].to_numpy(dtype=np.float64) for c in ("tp", "fp", "fn"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["precision"] = pd.array(tp_ / (tp_ + fp_), dtype="Float64")  # NaN -> <NA>
        out["recall"] = pd.array(tp_ / (tp_ + fn_), dtype="Float64")
        out["f1"] = pd.array(2 * tp_ / (2 * tp_ + fp_ + fn_), dtype="Float64")
    return out
