"""marts: rates, rollups, trends, year-over-year tests, BH, suppression and reconciliation on
small hand-made frames with answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.core.marts import marts, year_comparison

Y1, Y2 = "2020-21", "2023-24"
CODES = pd.DataFrame(
    [
        ("scale", "sustainability", "coaching_support", "Coaching support"),
        ("scale", "sustainability", "time_allocated", "Time allocated"),
        ("scale", "depth", "collaboration", "Collaboration"),
        ("relational_trust", "competence_in_core_responsibilities", "knowledgeable",
         "Knowledgeable"),
    ],
    columns=["framework", "dimension", "code_id", "label"],
).assign(description="", patterns="[]", codebook_version="v1")
DIM = {c: d for _, (f, d, c) in CODES[["framework", "dimension", "code_id"]].iterrows()}
FW = {c: f for _, (f, d, c) in CODES[["framework", "dimension", "code_id"]].iterrows()}

# answer_id, year, session, school, coach, question, text, non_substantive
ANSWERS = [
    ("a1", Y1, 1, "school_a", "coach_1", "worked",
     "The coaching support helped us and our collaboration on the data plan grew stronger.", False),
    ("a2", Y1, 1, "school_b", "coach_1", "worked",
     "Great coaching support from [External Coach name] during the whole session today.", False),
    ("a3", Y1, 2, "school_a", "coach_1", "worked",
     "Collaboration across the grade-level team was the best part of this session.", False),
    ("a4", Y1, 2, "school_c", "coach_2", "worked", "It was fine, thanks.", False),
    ("a5", Y1, 2, "school_c", "coach_2", "worked", "NA", True),
    ("b1", Y1, 1, "school_a", "coach_1", "improve",
     "We ran out of time again; more time allocated to planning would help us.", False),
    ("b2", Y1, 2, "school_b", "coach_1", "improve", "Nothing to change.", False),
    ("a6", Y2, 1, "school_a", "coach_2", "worked",
     "[External Coach name] gave coaching support when we were stuck on the root cause.", False),
    ("a7", Y2, 1, "school_b", "coach_2", "worked",
     "She was there for us every step, the support from our coach kept us on track.", False),
    ("a8", Y2, 2, "school_c", "coach_2", "worked",
     "Maybe some coaching support, but mostly we worked by ourselves this time.", False),
    ("a9", Y2, 2, "school_a", "coach_1", "worked",
     "Our team collaborated on the plan and we finally had the time we needed.", False),
    ("a10", Y2, 3, "school_d", "coach_1", "worked",
     "[External Coach name] is very knowledgeable about the Data Wise steps.", False),
    ("b3", Y2, 3, "school_d", "coach_1", "improve",
     "More time allocated for the protocol, we always rush the last step.", False),
]

# answer_id, code_id, provenance
FINAL = [
    ("a1", "coaching_support", "keyword"), ("a1", "collaboration", "keyword"),
    ("a2", "coaching_support", "keyword"), ("a3", "collaboration", "keyword"),
    ("b1", "time_allocated", "keyword"),
    ("a6", "coaching_support", "agreed"), ("a6", "coaching_support", "agreed"),
    ("a7", "coaching_support", "adjudicated"), ("a8", "coaching_support", "unresolved"),
    ("a9", "collaboration", "agreed"), ("a9", "time_allocated", "agreed"),
    ("a10", "knowledgeable", "agreed"), ("b3", "time_allocated", "adjudicated"),
]


def make_answers() -> pd.DataFrame:
    cols = ["answer_id", "school_year", "session_number", "school_id", "coach_id",
            "question_id", "answer_text", "non_substantive"]
    df = pd.DataFrame(ANSWERS, columns=cols)
    df["session_number"] = df["session_number"].astype("Int64")
    df["session_date"] = pd.Timestamp("2021-01-01")
    df["submitted_at"] = pd.Timestamp("2021-01-01 10:00")
    df["response_id"] = "r_" + df["answer_id"]
    df["role"] = "Teacher"
    df["n_redactions"] = df["answer_text"].str.count(r"\[External Coach name\]")
    df["file_name"] = np.where(df["school_year"] == Y1, "session-01.csv", "export.csv")
    df["row_number"] = range(2, len(df) + 2)
    return df


def make_final_codes() -> pd.DataFrame:
    ans = make_answers().set_index("answer_id")
    rows = [
        {"answer_id": a, "school_year": ans.at[a, "school_year"],
         "question_id": ans.at[a, "question_id"], "framework": FW[c], "dimension": DIM[c],
         "code_id": c, "provenance": p, "decided_by": "keyword" if p == "keyword" else "c1+c2"}
        for a, c, p in FINAL
    ]
    return pd.DataFrame(rows)


def make_codes() -> pd.DataFrame:
    return CODES.copy()


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for k, v in where.items():
        mask &= frame[k].isna() if v is None else frame[k] == v
    hit = frame[mask]
    assert len(hit) == 1, (where, hit)
    return hit.iloc[0]


@pytest.fixture
def freq() -> pd.DataFrame:
    return marts.code_frequencies(make_final_codes(), make_answers(), make_codes())


def test_code_rates_and_counting_rule(freq):
    r = _row(freq, level="code", school_year=Y1, question_id="worked", code_id="coaching_support")
    assert (r.n_answers, r.n_substantive, r.rate_per_100) == (2, 4, 50.0)  # a5 is NA
    assert (r.n_schools, r.n_sessions, r.label) == (2, 2, "Coaching support")  # a/1, b/1
    assert r.coding_source == "keyword"
    # 2023-24: a6 twice counts once, a8 unresolved does not count
    r = _row(freq, level="code", school_year=Y2, question_id="worked", code_id="coaching_support")
    assert (r.n_answers, r.n_substantive, r.rate_per_100) == (2, 5, 40.0)
    assert r.coding_source == "human"


def test_rollups_count_distinct_answers(freq):
    r = _row(freq, level="dimension", school_year=Y2, question_id="worked",
             framework="scale", dimension="sustainability")
    assert r.n_answers == 3 and r.code_id is None  # a6, a7, a9 (a9 twice: coaching + time)
    r = _row(freq, level="framework", school_year=Y1, question_id="worked", framework="scale")
    assert (r.n_answers, r.rate_per_100) == (3, 75.0)  # a1 has two codes, counts once
    assert r.dimension is None and r.code_id is None
    r = _row(freq, level="framework", school_year=Y2, question_id="worked",
             framework="relational_trust")
    assert (r.n_answers, r.rate_per_100, r.n_schools) == (1, 20.0, 1)


def test_zero_fill_lists_every_codebook_code(freq):
    r = _row(freq, level="code", school_year=Y1, question_id="improve", code_id="knowledgeable")
    assert (r.n_answers, r.n_substantive, r.rate_per_100) == (0, 2, 0.0)
    per_slice = freq[freq.level == "code"].groupby(["school_year", "question_id"]).size()
    assert (per_slice == len(CODES)).all() and len(per_slice) == 4
    assert list(freq.columns) == marts.FREQ_COLUMNS


def test_without_codebook_only_used_codes():
    f = marts.code_frequencies(make_final_codes(), make_answers())
    assert (f["n_answers"] > 0).all()
    assert _row(f, level="code", school_year=Y1, question_id="worked",
                code_id="collaboration").label == "Collaboration"


def test_trends_per_session():
    t = marts.code_trends(make_final_codes(), make_answers(), make_codes())
    r = _row(t, level="code", school_year=Y1, session_number=2, question_id="worked",
             code_id="collaboration")
    assert (r.n_answers, r.n_substantive, r.rate_per_100) == (1, 2, 50.0)  # a3; a4 (a5 is NA)
    r = _row(t, level="dimension", school_year=Y2, session_number=2, question_id="worked",
             framework="scale", dimension="sustainability")
    assert (r.n_answers, r.n_substantive) == (1, 2)  # a9 only, a8 unresolved
    assert str(t["session_number"].dtype) == "Int64"


def test_by_school_and_coach_exact():
    s = marts.by_school(make_final_codes(), make_answers(), make_codes())
    r = _row(s, level="code", school_year=Y1, question_id="worked", school_id="school_a",
             code_id="collaboration")
    assert (r.n_answers, r.n_substantive) == (2, 2)
    c = marts.by_coach(make_final_codes(), make_answers(), make_codes())
    r = _row(c, level="framework", school_year=Y2, question_id="worked", coach_id="coach_2",
             framework="scale")
    assert (r.n_answers, r.n_substantive, r.n_schools) == (2, 3, 2)


def test_codes_on_non_substantive_or_unknown_answers_do_not_count():
    fc = make_final_codes()
    extra = pd.DataFrame([{**fc.iloc[0].to_dict(), "answer_id": "a5"},
                          {**fc.iloc[0].to_dict(), "answer_id": "ghost"}])
    fc2 = pd.concat([fc, extra], ignore_index=True)
    freq = marts.code_frequencies(fc2, make_answers(), make_codes())
    r = _row(freq, level="code", school_year=Y1, question_id="worked", code_id="coaching_support")
    assert r.n_answers == 2
    out = marts.uncounted_codes(fc2, make_answers())
    assert dict(zip(out.answer_id, out.why, strict=True)) == {
        "a5": "non-substantive answer", "ghost": "answer not in staging.answers"}
    assert marts.reconcile_marts_with_final_codes(freq, fc2, make_answers()).empty
    assert len(marts.reconcile_marts_with_final_codes(freq, fc2)) == 3  # code, dim, framework


def test_coding_sources():
    fc = make_final_codes()
    src = marts.coding_sources(fc)
    assert list(src.coding_source) == ["keyword", "human"]
    assert src.loc[1, "n_unresolved"] == 1
    assert list(src.columns) == ["school_year", "coding_source", "n_agreed", "n_adjudicated",
                                 "n_unresolved", "n_keyword", "n_trained_suggestion",
                                 "n_zero_shot_suggestion"]


def suggested(provenance: str | dict) -> pd.DataFrame:
    """make_final_codes with 2020-21's keyword rows coded by a suggester instead (a dict maps
    code_id -> provenance)."""
    fc = make_final_codes()
    kw = fc["provenance"] == "keyword"
    prov = fc.loc[kw, "code_id"].map(provenance) if isinstance(provenance, dict) else provenance
    fc.loc[kw, "provenance"] = prov
    fc.loc[kw, "decided_by"] = "suggester 0123456789ab"
    return fc


@pytest.mark.parametrize("provenance", ["zero_shot_suggestion", "trained_suggestion"])
def test_a_suggested_year_counts_and_says_so(provenance):
    fc = suggested(provenance)
    src = marts.coding_sources(fc).set_index("school_year")
    assert src.at[Y1, "coding_source"] == provenance
    assert src.at[Y1, f"n_{provenance}"] == 5 and src.at[Y1, "n_keyword"] == 0
    assert src.at[Y2, "coding_source"] == "human"
    freq = marts.code_frequencies(fc, make_answers(), make_codes())
    r = _row(freq, level="code", school_year=Y1, question_id="worked", code_id="coaching_support")
    assert (r.n_answers, r.rate_per_100, r.coding_source) == (2, 50.0, provenance)
    assert set(freq.loc[freq.school_year == Y1, "coding_source"]) == {provenance}
    # the human year is unaffected
    before = marts.code_frequencies(make_final_codes(), make_answers(), make_codes())
    pd.testing.assert_frame_equal(freq[freq.school_year == Y2], before[before.school_year == Y2])
    for mart in (marts.code_trends, marts.by_school, marts.by_coach):
        out = mart(fc, make_answers(), make_codes())
        assert set(out.loc[out.school_year == Y1, "coding_source"]) == {provenance}
    assert marts.reconcile_marts_with_final_codes(freq, fc, make_answers()).empty


def test_two_sources_in_a_year_are_mixed():
    # trained for the codes with enough examples, zero-shot for the rest: the trained suggester
    fc = suggested({"coaching_support": "trained_suggestion",
                    "collaboration": "zero_shot_suggestion",
                    "time_allocated": "zero_shot_suggestion"})
    src = marts.coding_sources(fc).set_index("school_year")
    assert src.at[Y1, "coding_source"] == "trained_suggestion"
    assert (src.at[Y1, "n_trained_suggestion"], src.at[Y1, "n_zero_shot_suggestion"]) == (2, 3)
    human_and_machine = pd.concat([make_final_codes(), suggested("trained_suggestion").assign(
        school_year=Y2)])
    assert marts.coding_sources(human_and_machine).set_index(
        "school_year").at[Y2, "coding_source"] == "mixed"
    assert marts.machine_coded("mixed") and marts.machine_coded("keyword")
    assert not marts.machine_coded("human") and not marts.machine_coded("none")


# ----------------------------------------------------------------------------- year over year

def test_two_proportion_test_branches():
    test, _, p = year_comparison.two_proportion_test(40, 100, 60, 100)
    assert test == "chi2"
    chi2 = stats.chi2_contingency([[40, 60], [60, 40]], correction=False)
    assert p == pytest.approx(chi2[1])
    test, odds, p = year_comparison.two_proportion_test(1, 10, 4, 10)  # expected counts 2.5 < 5
    assert test == "fisher"
    assert p == pytest.approx(stats.fisher_exact([[1, 9], [4, 6]])[1])


def test_newcombe_and_cohens_h_known_values():
    # Newcombe (1998) table II example: 56/70 vs 48/80 -> diff 0.2, CI 0.0524 to 0.3339
    low, high = year_comparison.newcombe_interval(48, 80, 56, 70)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert year_comparison.cohens_h(0.5, 0.5) == 0
    assert year_comparison.cohens_h(0.0, 1.0) == pytest.approx(math.pi)


def test_year_over_year_rows_and_bh(freq):
    y = year_comparison.year_over_year(freq)
    assert list(y.columns) == year_comparison.YOY_COLUMNS
    assert set(y.year_a) == {Y1} and set(y.year_b) == {Y2}
    r = _row(y, level="code", question_id="worked", code_id="coaching_support")
    assert (r.n_answers_a, r.n_substantive_a, r.n_answers_b, r.n_substantive_b) == (2, 4, 2, 5)
    assert r.diff_per_100 == pytest.approx(-10.0)
    assert r.test == "fisher"
    assert r.p_value == pytest.approx(stats.fisher_exact([[2, 2], [2, 3]])[1])
    assert r.diff_ci_low < r.diff_per_100 < r.diff_ci_high
    assert (r.coding_source_a, r.coding_source_b) == ("keyword", "human")
    assert not y["comparable"].any()   # keyword vs human: flagged, not dropped
    assert set(y["note"]) == {"not comparable: year a coded by the keyword coder, year b by "
                              "human coders; the change mixes a change of method with a "
                              "change of feedback"}
    never = _row(y, level="code", question_id="improve", code_id="knowledgeable")
    assert never.test is None and np.isnan(never.p_value) and np.isnan(never.p_adjusted)
    # BH by hand within the 'code' level
    codes = y[(y.level == "code") & y.p_value.notna()].reset_index(drop=True)
    p = codes.p_value.to_numpy()
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        adj[i] = running
    np.testing.assert_allclose(codes.p_adjusted.to_numpy(), adj)


def test_bh_hand_computation_small():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.0533, 0.0533, 0.5
    expected = [0.04, 0.16 / 3, 0.16 / 3, 0.5]
    np.testing.assert_allclose(stats.false_discovery_control(p, method="bh"), expected)


def test_year_over_year_explicit_years_and_single_year(freq):
    y = year_comparison.year_over_year(freq, year_a=Y2, year_b=Y1, levels=["framework"])
    assert set(y.level) == {"framework"}
    r = _row(y, question_id="worked", framework="scale")
    assert r.diff_per_100 == pytest.approx(15.0)  # 60 -> 75
    one = year_comparison.year_over_year(freq[freq.school_year == Y1])
    assert one.empty and list(one.columns) == year_comparison.YOY_COLUMNS


def test_year_over_year_chi2_branch():
    rows = []
    for year, x, n in ((Y1, 30, 100), (Y2, 60, 100)):
        rows.append({"level": "code", "school_year": year, "question_id": "worked",
                     "framework": "scale", "dimension": "depth", "code_id": "collaboration",
                     "label": "Collaboration", "n_answers": x, "n_substantive": n,
                     "coding_source": "human"})
    y = year_comparison.year_over_year(pd.DataFrame(rows))
    r = y.iloc[0]
    assert r.test == "chi2" and r.p_adjusted == pytest.approx(r.p_value)
    assert r.p_value == pytest.approx(
        stats.chi2_contingency([[30, 70], [60, 40]], correction=False)[1])


# ----------------------------------------------------------------------------- suppression

def test_suppress_small_cells():
    f = pd.DataFrame({"school_id": ["a", "b", "c", "d"], "n_answers": [0, 1, 4, 5],
                      "n_substantive": [10, 10, 3, 50], "rate_per_100": [0.0, 10.0, 1.0, 10.0]})
    s = marts.suppress_small_cells(f, ["n_answers", "n_substantive"], also_mask=["rate_per_100"])
    assert list(s.n_answers) == [0, "<5", "<5", 5]
    assert list(s.n_substantive) == [10, 10, "<5", 50]
    assert [v is None for v in s.rate_per_100] == [False, True, True, False]
    assert list(f.n_answers) == [0, 1, 4, 5]  # the input is not changed
    s3 = marts.suppress_small_cells(f, ["n_answers"], min_count=2)
    assert list(s3.n_answers) == [0, "<2", 4, 5]
    with pytest.raises(ValueError):
        marts.suppress_small_cells(f, ["nope"])


# ----------------------------------------------------------------------------- reconciliation

def test_reconcile_clean_and_broken(freq):
    fc = make_final_codes()
    assert marts.reconcile_marts_with_final_codes(freq, fc).empty
    broken = freq.copy()
    i = broken.index[(broken.level == "code") & (broken.code_id == "knowledgeable")
                     & (broken.school_year == Y2) & (broken.question_id == "worked")][0]
    broken.loc[i, "n_answers"] = 7
    bad = marts.reconcile_marts_with_final_codes(broken, fc)
    assert len(bad) == 1
    assert (bad.iloc[0].expected, bad.iloc[0].actual) == (1, 7)
    assert marts.reconcile_marts_with_final_codes(freq, fc, make_answers()).empty
    missing = freq[~((freq.level == "framework") & (freq.framework == "scale"))]
    bad = marts.reconcile_marts_with_final_codes(missing, fc)
    assert set(bad.level) == {"framework"} and (bad.actual == 0).all() and len(bad) == 4


def _three_years(third: str) -> pd.DataFrame:
    """make_final_codes plus a 2024-25 whose answers copy 2023-24's, coded by `third`."""
    ans = make_answers()
    y3 = ans[ans.school_year == Y2].assign(
        school_year="2024-25", answer_id=lambda f: f.answer_id + "_25")
    fc = make_final_codes()
    fc3 = fc[(fc.school_year == Y2) & (fc.provenance != "unresolved")].assign(
        school_year="2024-25", answer_id=lambda f: f.answer_id + "_25", provenance=third)
    return (pd.concat([fc.assign(provenance=fc.provenance.replace("keyword", "agreed")), fc3]),
            pd.concat([ans, y3], ignore_index=True))


