"""Exemplar quotes: the documented rule (counted codes only, length limits, never
non-substantive, agreed and evidenced first, spread across years and schools), determinism."""

from __future__ import annotations

import json

import pandas as pd
from test_marts import Y1, Y2, make_answers, make_codes, make_final_codes

from pipeline.core.marts import quotes


def _evidence(text: str, phrase: str) -> str:
    start = text.casefold().index(phrase.casefold())
    return json.dumps([{"pattern": phrase, "matched_text": text[start:start + len(phrase)],
                        "start": start, "end": start + len(phrase)}])


def make_applications() -> pd.DataFrame:
    ans = make_answers().set_index("answer_id")["answer_text"]
    rows = []
    for a, code, phrase in [("a1", "coaching_support", "coaching support"),
                            ("a1", "collaboration", "collaboration"),
                            ("a2", "coaching_support", "coaching support"),
                            ("a3", "collaboration", "collaboration"),
                            ("b1", "time_allocated", "time allocated"),
                            ("a6", "coaching_support", "coaching support"),
                            ("a8", "coaching_support", "coaching support"),
                            ("a10", "knowledgeable", "knowledgeable"),
                            ("b3", "time_allocated", "time allocated")]:
        codes = make_codes().set_index("code_id")
        rows.append({"answer_id": a, "coder": "keyword", "framework": codes.at[code, "framework"],
                     "dimension": codes.at[code, "dimension"], "code_id": code,
                     "codebook_version": "v1", "evidence": _evidence(ans[a], phrase)})
    rows.append({"answer_id": "a6", "coder": "coder_1", "framework": "scale",
                 "dimension": "sustainability", "code_id": "coaching_support",
                 "codebook_version": "v1", "evidence": None})
    return pd.DataFrame(rows)


def _quotes(**kw) -> pd.DataFrame:
    return quotes.exemplar_quotes(make_final_codes(), make_answers(), make_applications(),
                                  make_codes(), **kw)


def test_columns_and_coaching_support_rule():
    q = _quotes()
    assert list(q.columns) == quotes.QUOTE_COLUMNS
    cs = q[(q.code_id == "coaching_support") & (q.question_id == "worked")]
    # candidates a1, a2 (2020-21 keyword), a6 agreed+evidence, a7 adjudicated (2023-24);
    # a8 is unresolved. Years alternate, oldest first.
    assert list(cs.school_year) == [Y1, Y2, Y1, Y2]
    assert list(cs["rank"]) == [1, 2, 3, 4]
    assert cs.iloc[1].answer_id == "a6" and cs.iloc[1].agreed
    assert cs.iloc[1].evidence_text == "coaching support"
    assert cs.iloc[3].answer_id == "a7" and cs.iloc[3].provenance == "adjudicated"
    assert "coded by meaning" in cs.iloc[3].reason
    assert "a8" not in set(q.answer_id)
    assert cs.iloc[0].label == "Coaching support"
    assert all(r for r in q.reason)


def test_constraints_length_and_substantive():
    q = _quotes()
    assert q.n_chars.between(40, 300).all()
    assert (q.quote.str.len() == q.n_chars).all()
    assert "a4" not in set(q.answer_id) and "a5" not in set(q.answer_id)  # too short / NA
    tight = _quotes(min_chars=75, max_chars=80)
    assert tight.n_chars.between(75, 80).all()


def test_redacted_text_is_quoted_verbatim():
    q = _quotes()
    text = make_answers().set_index("answer_id")["answer_text"]
    for row in q.itertuples():
        assert row.quote == text[row.answer_id].strip()
    assert q.quote.str.contains(r"\[External Coach name\]", regex=True).any()


def test_per_code_limit_and_school_spread():
    ans = make_answers()
    extra = []
    for i in range(8):
        extra.append({**ans.iloc[5].to_dict(), "answer_id": f"x{i}", "school_year": Y2,
                      "school_id": "school_a" if i < 6 else f"school_{i}",
                      "answer_text": f"We planned time allocated number {i} for the protocol work."})
    ans2 = pd.concat([ans, pd.DataFrame(extra)], ignore_index=True)
    fc = make_final_codes()
    fc2 = pd.concat([fc, pd.DataFrame([{**fc.iloc[-1].to_dict(), "answer_id": f"x{i}",
                                        "question_id": "improve"} for i in range(8)])])
    q = quotes.exemplar_quotes(fc2, ans2, None, make_codes(), per_code=5)
    ta = q[(q.code_id == "time_allocated") & (q.question_id == "improve")]
    assert len(ta) == 5
    # x6, x7 (new schools) come before a third school_a quote in 2023-24
    y2 = ta[ta.school_year == Y2]
    assert {"school_6", "school_7"} <= set(y2.school_id)
    assert y2.school_id.tolist().count("school_a") <= 2


def test_duplicate_texts_quoted_once():
    ans = make_answers()
    dup = {**ans[ans.answer_id == "a6"].iloc[0].to_dict(), "answer_id": "a6dup",
           "school_id": "school_z"}
    fc = make_final_codes()
    fc_dup = {**fc[fc.answer_id == "a6"].iloc[0].to_dict(), "answer_id": "a6dup"}
    q = quotes.exemplar_quotes(pd.concat([fc, pd.DataFrame([fc_dup])]),
                               pd.concat([ans, pd.DataFrame([dup])]))
    cs = q[q.code_id == "coaching_support"]
    assert cs.quote.is_unique


def test_deterministic_under_row_order():
    a = _quotes()
    shuffled = quotes.exemplar_quotes(make_final_codes().sample(frac=1, random_state=3),
                                      make_answers().sample(frac=1, random_state=4),
                                      make_applications().sample(frac=1, random_state=5),
                                      make_codes())
    pd.testing.assert_frame_equal(a, shuffled)


def test_verified_evidence():
    ev = json.dumps([{"pattern": "x", "matched_text": "Support", "start": 4, "end": 11}])
    assert quotes.verified_evidence(ev, "our support team") == "Support"
    assert quotes.verified_evidence(ev, "no such word") is None
    assert quotes.verified_evidence(None, "text") is None
    assert quotes.verified_evidence("not json", "text") is None


def test_empty_inputs():
    q = quotes.exemplar_quotes(make_final_codes().iloc[:0], make_answers())
    assert q.empty and list(q.columns) == quotes.QUOTE_COLUMNS
