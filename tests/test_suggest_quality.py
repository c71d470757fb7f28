"""coding.suggestion_quality's counts without the answers x codes frame: the same table as the
cross join it replaced (kept here as the reference), on random answers and codes; and the table
one school year at a time (the asset's partitions): the same 'stored' rows, pooled figures
from summed counts, no cross-validation for a year it cannot group by school."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.suggest import stage
from pipeline.core.suggest.quality import (
    LEVELS,
    QUALITY_COLUMNS,
    _keys,
    pooled_dimension_kappa,
    quality_table,
    scores,
)


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
    if seed % 2:   # an answer without a question or a year: in no (year, question) row
        answers.loc[3, "question_id" if seed % 4 == 1 else "school_year"] = None
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


# --- one school year per partition ------------------------------------------------------------

def _coded_frames(seed: int):
    """Random frames in the warehouse's shape for stage.suggestion_quality: answers of three
    years (all coded by two coders), suggestions, keyword codes and human final codes."""
    suggested, keyword, reference, answers, codes = _random_case(seed)
    answers = answers.drop_duplicates("answer_id").reset_index(drop=True)
    answers = answers.assign(non_substantive=False,
                             school_id=[f"school_{i % 4:08x}" for i in range(len(answers))])
    units = pd.concat([answers[["answer_id", "school_year"]].assign(coder=c)
                       for c in ("a", "b")], ignore_index=True)
    final = reference.assign(provenance="agreed").merge(
        answers[["answer_id", "school_year"]], on="answer_id")
    with_year = {name: f.merge(answers[["answer_id", "school_year"]], on="answer_id")
                 for name, f in (("s", suggested), ("k", keyword))}
    return with_year["s"], with_year["k"], final, answers, units, codes


@pytest.mark.parametrize("seed", range(4))
def test_each_years_stored_rows_are_the_all_years_tables(seed):
    """The 'stored' evaluation per partition (one year's rows in) gives the counts and scores
    the all-years asset gave for that year: partitioning changes the cross-validation, and
    `source`, which now names the year's own suggesters (none for a year with no
    suggestion, where the all-years table named every year's)."""
    sugg, keyword, final, answers, units, codes = _coded_frames(seed)
    whole = stage.suggestion_quality(sugg, keyword, final, answers, units, codes)
    per_year = []
    for year in sorted(answers["school_year"].unique()):
        pick = {name: f[f["school_year"] == year]
                for name, f in (("s", sugg), ("k", keyword), ("f", final), ("a", answers),
                                ("u", units))}
        part = stage.suggestion_quality(pick["s"], pick["k"], pick["f"], pick["a"], pick["u"],
                                        codes)
        assert set(part["school_year"]) == {year}
        own = sorted(set(pick["s"]["source"]))
        assert set(part["source"]) == {own[0] if len(own) == 1 else ("mixed" if own else None)}
        per_year.append(part)
    by = ["evaluation", "level", "framework", "dimension", "code_id", "question_id",
          "school_year"]
    got = (pd.concat(per_year).astype({k: str for k in by}).sort_values(by)
           .reset_index(drop=True).drop(columns="source"))
    want = (whole.astype({k: str for k in by}).sort_values(by).reset_index(drop=True)
            .drop(columns="source"))
    pd.testing.assert_frame_equal(got, want)


def test_pooled_kappa_from_per_year_rows_is_kappa_of_the_summed_counts():
    sugg, keyword, final, answers, units, codes = _coded_frames(5)
    table = stage.suggestion_quality(sugg, keyword, final, answers, units, codes)
    pooled = pooled_dimension_kappa(table)
    dims = table[table["level"] == "dimension"]
    assert dims["school_year"].nunique() >= 2  # pooled over several years' rows
    for r in pooled.itertuples():
        rows = dims[(dims["framework"] == r.framework) & (dims["dimension"] == r.dimension)]
        tp, fp, fn, tn = (rows[c].sum() for c in ("tp", "fp", "fn", "tn"))
        assert r.n == tp + fp + fn + tn
        want = scores([tp], [fp], [fn], [tn])["cohen_kappa"][0]
        assert (np.isnan(want) and np.isnan(r.cohen_kappa)) or r.cohen_kappa == round(want, 3)


def test_a_year_without_two_schools_or_coded_answers_gets_no_cv():
    coded = pd.DataFrame({"answer_id": ["a", "b"], "school_id": ["s1", "s1"]})
    sugg = pd.DataFrame({"answer_id": ["a"]})
    assert "fewer than 2 schools" in stage.no_cv_reason(coded, sugg)
    assert "no answer" in stage.no_cv_reason(coded.iloc[:0], sugg)
    two = coded.assign(school_id=["s1", "s2"])
    assert "suggester" in stage.no_cv_reason(two, sugg.iloc[:0])
    assert stage.no_cv_reason(two, sugg) is None


def test_cv_sample_caps_a_year_by_a_fixed_rule():
    """stage.cv_sample: every coded answer under the cap; over it, the same answers whatever
    the row order, and new answers only push old ones out (never bring one back in)."""
    from pipeline.core.suggest.stage import cv_sample

    coded = pd.DataFrame({"answer_id": [f"A{i:06d}" for i in range(200)],
                          "school_id": [f"s{i % 7}" for i in range(200)]})
    assert cv_sample(coded, 500).equals(coded)
    picked = cv_sample(coded, 50)
    assert len(picked) == 50 and picked["answer_id"].is_unique
    shuffled = coded.sample(frac=1.0, random_state=3)
    assert set(cv_sample(shuffled, 50)["answer_id"]) == set(picked["answer_id"])
    more = pd.concat([coded, pd.DataFrame({"answer_id": [f"B{i:06d}" for i in range(40)],
                                           "school_id": "s1"})], ignore_index=True)
    again = set(cv_sample(more, 50)["answer_id"])
    assert {a for a in again if a.startswith("A")} <= set(picked["answer_id"])
    assert again != set(picked["answer_id"])  # some of the 40 new answers got in


def test_training_sample_caps_the_training_answers_and_their_codes():
    """stage.training_sample: the training answers and their codes whole under the cap; over
    it, the answers cv_sample's rule picks and only their codes."""
    from pipeline.core.suggest.stage import cv_sample, training_sample

    answers = pd.DataFrame({"answer_id": [f"A{i:06d}" for i in range(300)],
                            "answer_text": [f"text {i}" for i in range(300)]})
    codes = pd.DataFrame({"answer_id": [f"A{i:06d}" for i in range(0, 300, 2)],
                          "code_id": "C1"})
    whole, whole_codes = training_sample(answers, codes, 300)
    assert whole is answers and whole_codes.equals(codes)
    # the codes of answers not in the training answers are left out, under the cap too
    stray = pd.DataFrame({"answer_id": ["B000001"], "code_id": ["C1"]})
    assert training_sample(answers, pd.concat([codes, stray]), 300)[1].equals(codes)
    sample, sample_codes = training_sample(answers, codes, 100)
    assert sample.equals(cv_sample(answers, 100))
    assert set(sample_codes["answer_id"]) == set(sample["answer_id"]) & set(codes["answer_id"])
    assert 0 < len(sample_codes) < len(codes)