def test_year_over_year_compares_like_with_like_by_default():
    fc, ans = _three_years("zero_shot_suggestion")   # 2020-21, 2023-24 human; 2024-25 not
    freq = marts.code_frequencies(fc, ans, make_codes())
    y = year_comparison.year_over_year(freq)
    assert (set(y.year_a), set(y.year_b)) == ({Y1}, {Y2})   # the two human years
    assert y["comparable"].all() and y["note"].isna().all()
    assert set(zip(y.coding_source_a, y.coding_source_b, strict=True)) == {("human", "human")}
    # asked for explicitly, human vs suggested is kept and flagged
    z = year_comparison.year_over_year(freq, Y2, "2024-25")
    assert len(z) == len(y) and not z["comparable"].any()
    assert set(z.coding_source_b) == {"zero_shot_suggestion"}
    assert z["note"].str.contains("the zero-shot suggester").all()
    r = _row(z, level="code", question_id="worked", code_id="coaching_support")
    assert r.diff_per_100 == pytest.approx(0.0) and r.test is not None
    # only one human year: the first and the latest year, flagged
    fc2, ans2 = _three_years("trained_suggestion")
    fc2 = fc2[fc2.school_year != Y1]
    freq2 = marts.code_frequencies(fc2, ans2[ans2.school_year != Y1], make_codes())
    w = year_comparison.year_over_year(freq2)
    assert (set(w.year_a), set(w.year_b)) == ({Y2}, {"2024-25"})
    assert not w["comparable"].any() and w["note"].str.contains("trained suggester").all()


