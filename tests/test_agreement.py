"""pipeline.core.reconciliation.agreement: published reference values, properties, and the agreement table.

Reference values are hard-coded with their source next to each one. Where a source prints a
value rounded to 3 decimals the test compares at that precision.
"""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.core.reconciliation.agreement import (
    CI_STATS,
    AgreementError,
    _stable_int,
    agreement_table,
    binary_agreement,
    binary_stats,
    bootstrap_binary,
    cohen_kappa,
    gwet_ac1,
    keyword_quality,
    krippendorff_alpha_nominal,
    pabak,
    percent_agreement,
)
from pipeline.core.reconciliation.agreement_inputs import prepare
from pipeline.core.reconciliation.pair_counts import pair_counts

# --------------------------------------------------------------------------------------------
# Reference data sets
# --------------------------------------------------------------------------------------------

# Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School for
# Communication, University of Pennsylvania (https://repository.upenn.edu/asc_papers/43),
# section C, "Nominal data, any number of observers, missing data": 4 observers x 12 units.
# The same matrix is Gwet (2014) Handbook of Inter-Rater Reliability, 4th ed., p. 120, shipped
# as `cac.raw4raters` in irrCAC. Rows here are units, columns observers A-D.
KRIPPENDORFF_2011_C = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]

# Krippendorff (2011), section A, "Binary or dichotomous data, two observers, no missing
# data": observers A and B on 10 units; the paper computes alpha = 0.095.
KRIPPENDORFF_2011_A = list(
    zip([0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0], strict=True)
)

# Wikipedia, "Krippendorff's alpha", computational example (3 coders x 15 units, missing
# data); nominal alpha = 0.691 in the article, 0.691358 in the krippendorff package's test
# suite (tests/test_krippendorff.py::test_nominal_metric_reliability_data).
_W = None
WIKIPEDIA_ALPHA = [
    list(unit)
    for unit in zip(
        [_W, _W, _W, _W, _W, 3, 4, 1, 2, 1, 1, 3, 3, _W, 3],
        [1, _W, 2, 1, 3, 3, 4, 3, _W, _W, _W, _W, _W, _W, _W],
        [_W, _W, 2, 1, 3, 4, 4, _W, 2, 1, 1, 3, 3, _W, 4],
        strict=True,
    )
]

# irrCAC `cac.ben.gerry` (Gwet 2014): two raters, 12 units, Gerry misses unit 10.
BEN_GERRY = list(
    zip(
        ["a", "a", "b", "b", "d", "c", "c", "c", "e", "d", "d", "a"],
        ["b", "a", "b", "b", "b", "c", "c", "c", "e", None, "d", "d"],
        strict=True,
    )
)

# irrCAC `cont3x3abstractors` (Gwet 2014): 100 pregnancies classified by two abstractors
# (rows abstractor 1, columns abstractor 2: Ectopic, AIU, NIU).
CONT3X3_ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
# irrCAC `cont4x4diagnosis`: 223 psychiatric patients, clinical vs research diagnosis.
CONT4X4_DIAGNOSIS = [[40, 4, 4, 17], [6, 25, 2, 13], [4, 1, 21, 12], [15, 5, 9, 45]]


def expand(table: list[list[int]]) -> list[tuple[int, int]]:
    """Units x 2 ratings matrix from a two-rater contingency table."""
    return [
        (i, j) for i, row in enumerate(table) for j, count in enumerate(row) for _ in range(count)
    ]


def expand_2x2(n11: int, n10: int, n01: int, n00: int) -> list[tuple[int, int]]:
    return [(1, 1)] * n11 + [(1, 0)] * n10 + [(0, 1)] * n01 + [(0, 0)] * n00


# --------------------------------------------------------------------------------------------
# Published reference values
# --------------------------------------------------------------------------------------------


def test_krippendorff_2011_nominal_missing_data():
    # Krippendorff (2011) section C: alpha_nominal = 0.743.
    assert krippendorff_alpha_nominal(KRIPPENDORFF_2011_C) == pytest.approx(0.743, abs=5e-4)
    # Same data in the krippendorff package (README / docstring example): 0.743.
    package = krippendorff.alpha(
        reliability_data=np.array(KRIPPENDORFF_2011_C, dtype=float).T,
        level_of_measurement="nominal",
    )
    assert krippendorff_alpha_nominal(KRIPPENDORFF_2011_C) == pytest.approx(package, abs=1e-12)


