"""Inter-coder agreement on code presence over survey answers. Pure numpy / pandas, no Dagster.

Three layers, one module each:

1. coefficients.py: general nominal coefficients on a reliability matrix (rows = units,
   columns = coders, missing values allowed): `percent_agreement`, `cohen_kappa`,
   `krippendorff_alpha_nominal`, `gwet_ac1`, `pabak`; `AgreementError` for undefined input.
2. binary.py: binary two-coder statistics from a 2x2 table (`binary_agreement`,
   `bootstrap_binary`), with closed forms that are vectorised over many tables.
3. this module: `agreement_table` (code presence on answers, pooled per code / dimension /
   framework / question / school year / overall for each coder pair) and `keyword_quality`
   (precision, recall and F1 of one coder against a reference set).

The names of all three layers are importable from here (`__all__`).
Formulas and sources: docs/agreement.md.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY, require_columns
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
_CODE_KEY = CODE_KEY


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


Clusters = list[tuple[np.ndarray, np.ndarray] | None]


def _pair_counts(
    coder_a: str, coder_b: str, data: _Prepared
) -> tuple[pd.DataFrame, Clusters]:
    """2x2 cell counts for every (level, group) of one coder pair, from integer keys, and per
    row the answers' cell patterns its bootstrap resamples (None: one unit per answer)."""
    n_codes = len(data.book)
    both_coded = data.coded.get(coder_a, data.no_answers) & data.coded.get(coder_b, data.no_answers)
    n_answers = int(both_coded.sum())
    cells = _unit_cells(coder_a, coder_b, data, both_coded)

    # Each unit's answer, as a position among the answers both coders coded (the bootstrap of a
    # pooled row resamples those answers, each with all its units).
    position = np.cumsum(both_coded) - 1
    answer_of = {cell: position[keys // n_codes] for cell, keys in cells.items()}

    code_rows = _code_level(data.book, cells, n_answers)
    parts, clusters = [code_rows], [None] * len(code_rows)
    for rows, patterns in (
        *_code_group_levels(code_rows, cells, answer_of, n_answers),
        *_answer_group_levels(data.answers, both_coded, cells, answer_of, n_codes),
        _overall_level(cells, answer_of, n_answers, n_codes),
    ):
        parts.append(rows)
        clusters += patterns

    out = pd.concat(parts, ignore_index=True)
    out["n_neither"] = out["n_units"] - out["n_both"] - out["n_only_a"] - out["n_only_b"]
    out.insert(0, "coder_b", coder_b)
    out.insert(0, "coder_a", coder_a)
    return out, clusters


def _unit_cells(
    coder_a: str, coder_b: str, data: _Prepared, both_coded: np.ndarray
) -> dict[str, np.ndarray]:
    """The units (answer_idx * n_codes + code_idx, over the answers both coded) in each cell
    the two coders' applications fill: both applied, only A, only B."""
    n_codes = len(data.book)

    def unit_keys(coder: str) -> np.ndarray:
        """Sorted unique answer_idx * n_codes + code_idx of the coder's applications."""
        sel = (data.app_coder == coder) & both_coded[data.app_answer]
        return _sorted_unique(data.app_answer[sel] * n_codes + data.app_code[sel])

    keys_a, keys_b = unit_keys(coder_a), unit_keys(coder_b)
    return {
        "n_both": np.intersect1d(keys_a, keys_b, assume_unique=True),
        "n_only_a": np.setdiff1d(keys_a, keys_b, assume_unique=True),
        "n_only_b": np.setdiff1d(keys_b, keys_a, assume_unique=True),
    }


def _code_level(book: pd.DataFrame, cells: dict[str, np.ndarray], n_answers: int) -> pd.DataFrame:
    """Per code: every code of the codebook, also those nobody applied."""
    n_codes = len(book)
    code_rows = book[_CODE_KEY].copy()
    for cell, keys in cells.items():
        code_rows[cell] = np.bincount(keys % n_codes, minlength=n_codes)
    code_rows["n_answers"] = n_answers
    code_rows["n_units"] = n_answers
    return code_rows.assign(level="code")


def _code_group_levels(
    code_rows: pd.DataFrame,
    cells: dict[str, np.ndarray],
    answer_of: dict[str, np.ndarray],
    n_answers: int,
) -> list[tuple[pd.DataFrame, Clusters]]:
    """Per dimension and per framework: units = answers x codes in the group."""
    n_codes = len(code_rows)
    code_of = {cell: keys % n_codes for cell, keys in cells.items()}
    out = []
    for level, group_keys in (
        ("dimension", ["framework", "dimension"]),
        ("framework", ["framework"]),
    ):
        grouped = code_rows.drop(columns="level").groupby(group_keys, sort=False, dropna=False)
        group_idx = grouped.ngroup().to_numpy()  # same order as the aggregated rows
        rows = grouped[list(cells)].sum().join(grouped.size().rename("n_codes")).reset_index()
        rows["n_answers"] = n_answers
        codes_per_group = rows.pop("n_codes").to_numpy()
        rows["n_units"] = n_answers * codes_per_group
        patterns = _answer_patterns(
            answer_of, {c: group_idx[k] for c, k in code_of.items()}, len(rows), n_answers,
            codes_per_group, None,
        )  # fmt: skip
        out.append((rows.assign(level=level), patterns))
    return out


def _answer_group_levels(
    answers: pd.DataFrame,
    both_coded: np.ndarray,
    cells: dict[str, np.ndarray],
    answer_of: dict[str, np.ndarray],
    n_codes: int,
) -> list[tuple[pd.DataFrame, Clusters]]:
    """Per question and per school year: units = answers in the group x all codes (groups
    without an answer both coded are left out)."""
    n_answers = int(both_coded.sum())
    out = []
    for level, column in (("question", "question_id"), ("school_year", "school_year")):
        group_idx, labels = pd.factorize(answers[column], use_na_sentinel=False)
        sizes = np.bincount(group_idx[both_coded], minlength=len(labels))
        rows = pd.DataFrame({column: labels, "n_answers": sizes})
        unit_group = {cell: group_idx[keys // n_codes] for cell, keys in cells.items()}
        for cell, groups in unit_group.items():
            rows[cell] = np.bincount(groups, minlength=len(labels))
        rows["n_units"] = rows["n_answers"] * n_codes
        kept = rows["n_answers"].to_numpy() > 0
        patterns = _answer_patterns(
            answer_of, unit_group, len(labels), n_answers, np.full(len(labels), n_codes),
            group_idx[both_coded],
        )  # fmt: skip
        out.append((rows[kept].assign(level=level),
                    [p for p, keep in zip(patterns, kept, strict=True) if keep]))
    return out


def _overall_level(
    cells: dict[str, np.ndarray], answer_of: dict[str, np.ndarray], n_answers: int, n_codes: int
) -> tuple[pd.DataFrame, Clusters]:
    """One row over every unit of the pair."""
    overall = {cell: [len(keys)] for cell, keys in cells.items()}
    rows = pd.DataFrame(overall).assign(
        n_answers=n_answers, n_units=n_answers * n_codes, level="overall"
    )
    patterns = _answer_patterns(
        answer_of, {c: np.zeros(len(k), dtype=np.int64) for c, k in cells.items()}, 1,
        n_answers, np.array([n_codes]), None,
    )  # fmt: skip
    return rows, patterns


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
