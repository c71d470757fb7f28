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


def select(probs: np.ndarray, dims: list[tuple[str, str]], rule: SelectionRule = SelectionRule()
           ) -> list[list[int]]:
    """For each answer row of `probs` (n_answers, n_codes), the code indices to suggest."""
    dim_of = dimension_index(dims)
    members = [np.flatnonzero(dim_of == k) for k in range(dim_of.max() + 1 if len(dims) else 0)]
    out = []
    probs = np.asarray(probs)
    # every answer's category probabilities and their order at once (the per-answer loop
    # below only walks the few categories it may choose)
    all_dim_p = np.zeros((len(probs), len(members)), dtype=np.float64)
    for k, m in enumerate(members):
        if len(m):
            all_dim_p[:, k] = probs[:, m].max(axis=1)
    all_order = np.argsort(-all_dim_p, axis=1, kind="stable")
    for row, dim_p, order in zip(probs, all_dim_p, all_order, strict=True):
        top = dim_p[order[0]] if len(order) else 0.0
        chosen = []
        limit = rule.max_categories if top < rule.unsure_below else min(2, rule.max_categories)
        for rank, k in enumerate(order[:limit]):
            p = dim_p[k]
            if rank == 0:
                if p > rule.floor:
                    chosen.append(k)
            elif p >= rule.min_probability and p >= rule.relative * top:
                chosen.append(k)
        codes = []
        for k in chosen:
            m = members[k]
            ranked = m[np.argsort(-row[m], kind="stable")]
            codes.append(int(ranked[0]))
            for c in ranked[1 : rule.max_codes_per_category]:
                if row[c] >= max(rule.min_probability, row[ranked[0]] / 2):
                    codes.append(int(c))
        out.append(codes)
    return out


ZERO_SHOT_RULE = SelectionRule()
TRAINED_RULE = SelectionRule(min_probability=0.3, relative=0.3)


THRESHOLDS = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03)


def fitted_rule(probs: np.ndarray, truth: np.ndarray, dims: list[tuple[str, str]],
                max_mean_categories: float = 1.8) -> SelectionRule:
    """The selection rule for a trained model, chosen on its held-out predictions: of the
    thresholds that keep the mean categories per answer at most `max_mean_categories`, the one
    that finds a true category for the most answers. `truth` (n_answers, n_codes) is 0/1; only
    answers with a true code count. Falls back to TRAINED_RULE when no answer has one."""
    dim_of = dimension_index(dims)
    rows = np.flatnonzero(truth.sum(axis=1) > 0)
    if not len(rows):
        return TRAINED_RULE
    true_dims = [set(dim_of[np.flatnonzero(truth[r])]) for r in rows]
    best, best_hits = TRAINED_RULE, -1
    for threshold in THRESHOLDS:
        rule = SelectionRule(min_probability=threshold, relative=min(threshold, 0.3))
        picks = select(probs[rows], dims, rule)
        cats = [{dim_of[c] for c in codes} for codes in picks]
        if np.mean([len(c) for c in cats]) > max_mean_categories:
            break
        hits = sum(bool(c & t) for c, t in zip(cats, true_dims, strict=True))
        if hits > best_hits:
            best, best_hits = rule, hits
    return best