def test_gwet_handbook_raw4raters_ac1_and_percent_agreement():
    # irrCAC (Gwet 2014, p. 120 data) gwet.ac1.raw(cac.raw4raters): pa = 0.8181818,
    # pe = 0.190, AC1 = 0.775 (also afergadis/irrCAC tests/raw/test_gwet.py::
    # test_gwet_raw4raters: pa 0.818, pe 0.190, coefficient 0.775).
    assert percent_agreement(KRIPPENDORFF_2011_C) == pytest.approx(0.8181818, abs=1e-7)
    assert gwet_ac1(KRIPPENDORFF_2011_C) == pytest.approx(0.775, abs=5e-4)


def test_krippendorff_2011_binary_two_observers():
    # Krippendorff (2011) section A: alpha = 1 - 19 * 4 / (14 * 6) = 0.095.
    assert krippendorff_alpha_nominal(KRIPPENDORFF_2011_A) == pytest.approx(0.095, abs=5e-4)
    n11, n10, n01, n00 = 1, 1, 3, 5  # the same data as a 2x2 table (A rows, B columns)
    assert binary_agreement(n11, n10, n01, n00).krippendorff_alpha == pytest.approx(
        1 - 19 * 4 / (14 * 6)
    )


def test_wikipedia_alpha_example_and_krippendorff_package_suite():
    # Wikipedia "Krippendorff's alpha" example; krippendorff package test value 0.691358.
    assert krippendorff_alpha_nominal(WIKIPEDIA_ALPHA) == pytest.approx(0.691358, abs=5e-7)
    # krippendorff package tests/test_krippendorff.py::test_string_labels_nominal: 0.722222.
    labels = [
        ["pos", "pos", "pos"],
        ["neg", "neg", "neg"],
        ["neu", "neu", "pos"],
        [None, "pos", "pos"],
    ]
    assert krippendorff_alpha_nominal(labels) == pytest.approx(0.722222, abs=5e-7)


@pytest.mark.parametrize(
    ("n11", "n10", "n01", "n00", "expected"),
    [
        # Wikipedia, "Cohen's kappa", worked example: 50 proposals, yes/yes 20, yes/no 5,
        # no/yes 10, no/no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
        (20, 5, 10, 15, 0.4),
        # Wikipedia, "Cohen's kappa", "same percentages but different numbers": both tables
        # have p_o = 0.60 but kappa = 0.1304 and 0.2593.
        (45, 15, 25, 15, 0.1304),
        (25, 35, 5, 35, 0.2593),
    ],
)
def test_cohen_kappa_wikipedia(n11, n10, n01, n00, expected):
    assert cohen_kappa(expand_2x2(n11, n10, n01, n00)) == pytest.approx(expected, abs=5e-5)
    assert binary_agreement(n11, n10, n01, n00).cohen_kappa == pytest.approx(expected, abs=5e-5)


def test_pabak_byrt_bishop_carlin():
    # Byrt, Bishop & Carlin (1993), "Bias, prevalence and kappa", J Clin Epidemiol 46:423-9:
    # PABAK = 2 p_o - 1. Both Wikipedia "same percentages" tables have p_o = 0.6, so PABAK =
    # 0.2 for both while kappa differs (the prevalence paradox PABAK is meant to expose).
    for table in [(45, 15, 25, 15), (25, 35, 5, 35)]:
        assert binary_agreement(*table).pabak == pytest.approx(0.2)
        assert pabak(expand_2x2(*table)) == pytest.approx(0.2)


def test_irrcac_cont3x3abstractors():
    # irrCAC R vignette "overview" (CRAN), cont3x3abstractors: kappa2.table 0.7964094,
    # gwet.ac1.table 0.8493305, krippen2.table 0.7972585, pa2.table 0.89, bp2.table 0.835.
    ratings = expand(CONT3X3_ABSTRACTORS)
    assert cohen_kappa(ratings) == pytest.approx(0.7964094, abs=5e-8)
    assert gwet_ac1(ratings) == pytest.approx(0.8493305, abs=5e-8)
    assert krippendorff_alpha_nominal(ratings) == pytest.approx(0.7972585, abs=5e-8)
    assert percent_agreement(ratings) == pytest.approx(0.89)
    # Brennan-Prediger = (q p_a - 1) / (q - 1), i.e. our pabak generalised to q categories.
    assert pabak(ratings, n_categories=3) == pytest.approx(0.835)


def test_irrcac_cont4x4diagnosis():
    # afergadis/irrCAC tests/table/test_cohen.py and test_gwet.py (cont4x4diagnosis):
    # Cohen's kappa 0.432, Gwet's AC1 0.456.
    ratings = expand(CONT4X4_DIAGNOSIS)
    assert cohen_kappa(ratings) == pytest.approx(0.432, abs=5e-4)
    assert gwet_ac1(ratings) == pytest.approx(0.456, abs=5e-4)


