"""Pure staging and mapping functions on small inputs with known answers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import MappingError, load_mapping, resolve_columns
from pipeline.core.privacy.redact import RosterEntry
from tests.helpers import GF_HEADER, SESSION_1, write_landing


@pytest.mark.parametrize("text", ["NA", "n/a", "N/A", "none", "None.", "-", "--", "nothing",
                                  "Nothing!", "  na  ", "No comment", "?"])
def test_non_substantive(text):
    assert staging.is_non_substantive(text)


@pytest.mark.parametrize("text", ["Nothing beats the protocol", "None of us had time",
                                  "Data", "ok 👍", "no more time"])
def test_substantive(text):
    assert not staging.is_non_substantive(text)


def test_roles_and_sessions():
    assert staging.normalise_role("Assistant  Principal") == "administrator"
    assert staging.normalise_role("Teacher") == "teacher"
    assert staging.normalise_role("Lunch aide") == "other"
    assert staging.normalise_role("") is None
    assert staging.session_number("Session 3 (January)", "x.csv") == 3
    assert staging.session_number(None, "session-07.csv") == 7
    assert staging.session_number(None, "export.csv") is None


def test_timestamps():
    fmt = "%m/%d/%Y %H:%M:%S"
    assert staging.parse_timestamp("9/4/2020 8:05:01", fmt) == datetime(2020, 9, 4, 8, 5, 1)
    assert staging.parse_timestamp("2024-01-15 10:00:00", None) == datetime(2024, 1, 15, 10)
    assert staging.parse_timestamp("not a date", fmt) is None
    assert staging.parse_timestamp("", fmt) is None


def test_missing_mapped_column_names_every_missing_column(tmp_path: Path):
    landing = write_landing(tmp_path, {"session-01.csv": SESSION_1})
    mapping = load_mapping(landing / "2020-21" / "mapping.yaml")
    with pytest.raises(MappingError, match=r"x\.csv: column 'What is your role\?'"):
        resolve_columns(mapping, ["Timestamp"] + [c for c in GF_HEADER.split(",")[1:]
                                                  if "role" not in c],
                        ["Timestamp"] + [c for c in GF_HEADER.split(",")[1:] if "role" not in c],
                        "x.csv")


@pytest.mark.parametrize("body,message", [
    ("school_year: 2020\ncolumns: {worked: a, improve: b}", "is not like '2020-21'"),
    ("school_year: '2020-22'\ncolumns: {worked: a, improve: b}", "is not like '2020-21'"),
    ("school_year: '2020-21'\ncolumns: {worked: a}", "columns.improve"),
    ("school_year: '2020-21'\ncolumns: {worked: a, improve: b, shoe: c}", "unknown field"),
    ("school_year: [", "invalid YAML"),
    ("school_year: '2020-21'\ncolumns: {worked: Email, improve: b}\nidentifying: [email]",
     "identifying column"),
])
def test_bad_mappings(tmp_path: Path, body, message):
    path = tmp_path / "mapping.yaml"
    path.write_text(body)
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


def _stage(tmp_path: Path, files: dict[str, str]):
    landing = write_landing(tmp_path, files)
    data = raw.read_year(landing / "2020-21")
    mapping = load_mapping(landing / "2020-21" / "mapping.yaml")
    roster = [RosterEntry("Marisol Okafor", "external coach")]
    return data, staging.stage_year(data.export_files, data.survey_rows, mapping, roster)


def test_answer_ids_stable_and_unique(tmp_path: Path):
    _, first = _stage(tmp_path / "a", {"session-01.csv": SESSION_1})
    _, second = _stage(tmp_path / "b", {"session-01.csv": SESSION_1})
    assert list(first.answers["answer_id"]) == list(second.answers["answer_id"])
    assert first.answers["answer_id"].is_unique


def test_repeated_submission_across_files_is_quarantined_in_the_later_file(tmp_path: Path):
    line, other = SESSION_1.split("\r\n")[1:3]
    data, staged = _stage(tmp_path, {"session-01.csv": f"{GF_HEADER}\r\n{line}\r\n",
                                     "session-02.csv": f"{GF_HEADER}\r\n{line}\r\n{other}\r\n"})
    assert len(staged.quarantine) == 1
    q = staged.quarantine.iloc[0]
    assert (q.file_name, q.row_number, q.level) == ("session-02.csv", 2, "row")
    assert "session-01.csv row 2" in q.reason


def test_bad_cells_keep_the_row_and_are_flagged(tmp_path: Path):
    body = f"{GF_HEADER}\r\nsoon-ish,a@x,Lincoln,,Teacher,Good protocol,\r\n"
    _, staged = _stage(tmp_path, {"session-01.csv": body})
    assert len(staged.answers) == 1
    answer = staged.answers.iloc[0]
    assert answer["submitted_at"] is pd.NaT and answer["coach_id"] is None
    q = staged.quarantine.sort_values("column_name")
    assert list(q["level"]) == ["cell", "cell"]
    assert list(q["column_name"]) == ["Timestamp", "Who was your coach today?"]
    assert "unreadable timestamp 'soon-ish'" in q.iloc[0]["reason"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "NA", "Great data talk", "Marisol rocks", " "]),
                          st.sampled_from(["", "more time", "none", " "])), min_size=1,
                max_size=12))
def test_every_row_is_staged_or_quarantined(tmp_path_factory, answers):
    rows = [f'9/14/2020 15:{i:02d}:00,x@y,Lincoln,Marisol Okafor,Teacher,"{w}","{m}"'
            for i, (w, m) in enumerate(answers)]
    tmp = tmp_path_factory.mktemp("prop")
    data, staged = _stage(tmp, {"session-01.csv": "\r\n".join([GF_HEADER, *rows]) + "\r\n"})
    respondents = staged.answers["response_id"].nunique()
    quarantined = int((staged.quarantine["level"] == "row").sum())
    assert respondents + quarantined == len(data.survey_rows) == len(answers)
    assert not staged.answers["answer_text"].str.contains("Marisol").any()


def test_public_salt_is_flagged_only_for_real_data():
    from pipeline import settings

    assert not settings.public_salt_on_real_data(settings.DEFAULT_SALT, settings.landing_dir())
    assert settings.public_salt_on_real_data(settings.DEFAULT_SALT, "/srv/district/landing")
    assert not settings.public_salt_on_real_data("a private salt", "/srv/district/landing")


@pytest.mark.parametrize("record", [
    {"a": "text", "b": "", "c": "é \u2028 ok"},
    {"n": 123456789012345678901234567890, "x": "t"},    # past 64 bits: json keeps the int
    {"f": 1.5, "i": 7, "b": True, "z": None},
    {"nan": float("nan"), "inf": float("inf")},
    {"lone": "\ud800"},                                    # a lone surrogate
])
def test_read_record_reads_what_json_reads(record):
    import json
    text = json.dumps(record, ensure_ascii=False)
    got, want = raw.read_record(text), json.loads(text)
    assert repr(got) == repr(want)
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.one_of(
    st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())))
def test_read_record_matches_json_on_any_flat_record(record):
    import json
    text = json.dumps(record, ensure_ascii=False)
    assert repr(raw.read_record(text)) == repr(json.loads(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), st.none(), st.integers(), st.floats()), max_size=6),
       st.sampled_from(["", "\ud800", "\udfff x", "é 😀 \u2028 \x00 \x7f"]))
def test_record_text_is_compact_json_of_the_row(cells, extra):
    """raw.survey_rows' record text: the text json.dumps gives (ensure_ascii off, compact),
    whether orjson writes it (every cell text) or json does (a lone surrogate, a non-text
    cell); read_record gives the row back."""
    import json
    row = [*cells, extra]
    columns = [f"col {i}" for i in range(len(row))]
    text = raw.record_text(columns, row)
    assert text == json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False,
                              separators=(",", ":"))
    assert repr(raw.read_record(text)) == repr(json.loads(text))
