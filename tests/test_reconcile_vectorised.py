"""The vectorised `discrepancies` and final-code decisions against the answer-by-answer loops they
replaced (kept here as the reference), on random dual coding with every decision kind: codes
both, one or neither coder applied, answers only one coder coded, keyword evidence or none,
accepted / rejected / conflicting adjudications."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from pipeline.core.frames import CODE_KEY
from pipeline.core.reconciliation import discrepancies as disc_module
from pipeline.core.reconciliation import final_codes as final_module
from pipeline.core.reconciliation.discrepancies import (
    DISCREPANCY_COLUMNS,
    _matched_texts,
    discrepancy_id,
    in_answer_order,
    keyword_frame,
)
from pipeline.core.reconciliation.queue import APPLY, DO_NOT_APPLY

CODES = [("scale", "depth", "collaboration"), ("scale", "sustainability", "time_allocated"),
         ("relational_trust", "respect", "listening"), ("scale", "depth", "data_use")]


def reference_discrepancies(applications, units, answers, keyword_applications, coder_a,
                            coder_b):
    """The loop implementation before vectorisation (commit ba3015b)."""
    coded = {c: set(units.loc[units["coder"] == c, "answer_id"]) for c in (coder_a, coder_b)}
    apps = applications[applications["coder"].isin([coder_a, coder_b])]
    by_key: dict[tuple, set[str]] = {}
    for row in apps[["answer_id", *CODE_KEY, "coder"]].itertuples(index=False):
        by_key.setdefault(tuple(row[:4]), set()).add(row.coder)
    kw = keyword_frame(keyword_applications)
    kw_evidence = {(a, f, c): _matched_texts(e) for a, f, c, e in
                   zip(kw["answer_id"], kw["framework"], kw["code_id"], kw["evidence"],
                       strict=True)}
    info = answers.set_index("answer_id")

    def decision(coder, answer, appliers):
        if coder in appliers:
            return "applied"
        return "not applied" if answer in coded[coder] else "not coded"

    rows = []
    for (answer, framework, dimension, code_id), appliers in by_key.items():
        if len(appliers) == 2:
            continue
        kw_key = (answer, framework, code_id)
        rows.append({
            "discrepancy_id": discrepancy_id(answer, framework, code_id), "answer_id": answer,
            "school_year": info.at[answer, "school_year"],
            "question_id": info.at[answer, "question_id"],
            "framework": framework, "dimension": dimension, "code_id": code_id,
            "answer_text": info.at[answer, "answer_text"],
            "coder_a": coder_a, "decision_a": decision(coder_a, answer, appliers),
            "coder_b": coder_b, "decision_b": decision(coder_b, answer, appliers),
            "keyword_applied": kw_key in kw_evidence,
            "keyword_evidence": kw_evidence.get(kw_key, ""),
        })
    out = pd.DataFrame(rows, columns=DISCREPANCY_COLUMNS)
    out["keyword_applied"] = out["keyword_applied"].astype(bool)
    return in_answer_order(out)


def reference_decided(discrepancies, adjudications):
    ok = adjudications[adjudications["accepted"].astype(bool)] if len(adjudications) else \
        adjudications
    by_id = {d: (dec, who) for d, dec, who in
             zip(ok.get("discrepancy_id", []), ok.get("decision", []), ok.get("adjudicator", []),
                 strict=True)}
    rows = []
    for d in discrepancies.itertuples(index=False):
        decision, who = by_id.get(d.discrepancy_id, (None, None))
        if decision == DO_NOT_APPLY:
            continue
        rows.append({"answer_id": d.answer_id, "framework": d.framework,
                     "dimension": d.dimension, "code_id": d.code_id,
                     "provenance": "adjudicated" if decision == APPLY else "unresolved",
                     "decided_by": who if decision == APPLY else None,
                     "discrepancy_id": d.discrepancy_id})
    return pd.DataFrame(rows, columns=["answer_id", *CODE_KEY, "provenance", "decided_by",
                                       "discrepancy_id"])


def random_coding(seed: int, n: int = 300):
    rng = random.Random(seed)
    answers = pd.DataFrame({
        "answer_id": [f"A{i:012x}" for i in range(n)],
        "school_year": [rng.choice(["2020-21", "2023-24"]) for _ in range(n)],
        "question_id": [rng.choice(["worked", "improve"]) for _ in range(n)],
        "answer_text": [f"answer {i} about teamwork" for i in range(n)],
    })
    rows, units, kw = [], [], []
    for a in answers["answer_id"]:
        for coder in ("jm", "ak"):
            if rng.random() < 0.9:
                units.append({"answer_id": a, "coder": coder})
            for f, d, c in CODES:
                if rng.random() < 0.3:
                    rows.append({"answer_id": a, "coder": coder, "framework": f,
                                 "dimension": d, "code_id": c})
                    if rng.random() < 0.1:  # a repeated row counts once
                        rows.append(rows[-1].copy())
        for f, d, c in CODES:
            if rng.random() < 0.25:
                ev = [{"matched_text": rng.choice(["team", "time", "data"]), "start": 0,
                       "end": 4}] * rng.choice([1, 2])
                kw.append({"id": a, "framework": f, "dimension": d, "code_id": c,
                           "evidence": json.dumps(ev)})
    return (answers, pd.DataFrame(rows), pd.DataFrame(units),
            pd.DataFrame(kw, columns=["id", "framework", "dimension", "code_id", "evidence"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discrepancies_equal_the_loop_implementation(seed):
    answers, apps, units, kw = random_coding(seed)
    got = disc_module.discrepancies(apps, units, answers, kw, "jm", "ak")
    want = reference_discrepancies(apps, units, answers, kw, "jm", "ak")
    assert len(got) > 50
    pd.testing.assert_frame_equal(got, want)


def test_discrepancies_of_nothing():
    answers, apps, units, kw = random_coding(0, n=5)
    got = disc_module.discrepancies(apps.iloc[:0], units, answers, kw.iloc[:0], "jm", "ak")
    want = reference_discrepancies(apps.iloc[:0], units, answers, kw.iloc[:0], "jm", "ak")
    assert list(got.columns) == DISCREPANCY_COLUMNS and got.empty and want.empty


@pytest.mark.parametrize("seed", [0, 1])
def test_decisions_equal_the_loop_implementation(seed):
    answers, apps, units, kw = random_coding(seed)
    disc = disc_module.discrepancies(apps, units, answers, kw, "jm", "ak")
    rng = random.Random(seed)
    adj = []
    for i, did in enumerate(disc["discrepancy_id"]):
        r = rng.random()
        if r < 0.6:
            adj.append({"discrepancy_id": did, "decision": rng.choice([APPLY, DO_NOT_APPLY]),
                        "adjudicator": rng.choice(["jm+ak", "lead"]),
                        "accepted": rng.random() < 0.9, "source_row": i})
    adj = pd.DataFrame(adj)
    got = final_module._decided(disc, adj)
    want = reference_decided(disc, adj)
    norm = lambda f: f.astype(object).where(f.notna(), None).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(norm(got), norm(want))
    assert set(got["provenance"]) == {"adjudicated", "unresolved"}
    empty = final_module._decided(disc, adj.iloc[:0])
    pd.testing.assert_frame_equal(norm(empty), norm(reference_decided(disc, adj.iloc[:0])))