def test_irrcac_ben_gerry_missing_rating():
    # afergadis/irrCAC tests/raw/test_gwet.py::test_gwet_raw_ben_gerry: pa 0.727, pe 0.194,
    # AC1 0.661; tests/raw/test_krippendorff.py::test_krippendorff_kappa_raw_ben_gerry: 0.665.
    assert percent_agreement(BEN_GERRY) == pytest.approx(0.727, abs=5e-4)
    assert gwet_ac1(BEN_GERRY) == pytest.approx(0.661, abs=5e-4)
    assert krippendorff_alpha_nominal(BEN_GERRY) == pytest.approx(0.665, abs=5e-4)


def test_accepts_dataframe_with_nan():
    frame = pd.DataFrame(KRIPPENDORFF_2011_C, columns=list("ABCD"), dtype=float)
    assert krippendorff_alpha_nominal(frame) == pytest.approx(0.743, abs=5e-4)


# --------------------------------------------------------------------------------------------
# Undefined input: a clear AgreementError, never NaN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [percent_agreement, krippendorff_alpha_nominal, gwet_ac1, pabak, cohen_kappa]
)
def test_no_unit_with_two_coders_raises(fn):
    with pytest.raises(AgreementError, match="two coders|both coders"):
        fn([[1, None], [None, 2], [None, None]])


@pytest.mark.parametrize("fn", [krippendorff_alpha_nominal, gwet_ac1, cohen_kappa])
def test_single_value_in_domain_raises(fn):
    with pytest.raises(AgreementError, match="only one value"):
        fn([["x", "x"], ["x", "x"], ["x", None]])


def test_cohen_kappa_needs_two_coders():
    with pytest.raises(AgreementError, match="exactly two coders"):
        cohen_kappa([[1, 1, 1], [2, 2, 1]])


def test_malformed_input():
    with pytest.raises(AgreementError, match="2-D"):
        percent_agreement([1, 2, 3])
    with pytest.raises(AgreementError, match="n_categories"):
        pabak([[0, 1], [2, 2]], n_categories=2)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

nominal_values = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
reliability_matrices = st.integers(2, 5).flatmap(
    lambda n_coders: st.lists(
        st.lists(nominal_values, min_size=n_coders, max_size=n_coders), min_size=1, max_size=30
    )
)


def _defined(fn, ratings):
    try:
        return fn(ratings)
    except AgreementError:
        return None


@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=40), st.integers(2, 4))
def test_identical_coders_agree_perfectly(values, n_coders):
    ratings = [[v] * n_coders for v in values]
    assert percent_agreement(ratings) == 1.0
    if len(set(values)) >= 2:
        assert krippendorff_alpha_nominal(ratings) == pytest.approx(1.0)
        assert gwet_ac1(ratings) == pytest.approx(1.0)
        if n_coders == 2:
            assert cohen_kappa(ratings) == pytest.approx(1.0)


@given(reliability_matrices, st.randoms(use_true_random=False))
def test_symmetric_in_coder_order(ratings, rnd):
    order = list(range(len(ratings[0])))
    rnd.shuffle(order)
    shuffled = [[row[i] for i in order] for row in ratings]
    for fn in (percent_agreement, krippendorff_alpha_nominal, gwet_ac1):
        a, b = _defined(fn, ratings), _defined(fn, shuffled)
        assert (a is None) == (b is None)
        if a is not None:
            assert a == pytest.approx(b, abs=1e-12)
    if len(order) == 2:
        a, b = _defined(cohen_kappa, ratings), _defined(cohen_kappa, shuffled)
        assert a == (None if b is None else pytest.approx(b, abs=1e-12))


@given(reliability_matrices)
def test_alpha_matches_krippendorff_package(ratings):
    mine = _defined(krippendorff_alpha_nominal, ratings)
    assume(mine is not None)
    codes = {"a": 0, "b": 1, "c": 2, "d": 3, None: np.nan}
    data = np.array([[codes[v] for v in row] for row in ratings], dtype=float).T
    assert mine == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-9
    )


tables = st.tuples(*[st.integers(0, 40)] * 4)


