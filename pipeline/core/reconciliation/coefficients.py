"""Inter-coder agreement, layer 1: general nominal coefficients on a reliability matrix.

In: a units x coders matrix of nominal values (missing values allowed). Out: `percent_agreement`,
`cohen_kappa`, `krippendorff_alpha_nominal`, `gwet_ac1`, `pabak`. Undefined input (no unit with
two values, or a single value in the whole domain) raises `AgreementError`; these functions
never return NaN. Pure numpy / pandas. Formulas and sources: docs/agreement.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class AgreementError(ValueError):
    """The data do not define the requested agreement coefficient (or are malformed)."""



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
