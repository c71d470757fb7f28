"""core.ingest.dates: one file's submission times are read one way, or the file stops."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.core.ingest.dates import excel_serial, resolve_dates, slash_date, unambiguous
from pipeline.core.ingest.mapping import Mapping

YEAR = Mapping("2020-21", None)


def read(values, mapping=YEAR):
    return resolve_dates(list(enumerate(values, start=2)), mapping)


def test_one_row_decides_the_order_for_the_whole_file():
    out = read(["14/09/2020 15:02:11", "3/10/2020 9:00"])
    assert out.order == "day-first" and out.values[3] == datetime(2020, 10, 3, 9, 0)
    out = read(["9/14/2020 3:02 PM", "3/10/2021 9:00"])
    assert out.order == "month-first" and out.values[2] == datetime(2020, 9, 14, 15, 2)


def test_rows_that_disagree_stop_the_file_naming_them():
    out = read(["14/09/2020", "15/09/2020", "9/17/2020"])
    assert out.conflict.startswith("rows disagree on the order of day and month: row(s) 2, 3 "
                                   "read only day-first")
    assert "row(s) 4 read only month-first (e.g. '9/17/2020')" in out.conflict


def test_undecided_dates_use_the_mapping_then_the_window_then_stop():
    assert read(["3/4/2021"], Mapping("2020-21", None, date_order="day-first")).values[2] == \
        datetime(2021, 4, 3)
    # 9/4/2020 as 4 September is inside 2020-21; as 9 April 2020 it is not
    out = read(["9/4/2020", "10/5/2020"])
    assert (out.order, out.how) == ("month-first", "the only order inside the school year")
    out = read(["3/4/2021", "5/6/2021"])
    assert out.conflict and "date_order" in out.conflict
    assert read(["5/5/2021"]).values[2] == datetime(2021, 5, 5)      # reads the same both ways


def test_a_wrong_timestamp_format_is_a_conflict_not_a_silent_misreading():
    fmt = Mapping("2020-21", None, timestamp_format="%m/%d/%Y %H:%M:%S")
    out = read(["9/14/2020 15:02:11", "14/09/2020 15:02:11"], fmt)
    assert "does not read row(s) 3" in out.conflict
    ok = read(["9/14/2020 15:02:11", "2020-09-15T10:00:00", "44105.5", "soon"], fmt)
    assert ok.conflict is None and len(ok.values) == 3
    assert ok.problems == {5: "unreadable timestamp 'soon' (timestamp_format "
                              "'%m/%d/%Y %H:%M:%S')"}


def test_unambiguous_forms():
    assert unambiguous("2024-01-15T10:00:00Z") == datetime(2024, 1, 15, 10)
    assert unambiguous("2024/01/15 10:00") == datetime(2024, 1, 15, 10)
    assert unambiguous("Sep 14, 2020 3:02 PM") == datetime(2020, 9, 14, 15, 2)
    assert unambiguous("3/4/2021") is None
    assert excel_serial("45306.4375") == datetime(2024, 1, 15, 10, 30)
    assert excel_serial("123.5") is None and excel_serial("99999") is None
    assert slash_date("31/02/2021", "day-first") is None


@pytest.mark.parametrize("when,inside", [("2020-07-01 00:00:00", True),
                                         ("2021-06-30 23:59:59", True),
                                         ("2020-06-30 23:59:59", False),
                                         ("2021-07-01 00:00:00", False)])
def test_the_default_window_is_july_to_june(when, inside):
    assert read([when]).outside == ([] if inside else [2])


def test_the_window_comes_from_the_mapping():
    from datetime import date

    m = Mapping("2020-21", None, window_start=date(2020, 8, 15), window_end=date(2021, 6, 15))
    assert read(["2020-08-01 10:00:00", "2020-09-01 10:00:00"], m).outside == [2]
    assert m.window_text() == "2020-08-15 to 2021-06-15"
    assert not read(["2020-08-01 10:00:00", "2020-09-01 10:00:00"], m).mostly_outside()
    assert read(["2019-09-01 10:00:00", "2019-09-02 10:00:00", "2020-09-01 10:00:00"],
                m).mostly_outside()