@given(tables)
def test_binary_closed_forms_equal_general_functions(table):
    ratings = expand_2x2(*table)
    result = binary_agreement(*table)
    if not ratings:
        assert result.percent_agreement is None and result.undefined_reason.startswith("no units")
        return
    assert result.percent_agreement == pytest.approx(percent_agreement(ratings), abs=1e-12)
    assert result.pabak == pytest.approx(pabak(ratings), abs=1e-12)
    assert result.gwet_ac1 == pytest.approx(gwet_ac1(ratings, n_categories=2), abs=1e-12)
    if len({v for row in ratings for v in row}) == 2:
        assert result.undefined_reason is None
        assert result.cohen_kappa == pytest.approx(cohen_kappa(ratings), abs=1e-12)
        assert result.krippendorff_alpha == pytest.approx(
            krippendorff_alpha_nominal(ratings), abs=1e-12
        )
        assert result.gwet_ac1 == pytest.approx(gwet_ac1(ratings), abs=1e-12)
    else:  # degenerate: all units in n11 or in n00
        assert result.cohen_kappa is None and result.krippendorff_alpha is None
        assert result.undefined_reason.startswith("no variation")


@given(tables)
def test_binary_stats_symmetric_in_coder_order(table):
    n11, n10, n01, n00 = table
    forward, swapped = binary_stats(n11, n10, n01, n00), binary_stats(n11, n01, n10, n00)
    for name in forward:
        np.testing.assert_allclose(forward[name], swapped[name], atol=1e-12, equal_nan=True)


def test_binary_stats_vectorised_equals_scalar():
    rng = np.random.default_rng(3)
    cells = rng.integers(0, 20, size=(200, 4))
    cells[:5] = [[0, 0, 0, 0], [7, 0, 0, 0], [0, 0, 0, 9], [0, 4, 0, 0], [3, 0, 0, 3]]
    vectorised = binary_stats(*cells.T)
    for i, row in enumerate(cells):
        scalar = binary_agreement(*map(int, row))
        for name, values in vectorised.items():
            expected = getattr(scalar, name)
            assert (np.isnan(values[i]) and expected is None) or values[i] == expected


def test_degenerate_tables_are_none_with_reason_not_errors():
    never = binary_agreement(0, 0, 0, 50, n_boot=200, seed=1)
    assert never.cohen_kappa is None and never.krippendorff_alpha is None
    assert "neither coder" in never.undefined_reason
    assert never.percent_agreement == 1.0 and never.gwet_ac1 == 1.0 and never.pabak == 1.0
    assert never.ci["cohen_kappa"] == (None, None)
    always = binary_agreement(12, 0, 0, 0)
    assert always.cohen_kappa is None and "both coders" in always.undefined_reason
    empty = binary_agreement(0, 0, 0, 0, n_boot=100)
    assert empty.percent_agreement is None and empty.ci["pabak"] == (None, None)
    # Total disagreement on a single unit type is not degenerate: kappa is defined (0).
    assert binary_agreement(0, 5, 0, 0).cohen_kappa == 0.0


@settings(max_examples=60, deadline=None)
@given(st.tuples(*[st.integers(3, 60)] * 4), st.integers(0, 2**32 - 1))
def test_bootstrap_contains_point_estimate_and_is_reproducible(table, seed):
    # Every cell >= 3: non-degenerate, and large enough that the percentile interval of these
    # smooth statistics covers the plug-in estimate (not guaranteed for tiny tables).
    point = binary_agreement(*table)
    ci = bootstrap_binary(*table, n_boot=400, seed=seed)
    assert ci == bootstrap_binary(*table, n_boot=400, seed=seed)
    for stat in CI_STATS:
        low, high = ci[stat]
        assert low <= getattr(point, stat) <= high


def test_bootstrap_seed_changes_draws():
    assert bootstrap_binary(20, 5, 10, 15, seed=1) != bootstrap_binary(20, 5, 10, 15, seed=2)


def test_bootstrap_rare_code_skips_undefined_replicates():
    # One application by one coder in 200 units: many replicates have no variation (kappa
    # undefined); the interval comes from the replicates where it is defined.
    ci = bootstrap_binary(0, 1, 0, 199, n_boot=500, seed=5)
    low, high = ci["cohen_kappa"]
    assert low is not None and low <= high <= 0.0 + 1e-12


# --------------------------------------------------------------------------------------------
# agreement_table
# --------------------------------------------------------------------------------------------

CODES = pd.DataFrame(
    [
        ("scale", "depth", "collaboration"),
        ("scale", "sustainability", "coaching_support"),
        ("scale", "sustainability", "time_allocated"),
        ("relational_trust", "competence", "knowledgeable"),
    ],
    columns=["framework", "dimension", "code_id"],
)
_DIM = {row.code_id: (row.framework, row.dimension) for row in CODES.itertuples()}