def test_comparability():
    assert year_comparison.comparability("human", "human") == (True, None)
    ok, note = year_comparison.comparability("keyword", "keyword")
    assert ok and "not by human coders" in note
    for a, b in (("human", "trained_suggestion"), ("zero_shot_suggestion",
                                                    "trained_suggestion"),
                 ("mixed", "mixed"), ("human", None)):
        ok, note = year_comparison.comparability(a, b)
        assert not ok and note.startswith("not comparable")


# ----------------------------------------------------------------------------- properties


_ANSWER_IDS = [a[0] for a in ANSWERS]
_CODE_IDS = list(CODES["code_id"])


@pytest.mark.slow  # a property test over 40 generated tables
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_ANSWER_IDS), st.sampled_from(_CODE_IDS),
                          st.sampled_from(["agreed", "adjudicated", "keyword", "unresolved",
                                           "trained_suggestion", "zero_shot_suggestion"])),
                max_size=40))
def test_properties_on_random_final_codes(rows):
    ans = make_answers().set_index("answer_id")
    fc = pd.DataFrame(
        [{"answer_id": a, "school_year": ans.at[a, "school_year"],
          "question_id": ans.at[a, "question_id"], "framework": FW[c], "dimension": DIM[c],
          "code_id": c, "provenance": p, "decided_by": "x"} for a, c, p in rows],
        columns=["answer_id", "school_year", "question_id", "framework", "dimension",
                 "code_id", "provenance", "decided_by"])
    freq = marts.code_frequencies(fc, make_answers(), make_codes())
    assert marts.reconcile_marts_with_final_codes(freq, fc, make_answers()).empty
    rates = freq["rate_per_100"].dropna()
    assert ((rates >= 0) & (rates <= 100)).all()
    assert (freq["n_answers"] <= freq["n_substantive"]).all()
    code = freq[freq.level == "code"]
    for level, parent in (("dimension", ["framework", "dimension"]), ("framework",
                                                                      ["framework"])):
        up = freq[freq.level == level].set_index(["school_year", "question_id", *parent])
        grouped = code.groupby(["school_year", "question_id", *parent])["n_answers"]
        for key, n in up["n_answers"].items():
            if key in grouped.groups:
                children = grouped.get_group(key)
                assert children.max() <= n <= children.sum()
    y = year_comparison.year_over_year(freq)
    p = y["p_adjusted"].dropna()
    assert ((p >= y.loc[p.index, "p_value"] - 1e-12) & (p <= 1)).all()


