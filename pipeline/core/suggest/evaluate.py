"""How well suggested categories cover a researcher's categories.

Two readings of "the researcher's category is among the suggested ones", both reported:
`answer_recall` (an answer counts when at least one of its researcher categories is suggested)
and `category_recall` (each researcher category of each answer counts on its own). Only answers
with at least one researcher category count; `mean_categories` is the mean number of distinct
categories suggested per counted answer.
"""

from __future__ import annotations


def category_coverage(truth: dict[str, set], suggested: dict[str, set]) -> dict:
    ids = [a for a, cats in truth.items() if cats]
    if not ids:
        return {"answers": 0, "answer_recall": None, "category_recall": None,
                "mean_categories": None}
    hit_any = sum(1 for a in ids if truth[a] & suggested.get(a, set()))
    n_cats = sum(len(truth[a]) for a in ids)
    hit_cats = sum(len(truth[a] & suggested.get(a, set())) for a in ids)
    n_sugg = sum(len(suggested.get(a, set())) for a in ids)
    return {
        "answers": len(ids),
        "answer_recall": hit_any / len(ids),
        "category_recall": hit_cats / n_cats,
        "mean_categories": n_sugg / len(ids),
    }