def apps_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(answer_id, coder, code_id) -> applications with framework and dimension."""
    return pd.DataFrame(
        [(a, c, *_DIM[code], code) for a, c, code in rows],
        columns=["answer_id", "coder", "framework", "dimension", "code_id"],
    )


def units_frame(coders_by_answer: dict[str, tuple[str, str, list[str]]]) -> pd.DataFrame:
    """answer_id -> (question_id, school_year, coders who coded it)."""
    return pd.DataFrame(
        [
            (answer, coder, question, year)
            for answer, (question, year, coders) in coders_by_answer.items()
            for coder in coders
        ],
        columns=["answer_id", "coder", "question_id", "school_year"],
    )


SMALL_UNITS = units_frame(
    {
        "A1": ("worked", "2020-2021", ["ann", "bob"]),
        "A2": ("worked", "2023-2024", ["ann", "bob"]),
        "A3": ("improve", "2023-2024", ["ann", "bob"]),  # nobody applied anything
        "A4": ("improve", "2020-2021", ["ann", "bob"]),
        "A5": ("worked", "2020-2021", ["ann"]),  # only ann coded it: not a unit of the pair
    }
)
SMALL_APPS = apps_frame(
    [
        ("A1", "ann", "collaboration"),
        ("A1", "bob", "collaboration"),
        ("A1", "ann", "coaching_support"),
        ("A2", "bob", "coaching_support"),
        ("A2", "ann", "coaching_support"),
        ("A2", "ann", "coaching_support"),  # repeated row counts once
        ("A4", "bob", "knowledgeable"),
        ("A5", "ann", "time_allocated"),
    ]
)


def row(table: pd.DataFrame, level: str, **group) -> pd.Series:
    mask = table["level"] == level
    for key, value in group.items():
        mask &= table[key] == value
    assert mask.sum() == 1, (level, group)
    return table[mask].iloc[0]


def test_agreement_table_counts_by_hand():
    table = agreement_table(SMALL_APPS, SMALL_UNITS, CODES, [("ann", "bob")], n_boot=0)
    cells = ["n_both", "n_only_a", "n_only_b", "n_neither"]
    # 4 answers coded by both (A5 is ann's only) x 4 codes.
    assert list(row(table, "overall")[["n_answers", "n_units"]]) == [4, 16]
    assert list(row(table, "overall")[cells]) == [2, 1, 1, 12]
    assert list(row(table, "code", code_id="collaboration")[cells]) == [1, 0, 0, 3]
    assert list(row(table, "code", code_id="coaching_support")[cells]) == [1, 1, 0, 2]
    assert list(row(table, "code", code_id="knowledgeable")[cells]) == [0, 0, 1, 3]
    # time_allocated was applied only on A5, which bob did not code: no variation.
    unused = row(table, "code", code_id="time_allocated")
    assert list(unused[cells]) == [0, 0, 0, 4]
    assert pd.isna(unused["cohen_kappa"]) and pd.isna(unused["krippendorff_alpha"])
    assert "neither coder" in unused["undefined_reason"]
    assert unused["percent_agreement"] == 1.0
    sustain = row(table, "dimension", dimension="sustainability")
    assert sustain["framework"] == "scale" and sustain["code_id"] is None
    assert list(sustain[["n_units", *cells]]) == [8, 1, 1, 0, 6]
    assert list(row(table, "framework", framework="scale")[cells]) == [2, 1, 0, 9]
    assert list(row(table, "framework", framework="relational_trust")[cells]) == [0, 0, 1, 3]
    worked = row(table, "question", question_id="worked")
    assert list(worked[["n_answers", "n_units", *cells]]) == [2, 8, 2, 1, 0, 5]
    assert worked["framework"] is None and worked["school_year"] is None
    y2023 = row(table, "school_year", school_year="2023-2024")
    assert list(y2023[["n_answers", *cells]]) == [2, 1, 0, 0, 7]
    # The per-code statistics are the 2x2 closed forms.
    support = row(table, "code", code_id="coaching_support")
    assert support["cohen_kappa"] == pytest.approx(binary_agreement(1, 1, 0, 2).cohen_kappa)
    assert set(table["level"]) == {
        "code",
        "dimension",
        "framework",
        "question",
        "school_year",
        "overall",
    }
    assert len(table) == 4 + 3 + 2 + 2 + 2 + 1


def test_agreement_table_columns_and_no_nan():
    table = agreement_table(SMALL_APPS, SMALL_UNITS, CODES, [("ann", "bob")], n_boot=200)
    stats = ["prevalence", "percent_agreement", "cohen_kappa", "krippendorff_alpha", "gwet_ac1"]
    ci_cols = [f"{s}_ci_{side}" for s in CI_STATS for side in ("low", "high")]
    expected = [
        "coder_a",
        "coder_b",
        "level",
        "framework",
        "dimension",
        "code_id",
        "question_id",
        "school_year",
        "n_units",
        "n_answers",
        "n_both",
        "n_only_a",
        "n_only_b",
        "n_neither",
        *stats,
        "pabak",
        *ci_cols,
        "undefined_reason",
    ]
    assert list(table.columns) == expected
    for col in [*stats, "pabak", *ci_cols]:
        values = table[col].to_numpy(dtype="float64", na_value=0.0)
        assert not np.isnan(values).any(), col  # missing is <NA>, never NaN
    defined = table["cohen_kappa"].notna()
    assert (table.loc[defined, "cohen_kappa_ci_low"] <= table.loc[defined, "cohen_kappa"]).all()


def _random_coding(seed: int, n_answers: int = 60, coders=("h1", "h2", "kw")):
    rng = np.random.default_rng(seed)
    units = pd.DataFrame(
        {
            "answer_id": [f"A{i}" for i in range(n_answers)],
            "question_id": rng.choice(["worked", "improve"], n_answers),
            "school_year": rng.choice(["2020-2021", "2023-2024"], n_answers),
        }
    )
    units = pd.concat([units.assign(coder=c) for c in coders], ignore_index=True)
    units = units.sample(frac=0.9, random_state=seed)  # some answers coded by one coder only
    apps = []
    for coder in coders:
        coded = units.loc[units["coder"] == coder, "answer_id"].to_numpy()
        for code in CODES["code_id"]:
            hit = coded[rng.random(len(coded)) < 0.3]
            apps += [(a, coder, code) for a in hit]
    return apps_frame(apps), units


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_agreement_table_matches_general_functions(seed):
    apps, units = _random_coding(seed)
    table = agreement_table(apps, units, CODES, [("h1", "h2")], n_boot=0)
    both = sorted(
        set(units.loc[units.coder == "h1", "answer_id"])
        & set(units.loc[units.coder == "h2", "answer_id"])
    )
    present = set(zip(apps.answer_id, apps.coder, apps.code_id, strict=True))
    ratings = [
        [int((a, coder, code) in present) for coder in ("h1", "h2")]
        for a in both
        for code in CODES["code_id"]
    ]
    overall = row(table, "overall")
    assert overall["n_units"] == len(ratings)
    if len({v for r in ratings for v in r}) == 2:
        assert overall["cohen_kappa"] == pytest.approx(cohen_kappa(ratings), abs=1e-12)
        assert overall["krippendorff_alpha"] == pytest.approx(
            krippendorff_alpha_nominal(ratings), abs=1e-12
        )
        assert overall["gwet_ac1"] == pytest.approx(gwet_ac1(ratings), abs=1e-12)
    assert overall["percent_agreement"] == pytest.approx(percent_agreement(ratings), abs=1e-12)


def test_agreement_table_symmetric_and_seeded():
    apps, units = _random_coding(7)
    ab = agreement_table(apps, units, CODES, [("h1", "h2")], n_boot=300, seed=11)
    ba = agreement_table(apps, units, CODES, [("h2", "h1")], n_boot=300, seed=11)
    for stat in ("percent_agreement", "cohen_kappa", "krippendorff_alpha", "gwet_ac1", "pabak"):
        np.testing.assert_allclose(ab[stat].astype(float), ba[stat].astype(float), atol=1e-12)
    np.testing.assert_array_equal(ab["n_only_a"], ba["n_only_b"])
    again = agreement_table(apps, units, CODES, [("h1", "h2")], n_boot=300, seed=11)
    pd.testing.assert_frame_equal(ab, again)
    # A row's interval depends on its own key and the seed, not on the other rows.
    all_pairs = agreement_table(apps, units, CODES, n_boot=300, seed=11)
    assert set(zip(all_pairs.coder_a, all_pairs.coder_b, strict=True)) == {
        ("h1", "h2"),
        ("h1", "kw"),
        ("h2", "kw"),
    }
    pd.testing.assert_frame_equal(
        all_pairs[all_pairs.coder_b == "h2"].reset_index(drop=True), ab, check_dtype=True
    )
    other_seed = agreement_table(apps, units, CODES, [("h1", "h2")], n_boot=300, seed=12)
    assert not ab["cohen_kappa_ci_low"].equals(other_seed["cohen_kappa_ci_low"])


def _clustered_coding(n_answers: int = 40):
    """Agreement that varies by answer, not by code: on even answers both coders apply all
    four codes, on odd answers only coder a does."""
    units = pd.DataFrame(
        {"answer_id": [f"A{i}" for i in range(n_answers)], "question_id": "worked",
         "school_year": "2023-2024"}
    )  # fmt: skip
    units = pd.concat([units.assign(coder=c) for c in ("a", "b")], ignore_index=True)
    apps = [(f"A{i}", "a", code) for i in range(n_answers) for code in CODES["code_id"]]
    apps += [(f"A{i}", "b", code) for i in range(0, n_answers, 2) for code in CODES["code_id"]]
    return apps_frame(apps), units


def test_pooled_intervals_resample_answers_not_units():
    """Codes on one answer are not independent: a pooled row's interval resamples answers, so
    it is as wide as the answers' own variation, not 4x narrower in variance."""
    apps, units = _clustered_coding()
    table = agreement_table(apps, units, CODES, [("a", "b")], n_boot=2000, seed=3)
    overall = row(table, "overall")
    assert overall["percent_agreement"] == 0.5
    unit_level = bootstrap_binary(*(int(overall[c]) for c in
                                    ("n_both", "n_only_a", "n_only_b", "n_neither")),
                                  n_boot=2000, seed=3)["percent_agreement"]  # fmt: skip
    width = overall["percent_agreement_ci_high"] - overall["percent_agreement_ci_low"]
    # 40 answers, half agreeing: the answer-level 95% interval is about 0.5 +- 1.96 * 0.079;
    # treating the 160 units as independent would give 0.5 +- 1.96 * 0.040.
    assert width == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 40), rel=0.2)
    assert width > 1.6 * (unit_level[1] - unit_level[0])
    for level in ("dimension", "framework", "question", "school_year"):
        pooled = table[table["level"] == level]
        widths = pooled["percent_agreement_ci_high"] - pooled["percent_agreement_ci_low"]
        assert (widths > 0.2).all(), level