def test_z95_is_scipys_normal_quantile():
    from scipy import stats

    from pipeline.core.marts.year_comparison import Z95

    assert Z95 == float(stats.norm.ppf(0.975))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_year_marts_made_together_equal_each_made_alone(seed):
    """year_marts works out the counted codes once for the four marts: the same frames as
    code_frequencies, code_trends, by_school and by_coach each make alone."""
    from tests.test_quotes_contenders import random_inputs

    answers, final, _apps = random_inputs(seed)
    answers = answers.assign(coach_id=answers["school_id"].str[-2:])
    answers.loc[answers.index % 13 == 0, "session_number"] = None
    codes = final[["framework", "dimension", "code_id"]].drop_duplicates().assign(label="x")
    for with_codes in (codes, None):
        made = marts.year_marts(final, answers, with_codes)
        for name, alone in (("marts.code_frequencies", marts.code_frequencies),
                            ("marts.code_trends", marts.code_trends),
                            ("marts.by_school", marts.by_school),
                            ("marts.by_coach", marts.by_coach)):
            pd.testing.assert_frame_equal(made[name], alone(final, answers, with_codes))
        assert len(made["marts.code_frequencies"]) >= 20   # 2 years x 2 questions x 5 rows


def test_year_over_year_is_kept_under_its_frequencies_and_years(freq, tmp_path, monkeypatch):
    """kept_year_over_year: computed once per frequencies and pair of years asked for; a kept
    frame equals the computed one; another frequency or another pair is computed again."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    real, calls = year_comparison.year_over_year, []

    def counted(*args, **kwargs):
        calls.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(year_comparison, "year_over_year", counted)
    year_comparison.kept_year_over_year(freq)
    kept = year_comparison.kept_year_over_year(freq)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(kept, real(freq))
    changed = freq.copy()
    changed.loc[changed.index[0], "n_answers"] += 1
    year_comparison.kept_year_over_year(changed)
    year_comparison.kept_year_over_year(freq, Y2, Y1)
    assert calls == [(None, None), (None, None), (Y2, Y1)]


def test_a_years_marts_key_moves_with_its_rows_and_the_roster(tmp_path):
    """defs/marts.year_marts_key: the same rows in any order give the same key; a changed
    final code, a changed answer of the year, another roster or codebook give another; other
    years' rows do not count."""
    import duckdb

    from pipeline.defs.marts import year_marts_key
    from pipeline.defs.resources import ProjectPaths

    def paths(names: list[str]) -> ProjectPaths:
        roster = tmp_path / f"roster{len(names)}.csv"
        roster.write_text("full_name,role\n" + "".join(f"{n},coach\n" for n in names))
        return ProjectPaths(landing_dir=str(tmp_path), roster_path=str(roster),
                            coder_sheets_dir=str(tmp_path), reports_dir=str(tmp_path),
                            pseudonym_salt="test")

    con = duckdb.connect()
    con.execute("create schema coding; create schema staging")
    con.register("final", make_final_codes())
    con.register("answers", make_answers()[marts.ANSWER_COLUMNS])
    con.execute("create table coding.final_codes as select * from final")
    con.execute("create table staging.answers as select * from answers")
    codes = make_codes()
    names = ["Marisol Okafor", "Dwayne Abernathy"]
    two, one = paths(names), paths(names[:1])
    key = year_marts_key(con, two, codes, Y1)
    con.execute("create or replace table coding.final_codes as select * from final "
                "order by random()")
    assert year_marts_key(con, two, codes, Y1) == key
    assert year_marts_key(con, one, codes, Y1) != key
    assert year_marts_key(con, two, codes.iloc[1:], Y1) != key
    assert year_marts_key(con, two, codes, Y2) != key
    con.execute("update staging.answers set non_substantive = not non_substantive "
                "where school_year = ? and answer_id = (select min(answer_id) from "
                "staging.answers where school_year = ?)", [Y2, Y2])
    assert year_marts_key(con, two, codes, Y1) == key   # another year's answer
    con.execute("update coding.final_codes set code_id = 'other' where school_year = ? and "
                "answer_id = (select min(answer_id) from coding.final_codes "
                "where school_year = ?)", [Y1, Y1])
    assert year_marts_key(con, two, codes, Y1) != key


