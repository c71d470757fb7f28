"""coding.suggestion_quality's counts without the answers x codes frame: the same table as the
cross join it replaced (kept here as the reference), on random answers and codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.suggest.quality import LEVELS, QUALITY_COLUMNS, _keys, quality_table, scores


def _cross_join_reference(suggested, keyword, reference, answers, codes, evaluation):
    """quality_table as it was: every coded answer x every key of a level, merged with the three
    sets (materialises n_answers x n_codes rows)."""
    answers = answers[["answer_id", "school_year", "question_id"]].drop_duplicates("answer_id")
    ids = set(answers["answer_id"])
    sources = sorted(set(suggested.get("source", pd.Series(dtype=object)).dropna()))
    source = sources[0] if len(sources) == 1 else ("mixed" if sources else None)
    parts = []
    for level in LEVELS:
        sets = {name: _keys(f[f["answer_id"].isin(ids)], level).assign(**{name: 1})
                for name, f in (("s", suggested), ("k", keyword), ("r", reference))}
        grid = _keys(codes.assign(answer_id=0), level).drop(columns="answer_id").drop_duplicates()
        keys = ["framework", "dimension", "code_id"]
        full = answers.merge(grid, how="cross")
        for name, f in sets.items():
            full = full.merge(f, on=["answer_id", *keys], how="left")
            full[name] = full[name].fillna(0).astype(int)
        full["tp"] = full["s"] & full["r"]
        full["fp"] = full["s"] & (1 - full["r"])
        full["fn"] = (1 - full["s"]) & full["r"]
        full["tn"] = (1 - full["s"]) & (1 - full["r"])
        full["ktp"] = full["k"] & full["r"]
        full["kfp"] = full["k"] & (1 - full["r"])
        full["kfn"] = (1 - full["k"]) & full["r"]
        full["ktn"] = (1 - full["k"]) & (1 - full["r"])
        by = ["school_year", "question_id", *keys]
        counts = (full.astype({k: object for k in keys}).fillna({k: "" for k in keys})
                  .groupby(by, sort=True)
                  [["tp", "fp", "fn", "tn", "ktp", "kfp", "kfn", "ktn"]].sum().reset_index())
        for k in keys:
            counts[k] = counts[k].replace("", None)
        counts["n_answers"] = counts[["tp", "fp", "fn", "tn"]].sum(axis=1)
        s = scores(counts["tp"], counts["fp"], counts["fn"], counts["tn"])
        k = scores(counts["ktp"], counts["kfp"], counts["kfn"], counts["ktn"])
        for name, values in s.items():
            counts[name] = values
        for name, values in k.items():
            counts["keyword_" + ("kappa" if name == "cohen_kappa" else name)] = values
        counts["level"] = level
        parts.append(counts)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out["evaluation"] = evaluation
    out["source"] = source
    out = out.reindex(columns=QUALITY_COLUMNS)
    for col in ("precision", "recall", "f1", "cohen_kappa", "keyword_precision",
                "keyword_recall", "keyword_f1", "keyword_kappa"):
        out[col] = out[col].astype("float64").round(4)
    return out.astype(object).where(out.notna(), None)


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    codes = pd.DataFrame([(f, f"{f}{d}", f"{f}{d}c{c}") for f in ("F", "G", "H")
                          for d in range(rng.integers(1, 4)) for c in range(rng.integers(1, 5))],
                         columns=["framework", "dimension", "code_id"])
    n = int(rng.integers(5, 80))
    answers = pd.DataFrame({
        "answer_id": [f"a{i:03d}" for i in range(n)],
        "school_year": rng.choice(["2021-22", "2022-23", "2023-24"], n),
        "question_id": rng.choice(["worked", "improve", "other"], n),
    })
    answers = pd.concat([answers, answers.head(2)], ignore_index=True)  # a repeated answer
    ids = [*answers["answer_id"], "not-coded-1", "not-coded-2"]

    def applied(p, **extra):
        rows = [(a, *c) for a in ids for c in codes.itertuples(index=False) if rng.random() < p]
        rows += [(ids[0], "F", "F9", "outside-the-codebook")]
        rows += rows[:3]  # duplicated rows
        return pd.DataFrame(rows, columns=["answer_id", "framework", "dimension", "code_id"]
                            ).assign(**extra)

    return (applied(0.15, source=rng.choice(["zero_shot", "trained"])), applied(0.1),
            applied(0.12), answers, codes)


@pytest.mark.parametrize("seed", range(12))
def test_counts_equal_the_cross_join_they_replaced(seed):
    suggested, keyword, reference, answers, codes = _random_case(seed)
    got = quality_table(suggested, keyword, reference, answers, codes, "stored")
    want = _cross_join_reference(suggested, keyword, reference, answers, codes, "stored")
    pd.testing.assert_frame_equal(got, want)
    assert got["tp"].sum() > 0 and got["tn"].sum() > 0  # the random case exercises both


def test_empty_sets_give_all_true_negatives():
    suggested, keyword, reference, answers, codes = _random_case(3)
    none = suggested.iloc[:0]
    got = quality_table(none, keyword.iloc[:0], reference.iloc[:0], answers, codes, "stored")
    want = _cross_join_reference(none, keyword.iloc[:0], reference.iloc[:0], answers, codes,
                                 "stored")
    pd.testing.assert_frame_equal(got, want)
    assert (got["tn"] == got["n_answers"]).all() and got["tp"].sum() == 0