def test_code_rows_resample_their_units():
    """A code has one unit per answer: its interval is the 2x2 multinomial bootstrap."""
    apps, units = _random_coding(5)
    table = agreement_table(apps, units, CODES, [("h1", "h2")], n_boot=300, seed=9)
    r = row(table, "code", code_id="time_allocated")
    key = [r[c] for c in ("coder_a", "coder_b", "level", "framework", "dimension", "code_id",
                          "question_id", "school_year")]  # fmt: skip
    cells = [int(r[c]) for c in ("n_both", "n_only_a", "n_only_b", "n_neither")]
    want = bootstrap_binary(*cells, n_boot=300, seed=[9, _stable_int(*key)])
    assert (r["cohen_kappa_ci_low"], r["cohen_kappa_ci_high"]) == want["cohen_kappa"]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_answer_patterns_add_up_to_each_pooled_row(seed):
    apps, units = _random_coding(seed)
    data = prepare(apps, units, CODES)
    counts, clusters = pair_counts("h1", "h2", data)
    assert len(clusters) == len(counts)
    for (_i, r), cluster in zip(counts.iterrows(), clusters, strict=True):
        if cluster is None:
            assert r["level"] == "code"
            continue
        patterns, weights = cluster
        cells = weights @ patterns
        assert list(cells) == [r["n_both"], r["n_only_a"], r["n_only_b"], r["n_neither"]]
        assert weights.sum() == r["n_answers"]


