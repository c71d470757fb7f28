"""Inter-coder agreement on code presence over survey answers. Pure numpy / pandas, no Dagster.

Three layers:

1. coefficients.py: general nominal coefficients on a reliability matrix (rows = units,
   columns = coders, missing values allowed): `percent_agreement`, `cohen_kappa`,
   `krippendorff_alpha_nominal`, `gwet_ac1`, `pabak`; `AgreementError` for undefined input.
2. binary.py: binary two-coder statistics from a 2x2 table (`binary_agreement`,
   `bootstrap_binary`), with closed forms that are vectorised over many tables.
3. this module: `agreement_table` (code presence on answers, pooled per code / dimension /
   framework / question / school year / overall for each coder pair) and `keyword_quality`
   (precision, recall and F1 of one coder against a reference set); its inputs are checked
   and indexed by agreement_inputs.py, each pair's 2x2 counts come from pair_counts.py.

The names of all three layers are importable from here (`__all__`).
Formulas and sources: docs/agreement.md.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY
from pipeline.core.reconciliation.agreement_inputs import (
    code_book,
    code_index,
    prepare,
    require,
    sorted_unique,
)
from pipeline.core.reconciliation.binary import (
    CI_STATS,
    DEFAULT_SEED,
    BinaryAgreement,
    binary_agreement,
    binary_stats,
    bootstrap_binary,
    bootstrap_many,
    undefined_reason,
)
from pipeline.core.reconciliation.coefficients import (
    AgreementError,
    cohen_kappa,
    gwet_ac1,
    krippendorff_alpha_nominal,
    pabak,
    percent_agreement,
)
from pipeline.core.reconciliation.pair_counts import pair_counts

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

LEVELS = ("code", "dimension", "framework", "question", "school_year", "overall")
_STATS = ("prevalence", *CI_STATS)
_GROUP_COLS = ("framework", "dimension", "code_id", "question_id", "school_year")


def _stable_int(*parts: object) -> int:
    raw = "\x1f".join("" if p is None or p is pd.NA else str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest(), "big")


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
    data = prepare(applications, units, codes)
    if coder_pairs is None:
        coder_pairs = list(itertools.combinations(sorted(units["coder"].unique()), 2))
    for a, b in coder_pairs:
        if a == b:
            raise AgreementError(f"coder pair ({a!r}, {b!r}) compares a coder with itself")
    if not coder_pairs:
        raise AgreementError("no coder pair to compare")

    per_pair = [pair_counts(a, b, data) for a, b in coder_pairs]
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
        intervals = bootstrap_many(cells, seeds, n_boot, confidence, clusters)
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
    require(applications_test, ["answer_id", *CODE_KEY], "applications_test")
    require(applications_ref, ["answer_id", *CODE_KEY], "applications_ref")
    require(units, ["answer_id"], "units")
    book = code_book(codes)
    n_codes = len(book)
    answer_pos = pd.Index(units["answer_id"].unique())

    def unit_keys(apps: pd.DataFrame, name: str) -> np.ndarray:
        apps = apps[apps["answer_id"].isin(answer_pos)]
        code_idx = code_index(apps, book, name)
        return sorted_unique(answer_pos.get_indexer(apps["answer_id"]) * n_codes + code_idx)

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
