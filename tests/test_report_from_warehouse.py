"""The report's inputs worked out in DuckDB (pipeline.core.report.from_warehouse) are what the
pandas functions give on every final code: the coding sources per school year and the codes
that fire together."""

from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest

from pipeline.core.coding.codebook import co_firing_groups
from pipeline.core.marts import marts
from pipeline.core.report.from_warehouse import co_firing_candidates, provenance_counts

PROVENANCES = ["agreed", "adjudicated", "unresolved", "keyword", "trained_suggestion",
               "zero_shot_suggestion"]


def final_codes(seed: int) -> pd.DataFrame:
    """Random final codes with codes that fire together: in each question, "twin" is applied
    to exactly the answers of "base" (by other provenances too), "near" to the same number of
    answers but not the same ones, "rare" to two answers only."""
    rng = random.Random(seed)
    rows = []

    def add(answer, question, year, code, provenance=None, framework="scale"):
        rows.append({"answer_id": answer, "school_year": year, "question_id": question,
                     "framework": framework, "dimension": "depth", "code_id": code,
                     "provenance": provenance or rng.choice(PROVENANCES[:2] + PROVENANCES[3:]),
                     "decided_by": "x", "discrepancy_id": None})

    for question in ("worked", "improve"):
        answers = [f"{question}-{i}" for i in range(60)]
        years = {a: rng.choice(["2020-21", "2021-22", "2023-24"]) for a in answers}
        base = rng.sample(answers, 20)
        for a in base:
            add(a, question, years[a], "base")
            add(a, question, years[a], "twin")
            if rng.random() < 0.3:
                add(a, question, years[a], "twin", "unresolved")   # not counted: no change
            if rng.random() < 0.3:
                add(a, question, years[a], "base")                 # a repeat counts once
        others = [a for a in answers if a not in base]
        for a in rng.sample(others, 19) + [base[0]]:
            add(a, question, years[a], "near")
        for a in rng.sample(answers, 2):
            add(a, question, years[a], "rare")
            add(a, question, years[a], "rare_twin")
        for a in rng.sample(answers, 25):
            add(a, question, years[a], rng.choice(["x", "y", "z"]),
                rng.choice(PROVENANCES), framework=rng.choice(["scale", "other"]))
        add(f"{question}-only-unresolved", question, "2022-23", "base", "unresolved")
    frame = pd.DataFrame(rows)
    frame.loc[len(frame)] = {**rows[0], "school_year": None}   # not counted by crosstab
    return frame


def _con(frame: pd.DataFrame | None):
    con = duckdb.connect()
    con.execute("create schema coding")
    if frame is not None:
        con.register("frame", frame)
        con.execute("create table coding.final_codes as select * from frame")
    return con


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_from_warehouse_is_what_pandas_gives(seed):
    frame = final_codes(seed)
    con = _con(frame)
    pd.testing.assert_frame_equal(marts.coding_sources_of_counts(provenance_counts(con)),
                                  marts.coding_sources(frame))
    want = co_firing_groups(marts.counted_codes(frame))
    got = co_firing_groups(co_firing_candidates(con))
    pd.testing.assert_frame_equal(got, want)
    assert set(want["code_id"]) == {"base", "twin"}   # "rare" has too few answers
    # the candidates are only codes that may fire together: not "x", "y" or "z"
    assert set(co_firing_candidates(con)["code_id"]) <= {"base", "twin", "near"}


def test_from_warehouse_without_final_codes():
    for con in (_con(None), _con(final_codes(0).iloc[:0])):
        pd.testing.assert_frame_equal(
            marts.coding_sources_of_counts(provenance_counts(con)),
            marts.coding_sources(final_codes(0).iloc[:0]), check_index_type=False,
            check_dtype=False)
        assert co_firing_groups(co_firing_candidates(con)).empty