def test_agreement_table_input_errors():
    with pytest.raises(AgreementError, match="not in the codebook"):
        bad = SMALL_APPS.copy()
        bad.loc[0, "code_id"] = "colaboration"
        agreement_table(bad, SMALL_UNITS, CODES, [("ann", "bob")], n_boot=0)
    with pytest.raises(AgreementError, match="did not code"):
        orphan = apps_frame([("A5", "bob", "collaboration")])
        agreement_table(orphan, SMALL_UNITS, CODES, [("ann", "bob")], n_boot=0)
    with pytest.raises(AgreementError, match="different question_id"):
        units = SMALL_UNITS.copy()
        units.loc[0, "question_id"] = "improve"
        agreement_table(SMALL_APPS, units, CODES, [("ann", "bob")], n_boot=0)
    with pytest.raises(AgreementError, match="missing column.*school_year"):
        agreement_table(SMALL_APPS, SMALL_UNITS.drop(columns="school_year"), CODES, n_boot=0)
    with pytest.raises(AgreementError, match="itself"):
        agreement_table(SMALL_APPS, SMALL_UNITS, CODES, [("ann", "ann")], n_boot=0)


def test_agreement_table_pair_without_common_answers():
    units = units_frame({"A1": ("worked", "2020-2021", ["ann"]), "A2": ("worked", "x", ["bob"])})
    table = agreement_table(apps_frame([]), units, CODES, [("ann", "bob")], n_boot=100)
    assert set(table["level"]) == {"code", "dimension", "framework", "overall"}
    assert (table["n_units"] == 0).all()
    assert table["undefined_reason"].str.startswith("no units").all()
    assert table["percent_agreement"].isna().all()


