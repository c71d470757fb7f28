"""The quote picker on its contenders only (`quotes._contenders`, `quotes._reachable`) chooses
exactly what it chose
on every candidate: random final codes with many schools, repeated texts (also across schools
and years), mixed provenance and evidence, per_code 1..5, against the picker before the change
(its loop kept here as the reference)."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from pipeline.core.marts import quotes

TEXTS = ["Our coach really helped the team plan the next unit together.",
         "We finally had enough time to look at the student data as a group.",
         "The session was well organised and everyone had a voice today.",
         "More time to practise the new routines would help us a lot.",
         "Our [External Coach name] listened and gave us concrete next steps."]


def reference_pick(group: pd.DataFrame, per_code: int) -> list[dict]:
    """quotes._pick before the contenders (commit ba3015b)."""
    remaining = group.sort_values(["tier", "_no_evidence", "_hash"])
    years = sorted(remaining["school_year"].astype(str).unique())
    schools: set = set()
    texts: set = set()
    picked: list[dict] = []
    turn = 0
    while len(picked) < per_code and len(remaining):
        year = years[turn % len(years)]
        turn += 1
        pool = remaining[(remaining["school_year"].astype(str) == year)
                         & ~remaining["quote"].map(quotes._norm).isin(texts)]
        if pool.empty:
            if not (~remaining["quote"].map(quotes._norm).isin(texts)).any():
                break
            continue
        new_school = ~pool["school_id"].isin(schools)
        order = ["tier", "_old", "_no_evidence", "_hash"]
        best = pool.assign(_old=~new_school).sort_values(order).iloc[0]
        row = best.to_dict()
        row["reason"] = quotes._reason(row, bool(new_school.loc[best.name]),
                                       (turn - 1) // len(years))
        picked.append(row)
        schools.add(row["school_id"])
        texts.add(quotes._norm(row["quote"]))
        remaining = remaining.drop(index=best.name)
    return picked


def random_inputs(seed: int, n: int = 1500, years=("2020-21", "2023-24"), schools: int = 12,
                  weeks: int = 40):
    rng = random.Random(seed)
    school_ids = [f"S{k}" for k in range(schools)] + [None]
    answers, final, apps = [], [], []
    for i in range(n):
        aid = f"A{i:012x}"
        text = rng.choice(TEXTS) + ("" if rng.random() < 0.6 else f" Week {rng.randint(1, weeks)}.")
        if rng.random() < 0.2:
            text = "  " + text.upper() + " "  # same text once normalised
        answers.append({"answer_id": aid, "school_year": rng.choice(years),
                        "question_id": rng.choice(["worked", "improve"]),
                        "session_number": rng.randint(1, 9),
                        "school_id": rng.choice(school_ids),
                        "answer_text": text, "non_substantive": rng.random() < 0.05})
        for code in rng.sample(["collaboration", "time_allocated", "data_use"], 2):
            prov = rng.choice(["agreed", "agreed", "adjudicated", "keyword", "unresolved"])
            final.append({"answer_id": aid, "school_year": answers[-1]["school_year"],
                          "question_id": answers[-1]["question_id"], "framework": "scale",
                          "dimension": "depth", "code_id": code, "provenance": prov,
                          "decided_by": "a+b"})
            if rng.random() < 0.5:
                word = text.strip().split()[1]
                apps.append({"answer_id": aid, "coder": "keyword", "framework": "scale",
                             "dimension": "depth", "code_id": code,
                             "evidence": json.dumps([{"matched_text": word}])})
    return pd.DataFrame(answers), pd.DataFrame(final), pd.DataFrame(apps)


@pytest.mark.parametrize("seed,per_code", [(0, 5), (1, 1), (2, 3), (3, 5)])
def test_contenders_pick_what_every_candidate_picked(seed, per_code, monkeypatch):
    answers, final, apps = random_inputs(seed)
    got = quotes.exemplar_quotes(final, answers, apps, per_code=per_code)
    monkeypatch.setattr(quotes, "_contenders", lambda cand, key, per_code: cand)
    monkeypatch.setattr(quotes, "_reachable", lambda cand, per_code: cand)
    monkeypatch.setattr(quotes, "_pick", reference_pick)
    want = quotes.exemplar_quotes(final, answers, apps, per_code=per_code)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == 6 * per_code  # 2 questions x 3 codes, each with plenty of candidates


@pytest.mark.parametrize("seed,per_code,schools,weeks", [
    (10, 1, 3, 2), (11, 2, 4, 3), (12, 3, 6, 4), (13, 5, 8, 6), (14, 6, 20, 3), (15, 4, 30, 40)])
def test_reachable_contenders_pick_what_every_candidate_picked(seed, per_code, schools, weeks,
                                                               monkeypatch):
    """`_reachable` (a year's contenders whatever the other years hold) where it bites: five
    years, few schools, texts repeated across schools (a text taken or a school quoted
    excludes many candidates), a missing school as None and as NaN."""
    years = ("2019-20", "2020-21", "2021-22", "2022-23", "2023-24")
    answers, final, apps = random_inputs(seed, 2500, years, schools, weeks)
    answers.loc[answers.index % 13 == 0, "school_id"] = float("nan")
    cand = quotes._contenders(quotes._candidates(final, answers, apps, 40, 300, "keyword"),
                              quotes.KEY, per_code)
    reduced = quotes._reachable(cand, per_code)
    assert len(reduced) < len(cand) / 2   # it bites
    got = quotes.exemplar_quotes(final, answers, apps, per_code=per_code)
    monkeypatch.setattr(quotes, "_reachable", lambda cand, per_code: cand)
    monkeypatch.setattr(quotes, "_pick", reference_pick)
    want = quotes.exemplar_quotes(final, answers, apps, per_code=per_code)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == 6 * per_code


def test_the_text_normalisation_is_the_regex_one():
    """quotes._norm (str.split) gives what re.sub(r"\\s+", " ", text).strip().casefold() gave,
    for every kind of whitespace Python's re calls \\s."""
    import re
    import sys

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert len(spaces) > 20                           # ASCII, NBSP, EN/EM spaces, separators
    texts = ["  Straße\tund\n\nSTRASSE  ", "a" + "".join(spaces) + "b", "".join(spaces), "x",
             "", *(f"{s}We{s}{s}met{s}" for s in spaces)]
    for text in texts:
        assert quotes._norm(text) == re.sub(r"\s+", " ", text).strip().casefold(), repr(text)


def _with_sessions(seed: int):
    """random_inputs with a few answers without a session number."""
    answers, final, apps = random_inputs(seed)
    answers.loc[answers.index % 17 == 0, "session_number"] = None
    answers["session_number"] = answers["session_number"].astype("Int64")
    return answers, final, apps


@pytest.mark.parametrize("seed,per_code", [(4, 5), (5, 2)])
def test_contenders_made_per_session_pick_what_all_answers_pick(seed, per_code):
    answers, final, apps = _with_sessions(seed)
    want = quotes.exemplar_quotes(final, answers, apps, per_code=per_code)
    parts = []
    for _key, part in answers.groupby(["school_year", "session_number"], dropna=False):
        ids = set(part["answer_id"])
        parts.append(quotes.contenders(final[final["answer_id"].isin(ids)], part,
                                       apps[apps["answer_id"].isin(ids)], per_code=per_code))
    got = quotes.quotes_from(parts[::-1], per_code=per_code)   # in any order
    pd.testing.assert_frame_equal(got, want)
    assert len(parts) > 15 and len(got) == 6 * per_code


@pytest.mark.parametrize(("forked", "batched"), [(False, False), (True, False), (False, True)],
                         ids=["in this process", "forked", "read in batches"])
def test_kept_session_contenders_give_the_quotes_of_every_answer(tmp_path, monkeypatch,
                                                                   forked, batched):
    """quotes_sessions.kept_quotes on a warehouse: the quotes `exemplar_quotes` makes of every
    answer, on the first run, from the cache, and after one session's text changed (that
    session alone computed again); an unreadable entry is computed again (a year's from its
    kept sessions, a session's from its rows). The same when the sessions' and the years'
    contenders are made (and kept) in forked workers, and when the sessions' rows are read a
    few sessions at a time."""
    import duckdb

    from pipeline.core import parallel
    from pipeline.core.marts import quotes_sessions
    from pipeline.core.result_cache import ResultCache

    forks = []
    if forked:
        monkeypatch.setattr(quotes_sessions, "PARALLEL_MIN_ANSWERS", 0)

        def counted(func, items, workers=None):
            forks.append(len(items) if workers is None else 0)
            return parallel.map_forked(func, items, workers=workers)

        monkeypatch.setattr(quotes_sessions, "map_forked", counted)
    reads = []
    if batched:
        read_sessions = quotes_sessions._read_sessions

        def counted_reads(con, sessions, coder):
            reads.append(len(sessions))
            return read_sessions(con, sessions, coder)

        monkeypatch.setattr(quotes_sessions, "_read_sessions", counted_reads)

    answers, final, apps = _with_sessions(6)
    if batched:
        monkeypatch.setattr(quotes_sessions, "READ_BATCH_ANSWERS", len(answers) // 4)
    apps = pd.concat([apps, apps.head(50).assign(coder="other")], ignore_index=True)
    con = duckdb.connect()
    for schema in ("staging", "coding"):
        con.execute(f"create schema {schema}")

    def load(answers):
        for table, frame in (("staging.answers", answers), ("coding.final_codes", final),
                             ("coding.keyword_applications", apps)):
            con.register("frame", frame)
            con.execute(f"create or replace table {table} as select * from frame")
            con.unregister("frame")

    cache = ResultCache(tmp_path / "kept", max_files=500)
    load(answers)
    sessions = len(answers.groupby(["school_year", "session_number"], dropna=False))

    def check(answers, n_reused):
        want = quotes.exemplar_quotes(final, con.execute("select * from staging.answers").df(),
                                      apps)
        got, reused, computed = quotes_sessions.kept_quotes(con, cache, None)
        pd.testing.assert_frame_equal(got, want)
        assert (len(reused), len(computed)) == (n_reused, sessions - n_reused)
        return computed

    check(answers, 0)
    if batched:   # the first run read every session, a few at a time
        assert len(reads) >= 4 and sum(reads) == sessions
    check(answers, sessions)
    edited = answers.copy()
    row = edited.index[(edited["school_year"] == "2023-24") & (edited["session_number"] == 4)][0]
    edited.loc[row, "answer_text"] = "A brand new answer that is long enough to be quoted here."
    load(edited)
    assert check(edited, sessions - 1) == ["2023-24 session 4"]
    assert len(list((tmp_path / "kept").glob("2023-24-year--*.bin"))) == 1   # the new one

    def spoil(pattern):
        for f in (tmp_path / "kept").glob(pattern):
            f.write_bytes(f.read_bytes().replace(b'"columns"', b'"kolumns"'))

    spoil("2020-21-session-none--*.bin")   # not read: the year is kept whole
    assert check(edited, sessions) == []
    spoil("2020-21-year--*.bin")           # the year made again of its sessions
    assert check(edited, sessions - 1) == ["2020-21 session ?"]
    assert check(edited, sessions) == []
    assert quotes_sessions.kept_quotes(duckdb.connect(), cache, None)[0].empty
    assert (max(forks) == sessions) if forked else forks == []


def test_sessions_are_read_in_batches_of_bounded_answers(monkeypatch):
    from pipeline.core.marts import quotes_sessions

    monkeypatch.setattr(quotes_sessions, "READ_BATCH_ANSWERS", 10)
    sizes = {"a": 4, "b": 5, "c": 3, "d": 12, "e": 1}
    batches = quotes_sessions._batches(list(sizes), sizes)
    assert batches == [["a", "b"], ["c"], ["d"], ["e"]]   # in order; a large session alone
    assert quotes_sessions._batches([], {}) == []


def test_kept_contenders_read_back_as_written():
    """The cache's JSON gives the frame back: dtypes, None, NaN and pd.NA each in place (an
    object column holding all three keeps them apart)."""
    import math

    from pipeline.core.marts import quotes_sessions

    frame = pd.DataFrame({
        "school_id": pd.Series(["s1", None, float("nan"), pd.NA, "é"], dtype=object),
        "session_number": pd.Series([1, pd.NA, 3, 4, pd.NA], dtype="Int64"),
        "tier": [1.5, float("nan"), 2.0, 0.0, -1.0],
        "agreed": [True, False, True, True, False],
        "n_chars": np.array([40, 41, 42, 43, 44], dtype=np.int64),
    })
    back = quotes_sessions._decoded(quotes_sessions._encoded(frame), "test")
    pd.testing.assert_frame_equal(back, frame)
    school = back["school_id"].tolist()
    assert school[1] is None and math.isnan(school[2]) and school[3] is pd.NA
    assert quotes_sessions._decoded(b'{"columns": [["a", "object", 3]]}', "x") is None
    assert quotes_sessions._decoded(b'{"columns": [["a", "int64", ["x"]]]}', "x") is None