def test_missing_keys_are_groups_of_their_own():
    """An answer without a session number or coach, a code without a category: each missing
    value is one group of its own (the grouping is by numbers standing for the values, -1 for
    a missing one), with the missing value in the mart, in the column's dtype."""
    answers = make_answers()
    answers.loc[answers["answer_id"].isin(["a1", "a2"]), "session_number"] = pd.NA
    answers.loc[answers["answer_id"] == "a1", "coach_id"] = None
    fc = make_final_codes()
    fc.loc[fc["code_id"] == "collaboration", "dimension"] = None
    made = marts.year_marts(fc, answers, make_codes())
    trends = made["marts.code_trends"]
    r = _row(trends, level="code", school_year=Y1, question_id="worked", session_number=None,
             code_id="coaching_support")
    assert (r.n_answers, r.n_substantive, r.n_sessions) == (2, 2, 0)   # a1, a2
    coach = made["marts.by_coach"]
    assert coach["coach_id"].dtype == object and coach["coach_id"].isna().any()
    r = _row(coach, level="framework", school_year=Y1, question_id="worked",
             coach_id=None, framework="scale")
    assert (r.n_answers, r.n_substantive) == (1, 1)                    # a1
    freq = made["marts.code_frequencies"]
    r = _row(freq, level="code", school_year=Y1, question_id="worked", dimension=None,
             code_id="collaboration")
    assert r.n_answers == 2                                            # a1, a3
    r = _row(freq, level="dimension", school_year=Y1, question_id="worked", framework="scale",
             dimension=None)
    assert (r.n_answers, r.code_id) == (2, None)