def test_agreement_table_on_study_sized_data():
    # ~800 answers x 110 codes x 3 pairs (the real study: 772 answers); speed is measured by
    # bench/agreement.py, not here.
    rng = np.random.default_rng(0)
    codes = pd.DataFrame(
        [("scale", f"d{i % 6}", f"c{i:03d}") for i in range(110)],
        columns=["framework", "dimension", "code_id"],
    )
    n = 800
    answers = pd.DataFrame(
        {
            "answer_id": [f"A{i}" for i in range(n)],
            "question_id": rng.choice(["worked", "improve"], n),
            "school_year": rng.choice(["2020-2021", "2023-2024"], n),
        }
    )
    units = pd.concat([answers.assign(coder=c) for c in ("h1", "h2", "kw")], ignore_index=True)
    apps = []
    for coder in ("h1", "h2", "kw"):
        i, j = np.nonzero(rng.random((n, 110)) < 0.05)
        apps.append(codes.iloc[j].assign(answer_id=answers["answer_id"].to_numpy()[i], coder=coder))
    applications = pd.concat(apps, ignore_index=True)
    table = agreement_table(applications, units, codes, n_boot=1000, seed=1)
    assert len(table) == 3 * (110 + 6 + 1 + 2 + 2 + 1)
    defined = table["cohen_kappa"].notna()
    assert (table.loc[defined, "cohen_kappa_ci_low"] <= table.loc[defined, "cohen_kappa"]).all()
    assert (table.loc[defined, "cohen_kappa_ci_high"] >= table.loc[defined, "cohen_kappa"]).all()


# --------------------------------------------------------------------------------------------
# keyword_quality
# --------------------------------------------------------------------------------------------


def test_keyword_quality_by_hand():
    final = apps_frame(
        [
            ("A1", "final", "collaboration"),
            ("A2", "final", "collaboration"),
            ("A2", "final", "coaching_support"),
            ("A3", "final", "knowledgeable"),
        ]
    )
    keyword = apps_frame(
        [
            ("A1", "kw", "collaboration"),
            ("A3", "kw", "collaboration"),
            ("A2", "kw", "coaching_support"),
            ("A2", "kw", "coaching_support"),  # repeated row counts once
            ("A9", "kw", "knowledgeable"),  # answer outside the evaluation set: ignored
        ]
    )
    units = pd.DataFrame({"answer_id": ["A1", "A2", "A3", "A4"]})
    quality = keyword_quality(keyword, final, units, CODES)
    assert list(quality.columns) == [
        "framework",
        "dimension",
        "code_id",
        "n_answers",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1",
    ]
    by_code = quality.set_index("code_id")
    collab = by_code.loc["collaboration"]
    assert list(collab[["n_answers", "tp", "fp", "fn"]]) == [4, 1, 1, 1]
    assert collab["precision"] == 0.5 and collab["recall"] == 0.5 and collab["f1"] == 0.5
    support = by_code.loc["coaching_support"]
    assert (support["precision"], support["recall"], support["f1"]) == (1.0, 1.0, 1.0)
    known = by_code.loc["knowledgeable"]  # never predicted: precision undefined, F1 = 0
    assert pd.isna(known["precision"]) and known["recall"] == 0.0 and known["f1"] == 0.0
    unused = by_code.loc["time_allocated"]
    assert pd.isna(unused["precision"]) and pd.isna(unused["recall"]) and pd.isna(unused["f1"])
    overall = quality.iloc[-1]
    assert overall["code_id"] is None and overall["framework"] is None
    assert list(overall[["tp", "fp", "fn"]]) == [2, 1, 2]
    assert overall["precision"] == pytest.approx(2 / 3)
    assert overall["recall"] == pytest.approx(0.5)
    assert overall["f1"] == pytest.approx(4 / 7)


def test_keyword_quality_unknown_code():
    bad = apps_frame([("A1", "kw", "collaboration")]).assign(code_id="colaboration")
    with pytest.raises(AgreementError, match="applications_test.*not in the codebook"):
        keyword_quality(bad, apps_frame([]), pd.DataFrame({"answer_id": ["A1"]}), CODES)


def test_default_pairs_are_all_coder_pairs_sorted():
    table = agreement_table(SMALL_APPS, SMALL_UNITS, CODES, n_boot=0)
    assert set(zip(table["coder_a"], table["coder_b"], strict=True)) == {("ann", "bob")}
