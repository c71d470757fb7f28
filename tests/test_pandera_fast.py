"""pipeline/core/warehouse/pandera_fast.py: the contracts' string dtype and pattern check say
what pandera's `str` and `str_matches` say, row for row."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.core.warehouse.pandera_fast import FastString

PATTERN = r"^20\d\d-\d\d$"
VALUES = ["2020-21", "2021-22", "2020-21", "2020/21", "x2020-21", "2020-21\n", "", "2023-24"]


def _model(dtype, coerce: bool = False, **field):
    config = type("Config", (), {"coerce": coerce})
    return type("Model", (pa.DataFrameModel,), {
        "__annotations__": {"year": pa.typing.Series[dtype]},
        "year": pa.Field(nullable=True, **field), "Config": config})


def _failures(model, frame: pd.DataFrame) -> list[tuple]:
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return sorted(zip(cases["column"], cases["index"], cases["failure_case"].astype(str),
                          strict=True))
    return []


@pytest.mark.parametrize("values", [
    VALUES,
    [*VALUES, None],
    [None, None],
    ["2020-21", 3, None, 4.5],   # not strings: pandera's own check names each of them
])
def test_fast_string_fails_exactly_where_pandera_str_does(values):
    frame = pd.DataFrame({"year": pd.Series(values, dtype=object)})
    assert _failures(_model(FastString), frame) == _failures(_model(str), frame)


def test_a_non_string_value_is_a_dtype_failure():
    frame = pd.DataFrame({"year": pd.Series(["2020-21", 3], dtype=object)})
    assert [(c, i) for c, i, _ in _failures(_model(FastString), frame)] == [("year", 1)]


@pytest.mark.parametrize("values", [VALUES, [*VALUES, None, None], ["2020-21"] * 5, []])
def test_matches_fails_exactly_where_str_matches_does(values):
    frame = pd.DataFrame({"year": pd.Series(values, dtype=object)})
    fast = _failures(_model(FastString, matches={"pattern": PATTERN}), frame)
    slow = _failures(_model(str, str_matches=PATTERN), frame)
    assert fast == slow
    if values[:len(VALUES)] == VALUES:
        assert {i for _, i, _ in fast} == {3, 4, 6}   # "2020-21\n" matches, as with re.match


@pytest.mark.parametrize("values", [
    VALUES,
    [*VALUES, None, float("nan")],
    [None, None],
    [],
    ["2020-21", 3, None, 4.5],   # not all strings: coerced by pandera, as `str` does
])
def test_coercion_gives_what_pandera_str_gives(values):
    """A column of strings and nulls is left as it is: what pandera's coercion gives back."""
    frame = pd.DataFrame({"year": pd.Series(values, dtype=object)})

    def coerced(dtype):
        return _model(dtype, coerce=True).validate(frame.copy())

    pd.testing.assert_frame_equal(coerced(FastString), coerced(str))
    if values == VALUES:   # left as it was
        assert coerced(FastString)["year"].tolist() == VALUES
