"""Inter-coder agreement, layer 2: binary two-coder statistics from 2x2 tables.

In: the cells of one or many 2x2 tables (both coders applied the code, only A, only B, neither).
Out: closed forms vectorised over many tables (`binary_stats`), percentile bootstrap intervals
(`bootstrap_binary`, `bootstrap_many`: units, or answers with all their units) and
`binary_agreement` for one table. Degenerate tables (only one value in the data) are expected
for rare codes: kappa and alpha are then None with a reason. Formulas: docs/agreement.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.reconciliation.coefficients import AgreementError

DEFAULT_SEED = 20241201
# Statistics that get bootstrap percentile intervals (<stat>_ci_low / <stat>_ci_high).
CI_STATS = ("percent_agreement", "cohen_kappa", "krippendorff_alpha", "gwet_ac1", "pabak")


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


def bootstrap_many(
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
    intervals = bootstrap_many(cells, [seed], n_boot, confidence)
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
