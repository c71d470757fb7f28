"""Which codes to suggest for an answer, from its probability for every code.

Coders read suggestions by category first, so the rule works on categories (framework
dimensions): a category's probability is that of its most likely code. Every substantive answer
gets its most likely category; further categories only when they are likely in their own right
(`min_probability`) and close to the first (`relative`); a third (up to `max_categories`) only
when the model is unsure of the first (below `unsure_below`): long answers touch many codes a
little, and a confident first category does not need two more beside it. Within a
chosen category, its most likely code, plus any other of its codes that reaches
`min_probability` (at most `max_codes_per_category`). The defaults keep about two categories per
answer at most on average (docs/suggestions.md has the figures they were chosen on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SelectionRule:
    min_probability: float = 0.04
    relative: float = 0.1
    max_categories: int = 3
    unsure_below: float = 0.5  # more than two categories only when the first is below this
    max_codes_per_category: int = 2
    floor: float = 0.0  # below this, not even the first category is suggested


def dimension_index(dims: list[tuple[str, str]]) -> np.ndarray:
    """For each code, the index of its (framework, dimension) among the sorted distinct ones."""
    keys = sorted(set(dims))
    return np.array([keys.index(d) for d in dims], dtype=np.int64)


def _members(dims: list[tuple[str, str]]) -> tuple[np.ndarray, list[np.ndarray]]:
    dim_of = dimension_index(dims)
    return dim_of, [np.flatnonzero(dim_of == k)
                    for k in range(dim_of.max() + 1 if len(dims) else 0)]


def _choices(probs: np.ndarray, members: list[np.ndarray], rule: SelectionRule
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every answer's picks at once: `cats` (n, R) its categories by rank, `chosen` (n, R)
    which of them are suggested, `codes` (n, R, J) the code indices suggested in each (-1:
    none), R = max_categories and J = max_codes_per_category at most. The rule, rank by rank:
    the first category when above `floor`; another when it reaches `min_probability` and
    `relative` x the first's, and only within `limit` ranks (max_categories when the first is
    below `unsure_below`, else 2); in a chosen category its most likely code, and the next
    ones that reach `min_probability` and half the first's (stable order on ties)."""
    n, n_dims = len(probs), len(members)
    dim_p = np.zeros((n, n_dims), dtype=np.float64)
    for k, m in enumerate(members):
        if len(m):
            dim_p[:, k] = probs[:, m].max(axis=1)
    n_ranks = max(0, min(rule.max_categories, n_dims))
    cats = np.argsort(-dim_p, axis=1, kind="stable")[:, :n_ranks]
    p = np.take_along_axis(dim_p, cats, axis=1)
    top = p[:, 0] if n_ranks else np.zeros(n)
    limit = np.where(top < rule.unsure_below, rule.max_categories, min(2, rule.max_categories))
    chosen = np.zeros((n, n_ranks), dtype=bool)
    if n_ranks:
        chosen[:, 0] = p[:, 0] > rule.floor
        chosen[:, 1:] = (p[:, 1:] >= rule.min_probability) & (p[:, 1:] >= rule.relative * top[:, None])
        chosen &= np.arange(n_ranks)[None, :] < limit[:, None]
    width = max(1, rule.max_codes_per_category)
    per_dim = np.full((n, n_dims, width), -1, dtype=np.int64)
    rows = np.arange(n)
    for k, m in enumerate(members):
        if not len(m):
            continue
        ranked = m[np.argsort(-probs[:, m], axis=1, kind="stable")]
        first = ranked[:, 0]
        per_dim[:, k, 0] = first
        half = probs[rows, first] / 2
        bar = np.where(half > rule.min_probability, half, rule.min_probability)  # Python's max
        for j in range(1, min(rule.max_codes_per_category, len(m))):
            c = ranked[:, j]
            per_dim[:, k, j] = np.where(probs[rows, c] >= bar, c, -1)
    codes = per_dim[rows[:, None], cats]  # (n, R, J)
    codes[~chosen] = -1
    return cats, chosen, codes


def select(probs: np.ndarray, dims: list[tuple[str, str]], rule: SelectionRule = SelectionRule()
           ) -> list[list[int]]:
    """For each answer row of `probs` (n_answers, n_codes), the code indices to suggest: its
    chosen categories in rank order, in each the code picked first, then the others picked.
    (Computed for every answer at once by _choices; the picks a per-answer loop made.)"""
    probs = np.asarray(probs)
    if not len(probs):
        return []
    _, members = _members(dims)
    _, _, codes = _choices(probs, members, rule)
    flat = codes.reshape(len(probs), -1)
    keep = flat >= 0
    values = flat[keep].tolist()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    starts = [0, *ends[:-1]]
    return [values[a:b] for a, b in zip(starts, ends, strict=True)]


ZERO_SHOT_RULE = SelectionRule()
TRAINED_RULE = SelectionRule(min_probability=0.3, relative=0.3)


THRESHOLDS = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03)


def fitted_rule(probs: np.ndarray, truth: np.ndarray, dims: list[tuple[str, str]],
                max_mean_categories: float = 1.8) -> SelectionRule:
    """The selection rule for a trained model, chosen on its held-out predictions: of the
    thresholds that keep the mean categories per answer at most `max_mean_categories`, the one
    that finds a true category for the most answers. `truth` (n_answers, n_codes) is 0/1; only
    answers with a true code count. Falls back to TRAINED_RULE when no answer has one."""
    dim_of, members = _members(dims)
    rows = np.flatnonzero(truth.sum(axis=1) > 0)
    if not len(rows):
        return TRAINED_RULE
    held_out = np.asarray(probs)[rows]
    true_dims = np.zeros((len(rows), len(members)), dtype=bool)
    for k, m in enumerate(members):
        true_dims[:, k] = truth[rows][:, m].any(axis=1)
    best, best_hits = TRAINED_RULE, -1
    for threshold in THRESHOLDS:
        rule = SelectionRule(min_probability=threshold, relative=min(threshold, 0.3))
        cats, chosen, _ = _choices(held_out, members, rule)
        # each chosen category is one distinct category of the answer's picks
        if np.mean(chosen.sum(axis=1)) > max_mean_categories:
            break
        picked = np.zeros_like(true_dims)
        picked[np.nonzero(chosen)[0], cats[chosen]] = True
        hits = int((picked & true_dims).any(axis=1).sum())
        if hits > best_hits:
            best, best_hits = rule, hits
    return best
