"""2x2 cell counts of one coder pair at every level, and the answer patterns of their bootstrap.

In: `Prepared` inputs (core.reconciliation.agreement_inputs) and two coders. Out: one row per
(level, group): code, dimension, framework, question, school year, overall, with the units
both coders applied the code to, only one, or neither; and per row the distinct cells of its
answers with how many answers have each (the cluster bootstrap resamples answers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.frames import CODE_KEY
from pipeline.core.reconciliation.agreement_inputs import Prepared, sorted_unique


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


def pair_counts(
    coder_a: str, coder_b: str, data: Prepared
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
    coder_a: str, coder_b: str, data: Prepared, both_coded: np.ndarray
) -> dict[str, np.ndarray]:
    """The units (answer_idx * n_codes + code_idx, over the answers both coded) in each cell
    the two coders' applications fill: both applied, only A, only B."""
    n_codes = len(data.book)

    def unit_keys(coder: str) -> np.ndarray:
        """Sorted unique answer_idx * n_codes + code_idx of the coder's applications."""
        sel = (data.app_coder == coder) & both_coded[data.app_answer]
        return sorted_unique(data.app_answer[sel] * n_codes + data.app_code[sel])

    keys_a, keys_b = unit_keys(coder_a), unit_keys(coder_b)
    return {
        "n_both": np.intersect1d(keys_a, keys_b, assume_unique=True),
        "n_only_a": np.setdiff1d(keys_a, keys_b, assume_unique=True),
        "n_only_b": np.setdiff1d(keys_b, keys_a, assume_unique=True),
    }


def _code_level(book: pd.DataFrame, cells: dict[str, np.ndarray], n_answers: int) -> pd.DataFrame:
    """Per code: every code of the codebook, also those nobody applied."""
    n_codes = len(book)
    code_rows = book[CODE_KEY].copy()
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
