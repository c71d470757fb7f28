"""Tests for pipeline.core.ingest.exports against real fixtures and small hand-made exports."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.ingest.exports import (
    READER_KINDS,
    ExportReadError,
    ExportTable,
    detect_kind,
    read_export,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"shared fixtures not found at {REAL}")


def cell(table: ExportTable, index: int, column: str) -> str:
    return table.rows[index][table.columns.index(column)]


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_xlsx(tmp_path: Path, name: str, rows: list[list[object]], merge: str | None = None):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    path = tmp_path / name
    workbook.save(path)
    return path


def assert_shape(table: ExportTable) -> None:
    assert len(table.labels) == len(table.columns)
    assert len(set(table.columns)) == len(table.columns)
    assert len(table.row_numbers) == len(table.rows)
    assert all(len(row) == len(table.columns) for row in table.rows)
    assert table.kind in READER_KINDS


# --------------------------------------------------------------------------------------
# real fixtures


@needs_real
def test_qualtrics_sample_current_format():
    path = REAL / "qualtrics" / "qualtrics_sample.csv"
    assert detect_kind(path) == "qualtrics"
    table = read_export(path)
    assert_shape(table)
    assert (table.kind, table.detected, table.encoding) == ("qualtrics", True, "utf-8")
    assert len(table.rows) == 1 and len(table.columns) == 20
    assert cell(table, 0, "Q2") == "Hello World!"
    assert cell(table, 0, "ResponseId") == "R_2YPOQ602ER1jkf1"
    assert table.labels[table.columns.index("Q2")] == "This is a free text question."
    assert "Nachname des Empfängers" in table.labels  # German labels decoded as UTF-8
    assert table.row_numbers == [4]
    assert table.problems == []
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@needs_real
def test_qualtrics_sample_legacy_format():
    path = REAL / "qualtrics" / "qualtrics_sample_legacy.csv"
    table = read_export(path)
    assert_shape(table)
    assert (table.kind, table.encoding) == ("qualtrics-legacy", "utf-8-sig")
    assert len(table.rows) == 1 and len(table.columns) == 15  # trailing comma column dropped
    assert table.columns[:3] == ["V1", "V2", "V3"]
    assert table.labels[0] == "ResponseID"
    assert cell(table, 0, "Q2") == "Hello World!"
    assert table.row_numbers == [3]
    assert table.problems == []


@needs_real
def test_qualtrics_developer_data():
    table = read_export(REAL / "qualtrics" / "qualtrics_developer_data.csv")
    assert_shape(table)
    assert table.kind == "qualtrics"
    assert len(table.rows) == 20 and len(table.columns) == 56
    assert "Q12 Side by side#1_1" in table.columns  # ids with spaces and '#'
    assert table.row_numbers == list(range(4, 24))
    assert table.problems == []
    feedback = table.columns.index("Q7 Multi line text")
    assert table.labels[feedback] == (
        "Please provide your feedback on the content included in the question tour."
    )
    answers = [row[feedback] for row in table.rows]
    # Despite the column name, no answer in this fixture spans lines: check they are intact.
    assert "I feel like it's pretty long but also has been useful" in answers
    longest = max(answers, key=len)
    assert longest.startswith("I thought this would have more information on how to use")
    assert len(longest) > 250
    assert [row[table.columns.index("Q6 Text entry")] for row in table.rows].count("N/A") == 2


@needs_real
def test_google_forms_jupyter_survey():
    path = REAL / "google-forms" / "jupyter_2016_education_survey.csv"
    assert detect_kind(path) == "google-forms"
    table = read_export(path)
    assert_shape(table)
    assert (table.kind, table.encoding) == ("google-forms", "utf-8")
    assert len(table.rows) == 125 and len(table.columns) == 25
    assert table.columns[0] == "Timestamp"
    assert table.labels == table.columns
    assert table.row_numbers == list(range(2, 127))
    assert table.problems == []
    assert cell(table, 0, "Timestamp") == "4/22/2016 19:57:50"
    multi_line = [value for row in table.rows for value in row if "\n" in value]
    assert multi_line and all("\r" not in value for value in multi_line)  # bare LF kept
    extensions = (
        "If you are using the notebook, are you using any custom or third-party extensions?"
    )
    assert cell(table, 124, extensions) == (
        "latex_envs\nexercice\nexercise2\ntoc2\nAll available on ipython-contrib"
    )


# --------------------------------------------------------------------------------------
# hand-made CSV exports


def test_google_forms_crlf_records_with_lf_inside_and_no_final_newline(tmp_path):
    data = (
        'Timestamp,"What worked from today\'s coaching session?"\r\n'
        '9/1/2023 9:00:00,"Line one\nline two 😀"\r\n'
        "9/1/2023 9:05:00,NA\r\n"
        "9/1/2023 9:06:00,none"
    ).encode()
    table = read_export(write_bytes(tmp_path, "gf.csv", data))
    assert table.kind == "google-forms"
    assert [row[1] for row in table.rows] == ["Line one\nline two 😀", "NA", "none"]
    assert table.row_numbers == [2, 3, 4]  # records, not physical lines


def test_missing_values_stay_text(tmp_path):
    data = b"id,answer\n1,NA\n2,N/A\n3,none\n4,null\n5,\n6,NaN\n"
    table = read_export(write_bytes(tmp_path, "na.csv", data))
    assert table.kind == "csv"
    assert [row[1] for row in table.rows] == ["NA", "N/A", "none", "null", "", "NaN"]


def test_qualtrics_import_id_with_timezone_and_detect(tmp_path):
    data = (
        "StartDate,ResponseId,Q1\n"
        "Start Date,Response ID,What worked from today's coaching session?\n"
        '"{""ImportId"":""startDate"",""timeZone"":""America/New_York""}",'
        '"{""ImportId"":""_recordId""}","{""ImportId"":""QID1_TEXT""}"\n'
        "2024-01-10 10:00:00,R_1,“Collaboration” with the team\n"
    ).encode()
    table = read_export(write_bytes(tmp_path, "q.csv", data))
    assert table.kind == "qualtrics"
    assert table.columns == ["StartDate", "ResponseId", "Q1"]
    assert table.labels[2] == "What worked from today's coaching session?"
    assert table.rows == [["2024-01-10 10:00:00", "R_1", "“Collaboration” with the team"]]
    assert table.row_numbers == [4]


def test_cp1252_smart_quotes(tmp_path):
    data = b"Timestamp,Q1\r\n9/1/2023 9:00:00,\x93Data Wise\x94 isn\x92t easy \x96 but useful\r\n"
    table = read_export(write_bytes(tmp_path, "excel.csv", data))
    assert table.encoding == "cp1252"
    assert table.rows[0][1] == "“Data Wise” isn’t easy – but useful"


def test_utf8_bom(tmp_path):
    data = "\ufeffTimestamp,Q1\r\n9/1/2023 9:00:00,café ✓\r\n".encode()
    table = read_export(write_bytes(tmp_path, "bom.csv", data))
    assert table.encoding == "utf-8-sig"
    assert table.columns[0] == "Timestamp"  # BOM not part of the name
    assert table.kind == "google-forms"
    assert table.rows[0][1] == "café ✓"


def test_ragged_record_goes_to_problems_with_row_number(tmp_path):
    data = b'id,answer\n1,ok\n2,"multi\nline"\n3,too,many\n4,short-is-padded\n5\n'
    table = read_export(write_bytes(tmp_path, "ragged.csv", data))
    assert [row[0] for row in table.rows] == ["1", "2", "4", "5"]
    assert table.rows[-1] == ["5", ""]
    assert table.row_numbers == [2, 3, 5, 6]
    assert len(table.problems) == 1
    problem = table.problems[0]
    assert problem.row == 4
    assert "ragged" in problem.reason and "'many'" in problem.reason
    # every record is in rows or problems
    assert sorted(table.row_numbers + [p.row for p in table.problems]) == [2, 3, 4, 5, 6]


def test_trailing_empty_cells_are_not_ragged_and_blank_lines_count_as_rows(tmp_path):
    data = b"id,answer\n1,ok,,\n\n3,fine\n"
    table = read_export(write_bytes(tmp_path, "trail.csv", data))
    assert table.rows == [["1", "ok"], ["3", "fine"]]
    assert table.row_numbers == [2, 4]
    assert table.problems == []


def test_unterminated_quote_is_reported_not_swallowed(tmp_path):
    data = b'id,answer\n1,ok\n2,"never closed\n3,lost\n4,lost too\n'
    table = read_export(write_bytes(tmp_path, "quote.csv", data))
    assert table.rows == [["1", "ok"]]
    assert len(table.problems) == 1
    assert table.problems[0].row == 3
    assert "never closed" in table.problems[0].reason


def test_duplicate_and_blank_column_names_made_unique(tmp_path):
    data = b"Comment,Comment,,Comment\na,b,c,d\n"
    table = read_export(write_bytes(tmp_path, "dups.csv", data))
    assert table.columns == ["Comment", "Comment (2)", "Unnamed: 2", "Comment (3)"]
    assert table.rows == [["a", "b", "c", "d"]]


def test_explicit_kind_is_not_detected(tmp_path):
    path = write_bytes(tmp_path, "gf.csv", b"Timestamp,Q1\n1/1/2024 1:00:00,x\n")
    table = read_export(path, kind="csv")
    assert (table.kind, table.detected) == ("csv", False)


# --------------------------------------------------------------------------------------
# SurveyMonkey

SURVEYMONKEY_ROWS = [
    [
        "Respondent ID",
        "Collector ID",
        "Start Date",
        "End Date",
        "IP Address",
        "Email Address",
        "First Name",
        "Last Name",
        "Custom Data 1",
        "What worked from today's coaching session?",
        "Which goal area did you work on?",
        "",
        "",
        "Comments",
        "Comments",
    ],
    [
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "Open-Ended Response",
        "Literacy",
        "Mathematics",
        "Other (please specify)",
        "Response",
        "Response",
    ],
    [
        "114",
        "900",
        "09/01/2023 09:00:00 AM",
        "09/01/2023 09:05:00 AM",
        "10.0.0.1",
        "",
        "",
        "",
        "",
        "Follow the process,\nand N/A",
        "Literacy",
        "",
        "graduation",
        "good",
        "none",
    ],
]


def check_surveymonkey(table: ExportTable) -> None:
    assert_shape(table)
    assert table.kind == "surveymonkey"
    assert table.columns[0] == "Respondent ID"
    assert table.labels[9] == "What worked from today's coaching session?"
    assert table.labels[10:13] == [
        "Which goal area did you work on? - Literacy",
        "Which goal area did you work on? - Mathematics",
        "Which goal area did you work on? - Other (please specify)",
    ]
    assert table.labels[13:] == ["Comments", "Comments"]
    assert table.columns[13:] == ["Comments", "Comments (2)"]
    assert table.row_numbers == [3]
    assert table.rows[0][9] == "Follow the process,\nand N/A"
    assert table.rows[0][12:] == ["graduation", "good", "none"]


def test_surveymonkey_csv(tmp_path):
    import csv

    path = tmp_path / "sm.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(SURVEYMONKEY_ROWS)
    assert detect_kind(path) == "surveymonkey"
    check_surveymonkey(read_export(path))


def test_surveymonkey_xlsx_with_merged_question(tmp_path):
    rows = [[value if value != "" else None for value in row] for row in SURVEYMONKEY_ROWS]
    path = write_xlsx(tmp_path, "sm.xlsx", rows, merge="K1:M1")
    assert detect_kind(path) == "surveymonkey"
    table = read_export(path)
    assert table.encoding == "xlsx"
    check_surveymonkey(table)


# --------------------------------------------------------------------------------------
# Microsoft Forms / generic XLSX


def test_microsoft_forms_xlsx(tmp_path):
    started = dt.datetime(2024, 3, 5, 14, 30, 0)
    rows = [
        ["Id", "Start time", "Completion time", "Email", "Name", "What worked?", "Improve?"],
        [1, started, started + dt.timedelta(minutes=3), "anonymous", None, "NA", "More time 🙏"],
        [None] * 7,  # an empty row in the middle still counts for row numbers
        [3, started, started, "anonymous", None, "Line 1\nLine 2", 4.5],
    ]
    path = write_xlsx(tmp_path, "msforms.xlsx", rows)
    assert detect_kind(path) == "microsoft-forms"
    table = read_export(path)
    assert_shape(table)
    assert (table.kind, table.encoding, table.detected) == ("microsoft-forms", "xlsx", True)
    assert table.columns[:3] == ["Id", "Start time", "Completion time"]
    assert table.rows[0] == [
        "1",
        "2024-03-05T14:30:00",
        "2024-03-05T14:33:00",
        "anonymous",
        "",
        "NA",
        "More time 🙏",
    ]
    assert table.rows[1][5:] == ["Line 1\nLine 2", "4.5"]
    assert table.row_numbers == [2, 4]
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_generic_xlsx(tmp_path):
    path = write_xlsx(tmp_path, "plain.xlsx", [["school", "answer"], ["PS 1", "none"]])
    table = read_export(path)
    assert (table.kind, table.columns, table.rows) == (
        "xlsx",
        ["school", "answer"],
        [["PS 1", "none"]],
    )


def test_xlsx_with_a_stale_dimension_loses_no_row(tmp_path):
    """A writer that leaves `<dimension ref="A1:B2"/>` while rows reach row 4: openpyxl's
    read-only mode would stop at row 2 and the last answers would vanish without a word."""
    import re
    import zipfile

    full = write_xlsx(tmp_path, "full.xlsx", [["school", "answer"], ["PS 1", "none"],
                                              ["PS 2", "more time"], ["PS 3", "planning"]])
    path = tmp_path / "stale.xlsx"
    with zipfile.ZipFile(full) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data, n = re.subn(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B2"/>',
                                  data)
                assert n == 1
            zout.writestr(item.filename, data)
    assert read_export(path).rows == [["PS 1", "none"], ["PS 2", "more time"],
                                      ["PS 3", "planning"]]


# --------------------------------------------------------------------------------------
# errors


def read_error(path: Path, kind: str | None = None) -> ExportReadError:
    with pytest.raises(ExportReadError) as info:
        read_export(path, kind)
    message = str(info.value)
    assert "\n" not in message and path.name in message
    assert info.value.file == str(path)
    return info.value


def test_error_missing_file(tmp_path):
    assert "not found" in str(read_error(tmp_path / "nope.csv"))


def test_error_empty_file(tmp_path):
    err = read_error(write_bytes(tmp_path, "empty.csv", b""))
    assert str(err) == f"{tmp_path / 'empty.csv'}: file is empty"
    read_error(write_bytes(tmp_path, "bom_only.csv", b"\xef\xbb\xbf\r\n"))


def test_error_header_only(tmp_path):
    err = read_error(write_bytes(tmp_path, "header.csv", b"Timestamp,Q1\r\n"))
    assert str(err).endswith("header.csv: header only, no data rows")
    qualtrics_headers = (
        b'id,Q1\nID,Question\n"{""ImportId"":""_recordId""}","{""ImportId"":""QID1""}"\n'
    )
    err = read_error(write_bytes(tmp_path, "q_header.csv", qualtrics_headers))
    assert "header only" in str(err)


def test_error_undecodable_bytes_names_offset(tmp_path):
    data = b"Timestamp,Q1\n1/1/2024,ok \x81 bad\n"
    err = read_error(write_bytes(tmp_path, "bad.csv", data))
    assert err.offset == data.index(b"\x81")
    assert str(err).endswith(
        f"bad.csv: cannot decode bytes as UTF-8 or cp1252 at byte offset {err.offset}"
    )


def test_error_offset_is_first_bad_utf8_byte(tmp_path):
    # 0x93 is fine in cp1252 but not UTF-8; 0x9d later is undefined in cp1252
    data = b"a,b\n\x93x\x94,\x9d\n"
    err = read_error(write_bytes(tmp_path, "mixed.csv", data))
    assert err.offset == 4


def test_error_truncated_xlsx(tmp_path):
    good = write_xlsx(tmp_path, "good.xlsx", [["Id", "Q"], [1, "x"]]).read_bytes()
    err = read_error(write_bytes(tmp_path, "cut.xlsx", good[: len(good) // 2]))
    assert "not a readable XLSX workbook" in str(err)
    err = read_error(write_bytes(tmp_path, "junk.xlsx", b"this is not a zip file"))
    assert "truncated or corrupt zip" in str(err)


def test_error_legacy_xls(tmp_path):
    err = read_error(
        write_bytes(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    )
    assert ".xls" in str(err)


def test_error_unknown_kind(tmp_path):
    path = write_bytes(tmp_path, "x.csv", b"a\n1\n")
    err = read_error(path, kind="typeform")
    assert "unknown export kind 'typeform'" in str(err) and "google-forms" in str(err)


def test_error_qualtrics_missing_header_rows(tmp_path):
    data = b"StartDate,ResponseId,Q1\n2024-01-10,R_1,answer\n2024-01-11,R_2,other\n"
    err = read_error(write_bytes(tmp_path, "q2.csv", data), kind="qualtrics")
    assert "Qualtrics header rows 2-3" in str(err) and "ImportId" in str(err)
    assert err.row == 3
    err = read_error(write_bytes(tmp_path, "q1.csv", b"StartDate,Q1\n"), kind="qualtrics")
    assert "Qualtrics header rows 2-3" in str(err)


def test_error_message_location_format():
    err = ExportReadError("export.csv", "bad cell", column="Q2", row=7)
    assert str(err) == "export.csv: bad cell at row 7, column 'Q2'"
    assert (err.file, err.message, err.column, err.row, err.offset) == (
        "export.csv",
        "bad cell",
        "Q2",
        7,
        None,
    )


def test_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(ExportReadError("e.csv", "cannot decode", offset=12)))
    assert (str(err), err.offset) == ("e.csv: cannot decode at byte offset 12", 12)


# --------------------------------------------------------------------------------------
# property: any cell text written by a CSV writer comes back verbatim

cell_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
)
def test_csv_cells_round_trip_verbatim(tmp_path_factory, answers, encoding):
    import csv
    import io

    records = [[str(index), q1, q2] for index, (q1, q2) in enumerate(answers, start=1)]
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([["id", "Q1", "Q2"], *records])
    path = tmp_path_factory.mktemp("prop") / "export.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    table = read_export(path, kind="csv")
    assert table.rows == records
    assert table.row_numbers == list(range(2, len(records) + 2))
    assert table.problems == []
    assert table.encoding == encoding


def test_utf16_export_is_refused_by_name(tmp_path):
    path = tmp_path / "unicode.csv"
    path.write_bytes("Timestamp,Q1\n1/1/2021,Hi\n".encode("utf-16"))
    with pytest.raises(ExportReadError, match="UTF-16 or UTF-32"):
        read_export(path)


def test_microsoft_forms_headers_any_case(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["ID", "Start Time", "Completion Time", "Email", "Name", "What worked?"])
    ws.append([1, "2024-01-05 10:00", "2024-01-05 10:05", "a@x", "A", "Coaching support"])
    path = tmp_path / "forms.xlsx"
    wb.save(path)
    assert read_export(path).kind == "microsoft-forms"


# --------------------------------------------------------------------------------------
# issue 12: nothing reinterpreted silently


def test_a_semicolon_file_is_named_and_reads_with_its_delimiter(tmp_path):
    path = write_bytes(tmp_path, "s.csv", b"Timestamp;Q1;Q2\n1/1/2021;caf\xc3\xa9;ok\n")
    with pytest.raises(ExportReadError, match="looks semicolon-delimited"):
        read_export(path)
    table = read_export(path, delimiter=";")
    assert table.columns == ["Timestamp", "Q1", "Q2"] and table.rows == [["1/1/2021", "café",
                                                                          "ok"]]


def test_utf8_and_cp1252_rows_mixed_are_refused_naming_the_lines(tmp_path):
    data = "Q1,Q2\nCafé,ok\n".encode() + "Résumé,ok\n".encode("cp1252")
    with pytest.raises(ExportReadError) as err:
        read_export(write_bytes(tmp_path, "m.csv", data))
    assert "mixes two text encodings: line 2 is UTF-8" in str(err.value)
    assert "line 3 is not (byte 0xE9" in str(err.value)


def test_a_file_cut_mid_row_has_that_row_in_problems(tmp_path):
    table = read_export(write_bytes(tmp_path, "t.csv", b"A,B,C\n1,2,3\n4,5"))
    assert table.rows == [["1", "2", "3"]]
    [problem] = table.problems
    assert problem.row == 3 and "ends in the middle of this row (2 of 3 cells" in problem.reason
    # the same short row with a line end is an ordinary short row
    assert read_export(write_bytes(tmp_path, "u.csv", b"A,B,C\n1,2,3\n4,5\n")).rows[-1] == [
        "4", "5", ""]


def test_repeated_column_names_are_listed(tmp_path):
    table = read_export(write_bytes(tmp_path, "d.csv", b"A,B,A,A\n1,2,3,4\n"))
    assert table.columns == ["A", "B", "A (2)", "A (3)"]
    assert table.duplicate_columns == {"A": [1, 3, 4]}


def test_qualtrics_missing_a_header_row_is_named(tmp_path):
    ids = "StartDate,EndDate,ResponseId,Q1\n"
    labels = "Start Date,End Date,Response ID,What worked?\n"
    importid = '"{""ImportId"":""startDate""}","{""ImportId"":""endDate""}",' \
               '"{""ImportId"":""_recordId""}","{""ImportId"":""QID1_TEXT""}"\n'
    data = "2024-01-01 10:00:00,2024-01-01 10:05:00,R_abc,Good\n"
    with pytest.raises(ExportReadError, match="the ImportId row .* is missing"):
        read_export(write_bytes(tmp_path, "a.csv", (ids + labels + data).encode()))
    with pytest.raises(ExportReadError, match="the question-text row .* is missing"):
        read_export(write_bytes(tmp_path, "b.csv", (ids + importid + data).encode()))
    with pytest.raises(ExportReadError, match="the column-id row .* is missing"):
        read_export(write_bytes(tmp_path, "c.csv", (labels + importid + data).encode()))
    # one header row and data (a re-saved export): a plain CSV, read as such
    assert read_export(write_bytes(tmp_path, "d.csv", (ids + data).encode())).kind == "csv"


def test_answers_on_another_worksheet_are_named_and_read_with_sheet(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["exported by the district"])
    answers = workbook.create_sheet("Responses")
    answers.append(["Q1", "Q2"])
    answers.append(["good", "more time"])
    path = tmp_path / "w.xlsx"
    workbook.save(path)
    with pytest.raises(ExportReadError, match="they are on worksheet 'Responses'"):
        read_export(path)
    table = read_export(path, sheet="responses")
    assert table.rows == [["good", "more time"]] and table.sheet == "Responses"
    with pytest.raises(ExportReadError, match="did you mean 'Responses'"):
        read_export(path, sheet="Responses2")


def test_a_cell_over_the_csv_modules_limit_is_read(tmp_path):
    big = "x" * 200_000
    table = read_export(write_bytes(tmp_path, "big.csv", f"Q1,Q2\n{big},ok\n".encode()))
    assert table.rows == [[big, "ok"]]
