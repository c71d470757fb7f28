"""pipeline.core.coding.coder_sheets: layouts, workbook and CSV-per-coder, every validation reason,
the units rule, and (property) that every sheet row is accounted for exactly once."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.coding import dual_coding
from pipeline.core.coding.codebook import codebook_codes_frame, load_codebooks
from pipeline.core.coding.coder_sheets import (
    SHEET_ROW_COLUMNS,
    CoderSheetError,
    coder_sheet_files,
    read_coder_sheets,
)
from pipeline.core.coding.sheet_validation import sheet_codes, validate_coder_sheets
from pipeline.core.privacy.redact import COACH_PLACEHOLDER, Redactor, RosterEntry

ROOT = Path(__file__).resolve().parents[1]
BOOKS = load_codebooks(ROOT / "codebooks")
CODES = sheet_codes(BOOKS)

ANSWERS = pd.DataFrame(
    [
        ("A1", "2020-21", "r1", "worked", "Our team collaborated on the plan", False),
        ("A2", "2020-21", "r1", "improve", "We ran out of time", False),
        ("A3", "2020-21", "r2", "worked", "N/A", True),
        ("A4", "2023-24", "r1", "worked", "The coach is knowledgeable", False),
        ("A5", "2023-24", "r5", "improve", "More time to plan", False),
    ],
    columns=["answer_id", "school_year", "response_id", "question_id", "answer_text",
             "non_substantive"],
)
LONG_HEADER = ["answer_id", "framework", "category", "code", "note"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_workbook(path: Path, tabs: dict[str, list[list[object]]]) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    for name, rows in tabs.items():
        ws = wb.add_worksheet(name)
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v is not None:
                    ws.write(i, j, v)
    wb.close()
    return path


def validate(rows):
    return validate_coder_sheets(rows, ANSWERS, CODES)


def long_rows(tmp_path: Path, rows: list[list[str]], name: str = "coder_jm.csv"):
    return read_coder_sheets(write_csv(tmp_path / name, [LONG_HEADER, *rows]))


def reasons(quarantine: pd.DataFrame) -> list[str]:
    return list(quarantine["reason"])


# ----------------------------------------------------------------------------------- reading


def test_csv_per_coder_long_layout_keeps_provenance(tmp_path):
    write_csv(tmp_path / "coder_jm.csv", [LONG_HEADER,
                                          ["A1", "Scale", "Depth", "Collaboration", ""],
                                          ["", "", "", "", ""],  # blank row: not data
                                          ["A2", "Scale", "Sustainability", "time allocated",
                                           "ran out"]])
    write_csv(tmp_path / "coder_ak.csv", [LONG_HEADER, ["A1", "", "", "", ""]])
    rows = read_coder_sheets([tmp_path / "coder_jm.csv", tmp_path / "coder_ak.csv"])
    assert list(rows.columns) == SHEET_ROW_COLUMNS
    assert rows[["coder", "source_file", "source_sheet", "source_row", "layout"]].values.tolist() == [
        ["coder_jm", "coder_jm.csv", "", 2, "long"],
        ["coder_jm", "coder_jm.csv", "", 4, "long"],
        ["coder_ak", "coder_ak.csv", "", 2, "long"],
    ]
    apps, units, quarantine = validate(rows)
    assert apps[["coder", "answer_id", "code_id", "dimension", "note"]].values.tolist() == [
        ["coder_jm", "A1", "collaboration", "depth", ""],
        ["coder_jm", "A2", "time_allocated", "sustainability", "ran out"],
    ]
    assert quarantine.empty
    # A1 listed by both; A2 listed by jm and, for ak, covered by the session.
    got = units[["coder", "answer_id", "basis"]].values.tolist()
    assert got == [["coder_ak", "A1", "listed"], ["coder_ak", "A2", "session"],
                   ["coder_jm", "A1", "listed"], ["coder_jm", "A2", "listed"]]


def test_workbook_one_tab_per_coder_layout_detected_per_tab(tmp_path):
    path = write_workbook(tmp_path / "sheets.xlsx", {
        "_instructions": [["anything at all"]],
        "coder_jm": [LONG_HEADER, ["A1", "Scale", "Depth", "Collaboration"]],
        "coder_ak": [["answer_id", "Collaboration", "time_allocated", "answer_text"],
                     ["A1", 1, 0, "Our team collaborated"],
                     ["A2", 0, None, "We ran out of time"],
                     ["A4", "x", 1, "The coach"]],
    })
    rows = read_coder_sheets(path)
    assert set(rows["source_sheet"]) == {"coder_jm", "coder_ak"}
    assert dict(zip(rows["coder"], rows["layout"], strict=True)) == {"coder_jm": "long",
                                                                      "coder_ak": "wide"}
    apps, units, quarantine = validate(rows)
    ak = apps[apps["coder"] == "coder_ak"]
    assert ak[["answer_id", "code_id", "source_row", "source_column"]].values.tolist() == [
        ["A1", "collaboration", 2, "Collaboration"],
        ["A4", "time_allocated", 4, "time_allocated"],
    ]
    assert quarantine[["coder", "source_row", "column_name"]].values.tolist() == [
        ["coder_ak", 4, "Collaboration"]]
    assert "bad value 'x'" in quarantine["reason"].iloc[0]
    listed = units[(units["coder"] == "coder_ak") & (units["basis"] == "listed")]
    assert sorted(listed["answer_id"]) == ["A1", "A2", "A4"]  # A2: all zero = coded, nothing


def test_wide_layout_by_response_id_and_question(tmp_path):
    rows = read_coder_sheets(write_csv(tmp_path / "coder_x.csv", [
        ["response_id", "question", "school_year", "coaching_support", "Knowledgeable"],
        ["r1", "Q1", "2023-24", "0", "1"],
        ["r1", "improve", "", "", ""],  # r1 / improve exists only in 2020-21
    ]))
    apps, units, quarantine = validate(rows)
    assert apps[["answer_id", "code_id"]].values.tolist() == [["A4", "knowledgeable"]]
    assert quarantine.empty
    assert set(units.loc[units["basis"] == "listed", "answer_id"]) == {"A4", "A2"}


def test_unrecognised_layout_is_an_error(tmp_path):
    path = write_csv(tmp_path / "coder_x.csv", [["id", "what"], ["A1", "Collaboration"]])
    with pytest.raises(CoderSheetError, match="cannot tell the layout"):
        read_coder_sheets(path)
    path = write_csv(tmp_path / "coder_y.csv", [["code", "category"], ["Collaboration", "Depth"]])
    with pytest.raises(CoderSheetError, match="needs an 'answer_id' column"):
        read_coder_sheets(path)


def test_folder_skips_queue_files_and_lock_files(tmp_path):
    write_csv(tmp_path / "coder_jm.csv", [LONG_HEADER, ["A1", "", "", "", ""]])
    write_csv(tmp_path / "adjudications.csv", [["discrepancy_id", "answer_id", "decision"]])
    (tmp_path / "~$sheets.xlsx").write_bytes(b"lock")
    (tmp_path / "README.md").write_text("x")
    assert [p.name for p in coder_sheet_files(tmp_path)] == ["coder_jm.csv"]
    assert set(read_coder_sheets(tmp_path)["coder"]) == {"coder_jm"}


# ----------------------------------------------------------------------------------- validation


def test_unknown_answer_id(tmp_path):
    _a, _u, q = validate(long_rows(tmp_path, [["A9", "Scale", "Depth", "Collaboration", ""]]))
    assert q[["source_row", "column_name", "answer_id"]].values.tolist() == [[2, "answer_id",
                                                                               "A9"]]
    assert reasons(q) == ["unknown answer id 'A9' (not in staging.answers)"]


def test_typo_in_code_suggests_nearest_code(tmp_path):
    rows = long_rows(tmp_path, [["A1", "Scale", "Depth", "Colaboration", ""],
                                ["A1", "Scale", "Depth", "Zebra crossing", ""]])
    _a, _u, q = validate(rows)
    assert reasons(q) == [
        "code 'Colaboration' is not in the codebook; did you mean collaboration?",
        "code 'Zebra crossing' is not in the codebook; no close match",
    ]
    assert list(q["column_name"]) == ["code", "code"]


def test_code_by_id_label_or_alias_and_category_by_prefix(tmp_path):
    rows = long_rows(tmp_path, [
        ["A1", "Coburn's Scale Framework", "depth", "collaboration", ""],
        ["A2", "relational trust", "Competence", "Accomplishing tasks", ""],  # alias, prefix
        ["A4", "Relational Trust", "Competence in core responsibilities", "KNOWLEDGEABLE", ""],
    ])
    apps, _u, q = validate(rows)
    assert q.empty, reasons(q)
    assert list(apps["code_id"]) == ["collaboration", "accomplishes_tasks", "knowledgeable"]


def test_category_not_matching_the_dimension_names_both(tmp_path):
    _a, _u, q = validate(long_rows(tmp_path, [["A2", "Scale", "Depth", "time allocated", ""]]))
    assert reasons(q) == ["category 'Depth' does not match the dimension of time_allocated "
                          "(Sustainability)"]
    assert list(q["column_name"]) == ["category"]


def test_framework_not_matching(tmp_path):
    _a, _u, q = validate(long_rows(tmp_path, [["A1", "Relational trust", "", "Collaboration",
                                               ""]]))
    assert reasons(q) == ["framework 'Relational trust' does not match the framework of "
                          "collaboration (scale)"]


def test_duplicate_row_keeps_the_first(tmp_path):
    rows = long_rows(tmp_path, [["A1", "Scale", "Depth", "Collaboration", ""],
                                ["A1", "Scale", "Depth", "collaboration", "again"]])
    apps, _u, q = validate(rows)
    assert list(apps["source_row"]) == [2]
    assert reasons(q) == ["duplicate: coder_jm already applied collaboration to A1 "
                          "(coder_jm.csv row 2)"]


def test_human_code_on_non_substantive_answer(tmp_path):
    rows = long_rows(tmp_path, [["A3", "Scale", "Sustainability", "Coaching support", ""],
                                ["A3", "", "", "", ""]])  # listing it with no code is fine
    apps, units, q = validate(rows)
    assert apps.empty
    assert reasons(q) == ["human code coaching_support on a non-substantive answer ('N/A')"]
    assert ["A3", "listed"] in units[["answer_id", "basis"]].values.tolist()


def test_category_without_code_and_missing_answer_id(tmp_path):
    rows = long_rows(tmp_path, [["A1", "Scale", "Depth", "", ""],
                                ["", "Scale", "Depth", "Collaboration", ""]])
    _a, _u, q = validate(rows)
    assert reasons(q) == ["category 'Depth' given without a code",
                          "no answer id (and no response id)"]


def test_response_id_problems(tmp_path):
    header = ["response_id", "question", "code"]
    rows = read_coder_sheets(write_csv(tmp_path / "coder_x.csv", [
        header, ["r1", "worked", "Collaboration"],  # r1/worked in two school years
        ["r7", "Q2", "Collaboration"], ["r1", "Q3", "Collaboration"],
        ["r5", "In what ways can we improve today's coaching session?", "time allocated"],
    ]))
    apps, _u, q = validate(rows)
    assert reasons(q) == [
        "response id 'r1' matches answers in several school years (2020-21, 2023-24); add a "
        "school_year column",
        "unknown response id 'r7' for question improve (not in staging.answers)",
        "question 'Q3' is not worked/improve (Q1/Q2)",
    ]
    assert apps[["answer_id", "code_id"]].values.tolist() == [["A5", "time_allocated"]]


def test_several_problems_in_one_row_are_all_reported(tmp_path):
    _a, _u, q = validate(long_rows(tmp_path, [["A9", "Scale", "Depht", "Colaboration", ""]]))
    assert len(q) == 1
    assert q["column_name"].iloc[0] == "answer_id"
    assert q["reason"].iloc[0].startswith(
        "unknown answer id 'A9' (not in staging.answers); code 'Colaboration' is not")


def test_plain_codebook_frame_is_enough(tmp_path):
    rows = long_rows(tmp_path, [["A1", "scale", "Depth", "Collaboration", ""]])
    apps, _u, q = validate_coder_sheets(rows, ANSWERS, codebook_codes_frame(BOOKS))
    assert q.empty and list(apps["code_id"]) == ["collaboration"]


def test_units_cover_substantive_answers_of_each_session_the_sheet_refers_to(tmp_path):
    rows = long_rows(tmp_path, [["A4", "Relational trust", "Competence", "Knowledgeable", ""]])
    _a, units, _q = validate(rows)  # no session numbers: one session per year
    assert units[["answer_id", "question_id", "school_year", "basis"]].values.tolist() == [
        ["A4", "worked", "2023-24", "listed"], ["A5", "improve", "2023-24", "session"]]
    # A5's session came after the sheets (a later export): nobody coded it
    later = ANSWERS.assign(session_number=pd.array([1, 1, 1, 3, 4], dtype="Int64"))
    _a, units, _q = validate_coder_sheets(rows, later, sheet_codes(BOOKS))
    assert units[["answer_id", "basis"]].values.tolist() == [["A4", "listed"]]
    # an answer of the same session is covered, one without a session number is its own
    same = pd.DataFrame([("A6", "2023-24", "r6", "improve", "Plan more", False, 3),
                         ("A7", "2023-24", "r7", "improve", "Plan less", False, None)],
                        columns=[*ANSWERS.columns, "session_number"])
    both = pd.concat([later, same], ignore_index=True)
    both["session_number"] = both["session_number"].astype("Int64")
    _a, units, _q = validate_coder_sheets(rows, both, sheet_codes(BOOKS))
    assert units[["answer_id", "basis"]].values.tolist() == [["A4", "listed"],
                                                             ["A6", "session"]]


# ----------------------------------------------------------------------------------- accounting

CODE_TEXT = st.sampled_from(["", "Collaboration", "collaboration", "Colaboration", "time allocated",
                             "Knowledgeable", "Accomplishing tasks", "nonsense"])
CATEGORY = st.sampled_from(["", "Depth", "Sustainability", "Competence", "Depht"])
ANSWER = st.sampled_from(["A1", "A2", "A3", "A4", "A5", "A9", ""])


@st.composite
def sheet_rows(draw):
    rows = []
    for coder in ("coder_a", "coder_b"):
        for n in range(draw(st.integers(0, 12))):
            wide = draw(st.booleans())
            code = draw(CODE_TEXT)
            rows.append({
                "source_file": "s.xlsx", "source_sheet": coder, "source_row": n + 2,
                "source_column": code if wide and code else None, "coder": coder,
                "layout": "wide" if wide else "long", "answer_id": draw(ANSWER),
                "response_id": "", "question": "", "school_year": "",
                "framework": "" if wide else draw(st.sampled_from(["", "Scale", "x"])),
                "category": "" if wide else draw(CATEGORY), "code": code,
                "value": (draw(st.sampled_from(["1", "1", "x", "2"])) if wide and code else None),
                "note": "",
            })
    return pd.DataFrame(rows, columns=SHEET_ROW_COLUMNS)


@settings(max_examples=150, deadline=None)
@given(sheet_rows())
def test_every_sheet_row_is_accounted_for_exactly_once(rows):
    apps, units, quarantine = validate(rows)
    key = ["source_file", "source_sheet", "source_row", "source_column"]

    def keys(frame):
        return list(frame[key].astype(object).where(frame[key].notna(), None)
                    .itertuples(index=False, name=None))

    all_keys = keys(rows)
    assert len(set(all_keys)) == len(all_keys)
    applied, rejected = keys(apps), keys(quarantine)
    assert not set(applied) & set(rejected)
    assert set(applied) | set(rejected) <= set(all_keys)
    done = set(applied) | set(rejected)
    nothing = rows.loc[pd.Series([k not in done for k in all_keys], index=rows.index,
                                 dtype=bool)]
    assert len(apps) + len(quarantine) + len(nothing) == len(rows)
    # The rows neither applied nor quarantined are "coded, nothing applies" rows...
    assert (nothing["code"] == "").all()
    # ...whose answers are units of their coder, as is every applied code's answer.
    unit_keys = set(zip(units["answer_id"], units["coder"], strict=True))
    assert set(zip(nothing["answer_id"], nothing["coder"], strict=True)) <= unit_keys
    assert set(zip(apps["answer_id"], apps["coder"], strict=True)) <= unit_keys
    # No duplicate application survives; no application on a non-substantive answer.
    assert not apps.duplicated(["coder", "answer_id", "code_id"]).any()
    assert not apps["answer_id"].isin(["A3"]).any()


# ------------------------------------------------------- same output as the row-by-row validator

RESPONSE = st.sampled_from(["", "r1", "r2", "r5", "r9"])
QUESTION = st.sampled_from(["", "worked", "Q2", "What worked?", "other"])
YEAR = st.sampled_from(["", "2020-21", "2023-24"])


@st.composite
def mixed_sheet_rows(draw):
    """Rows with answer ids or response ids, repeated code cells, duplicates and bad values."""
    rows = []
    for coder in ("coder_a", "coder_b"):
        for n in range(draw(st.integers(0, 15))):
            wide = draw(st.booleans())
            code = draw(CODE_TEXT)
            by_response = draw(st.booleans())
            rows.append({
                "source_file": "s.xlsx", "source_sheet": coder,
                "source_row": draw(st.integers(2, 6)) if wide else n + 2,
                "source_column": code if wide and code else None, "coder": coder,
                "layout": "wide" if wide else "long",
                "answer_id": "" if by_response else draw(ANSWER),
                "response_id": draw(RESPONSE) if by_response else "",
                "question": draw(QUESTION) if by_response else "",
                "school_year": draw(YEAR) if by_response else "",
                "framework": "" if wide else draw(st.sampled_from(["", "Scale", "x"])),
                "category": "" if wide else draw(CATEGORY), "code": code,
                "value": (draw(st.sampled_from(["1", "1", "x", "2"])) if wide and code else None),
                "note": draw(st.sampled_from(["", "see Ana", None])),
            })
    return pd.DataFrame(rows, columns=SHEET_ROW_COLUMNS)


@settings(max_examples=200, deadline=None)
@given(mixed_sheet_rows())
def test_validator_gives_the_same_frames_as_the_row_by_row_reference(rows):
    from tests import sheet_validation_reference as reference

    answers = pd.concat([ANSWERS, ANSWERS.assign(answer_id=ANSWERS["answer_id"] + "b",
                                                 school_year="2021-22").iloc[:2]],
                        ignore_index=True)
    got = validate_coder_sheets(rows, answers, CODES)
    want = reference.validate_coder_sheets(rows, answers, CODES)
    for g, w in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(g, w)


@settings(max_examples=50, deadline=None)
@given(mixed_sheet_rows(), st.randoms(use_true_random=False))
def test_interleaved_coders_give_the_same_frames(rows, random):
    """The coders' rows in any order: the same frames as the row-by-row reference (the
    column-wise validator numbers distinct cells by first appearance, and finds a duplicate's
    first row across the whole sheet)."""
    from tests import sheet_validation_reference as reference

    order = list(range(len(rows)))
    random.shuffle(order)
    rows = rows.iloc[order].reset_index(drop=True)
    answers = pd.concat([ANSWERS, ANSWERS.assign(answer_id=ANSWERS["answer_id"] + "b",
                                                 school_year="2021-22").iloc[:2]],
                        ignore_index=True)
    want = reference.validate_coder_sheets(rows, answers, CODES)
    got = validate_coder_sheets(rows, answers, CODES)
    for g, w in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(g, w)


# ----------------------------------------------------------------------------- reading once


def test_a_file_is_parsed_once_until_its_bytes_change(tmp_path, monkeypatch):
    from pipeline.core.coding import coder_sheets

    path = write_workbook(tmp_path / "sheets.xlsx", {"coder_jm": [LONG_HEADER, ["A1"]]})
    parsed = []
    real = coder_sheets._parse_tables
    monkeypatch.setattr(coder_sheets, "_parse_tables",
                        lambda p: parsed.append(p) or real(p))
    first = read_coder_sheets(path)
    again = read_coder_sheets(path)
    assert len(parsed) == 1
    pd.testing.assert_frame_equal(first, again)
    write_workbook(path, {"coder_jm": [LONG_HEADER, ["A1"], ["A2"]]})
    assert list(read_coder_sheets(path)["answer_id"]) == ["A1", "A2"]
    assert len(parsed) == 2


def test_queue_check_reads_the_headers(tmp_path):
    from pipeline.core.coding.coder_sheets import read_headers

    path = write_workbook(tmp_path / "sheets.xlsx", {
        "coder_jm": [LONG_HEADER, ["A1"]], "queue": [["discrepancy_id", "decision"], ["d1"]]})
    assert read_headers(path) == [("coder_jm", LONG_HEADER), ("queue", ["discrepancy_id",
                                                                         "decision"])]
    assert coder_sheet_files(tmp_path) == []   # a workbook with a queue tab is not a sheet


def _headers_cases(folder: Path) -> list[Path]:
    import datetime as dt

    import openpyxl

    folder.mkdir()
    plain = write_workbook(folder / "plain.xlsx", {
        "coder_jm": [[" answer_id ", 7, 2.5, None, "code"], ["A1"]],
        "queue": [["discrepancy_id", "decision"], ["d1"]], "empty": []})
    wb = openpyxl.Workbook()
    wb.active.title = "dated"
    wb.active.append([dt.date(2020, 1, 2), "x", None, " y ", dt.datetime(2021, 3, 4, 5, 6)])
    wb.active.append(["A1"])
    wb.save(folder / "dated.xlsx")
    wb = openpyxl.Workbook()
    wb.active.title = "from_b2"
    wb.active["B2"] = "answer_id"
    wb.create_sheet("row_1_empty")["A2"] = "answer_id"
    wb.save(folder / "shifted.xlsx")
    wb = openpyxl.Workbook()
    wb.active.append(["answer_id", "code"])
    wb.active.append(["A1", "#N/A"])            # an error cell: read by openpyxl
    wb.save(folder / "errors.xlsx")
    (folder / "bom.csv").write_bytes(b'\xef\xbb\xbf"answer\nid", code \r\nA1,x\r\n')
    (folder / "cp1252.csv").write_bytes("r\xe9ponse,code\nA1,x\n".encode("cp1252"))
    (folder / "empty.csv").write_bytes(b"")
    return [plain, folder / "dated.xlsx", folder / "shifted.xlsx", folder / "errors.xlsx",
            folder / "bom.csv",
            folder / "cp1252.csv", folder / "empty.csv"]


def test_headers_are_the_first_rows_read_tables_gives(tmp_path, monkeypatch):
    """`read_headers` (telling a queue from a coder sheet) gives each tab's header as the
    whole-file parse does: values of any type, blank cells, an empty tab, tabs that do not
    start at A1, a workbook with error cells, CSVs in UTF-8 with a BOM and a quoted line
    break, cp1252, empty; a plain workbook or CSV without parsing its rows."""
    from pipeline.core.coding import coder_sheets

    cases = _headers_cases(tmp_path / "cases")
    expected = {p.name: [(sheet, header) for sheet, header, _rows in
                         coder_sheets._parse_tables(p)] for p in cases}
    assert expected["bom.csv"] == [(None, ["answer\nid", "code"])]
    assert expected["plain.xlsx"][0] == ("coder_jm", ["answer_id", "7", "2.5", "", "code"])
    parsed = []
    real = coder_sheets._parse_tables
    monkeypatch.setattr(coder_sheets, "_parse_tables", lambda p: parsed.append(p.name) or real(p))
    monkeypatch.setattr(coder_sheets, "_TABLES_CACHE", type(coder_sheets._TABLES_CACHE)())
    for path in cases:
        assert coder_sheets.read_headers(path) == expected[path.name], path.name
    assert sorted(parsed) == ["errors.xlsx", "shifted.xlsx"]


# ------------------------------------------------------------------- the import, kept by inputs

def _import_spy(monkeypatch):
    calls = []
    real = dual_coding._import

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dual_coding, "_import", spy)
    return calls


def test_the_import_is_kept_until_what_it_reads_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    sheets = tmp_path / "coding"
    sheets.mkdir()
    write_csv(sheets / "coder_jm.csv", [LONG_HEADER, ["A1", "scale", "Depth", "Collaboration",
                                                      "Ana said so"],
                                        ["A4", "", "", "Knowledgeable", ""]])
    write_csv(sheets / "coder_ak.csv", [LONG_HEADER, ["A2", "", "", "Time allocated", ""]])
    answers = ANSWERS.assign(session_number=pd.array([1, 1, 1, 2, 2], dtype="Int64"))
    redactor = Redactor([RosterEntry("Ana Lima", "coach")])
    calls = _import_spy(monkeypatch)

    def run(frame):
        got = dual_coding.import_sheets(sheets, frame, BOOKS, redactor)
        fresh = dual_coding._import(read_coder_sheets(coder_sheet_files([sheets])), frame, BOOKS,
                                    redactor)
        calls.pop()  # the reference computation above
        for a, b in zip(got, fresh, strict=True):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                          check_dtype=False)
        return got

    first = run(answers)
    note = first[0].set_index("answer_id").loc["A1", "note"]
    assert len(calls) == 1 and note == f"{COACH_PLACEHOLDER} said so"  # redacted
    # a later session nobody's sheet refers to: read back, not imported again
    later = pd.DataFrame([("A8", "2023-24", "r8", "worked", "New answer", False, 3)],
                         columns=list(answers.columns))
    run(pd.concat([answers, later], ignore_index=True))
    assert len(calls) == 1
    # an answer of a session a sheet refers to changes: imported again
    run(answers.assign(non_substantive=[False, False, True, False, True]))
    assert len(calls) == 2
    # the sheet changes: imported again
    write_csv(sheets / "coder_ak.csv", [LONG_HEADER, ["A2", "", "", "Collaboration", ""]])
    run(answers)
    assert len(calls) == 3


def test_a_file_too_large_to_keep_is_parsed_again(tmp_path, monkeypatch):
    """coder_sheets.read_tables keeps a file's parsed tables for the next read only when it
    holds at most _TABLES_CACHE_CELLS cells; a larger one is parsed again, with the same
    result."""
    from pipeline.core.coding import coder_sheets

    path = write_csv(tmp_path / "coder_jm.csv", [LONG_HEADER, ["A1", "", "", "Trust", ""],
                                                  ["A2", "", "", "Trust", ""]])
    parsed = []
    real = coder_sheets._parse_tables
    monkeypatch.setattr(coder_sheets, "_parse_tables",
                        lambda p: parsed.append(p) or real(p))
    monkeypatch.setattr(coder_sheets, "_TABLES_CACHE", coder_sheets.OrderedDict())
    monkeypatch.setattr(coder_sheets, "_TABLES_CACHE_CELLS", 9)   # its 2 rows hold 10 cells
    first, again = coder_sheets.read_tables(path), coder_sheets.read_tables(path)
    assert first == again and len(parsed) == 2 and not coder_sheets._TABLES_CACHE
    monkeypatch.setattr(coder_sheets, "_TABLES_CACHE_CELLS", 10)
    kept, reused = coder_sheets.read_tables(path), coder_sheets.read_tables(path)
    assert kept is reused and kept == first and len(parsed) == 3


def _every_kind_of_cell(path: Path) -> Path:
    """A workbook of the cells coders and spreadsheet programs write, away from A1."""
    import datetime as dt

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("coder_jm")
    ws.write_row(2, 1, ["answer_id", "framework", "category", "code", "note"])
    ws.write_row(3, 1, ["A1", "CLASS", 1, 2.5, True])
    ws.write_row(4, 1, ["  A2  ", 0, -0.0, 123456789012, 1e20])
    def fmt(number_format):
        return wb.add_format({"num_format": number_format})

    ws.write_datetime(5, 1, dt.datetime(2021, 3, 4, 5, 6), fmt("yyyy-mm-dd hh:mm"))
    ws.write_datetime(5, 2, dt.datetime(2021, 3, 4), fmt("yyyy-mm-dd"))
    ws.write_datetime(5, 3, dt.datetime(1899, 12, 31, 7, 8), fmt("h:mm"))
    ws.write_number(5, 4, 0.5, fmt("0%"))
    ws.write_formula(5, 5, "=1+1", None, 2)
    ws.write_formula(5, 6, '="x"&"y"', None, "xy")
    ws.write_formula(5, 7, "=B4")                 # xlsxwriter keeps 0 as its value
    ws.write_blank(8, 9, None, wb.add_format({"bold": True}))   # a styled empty cell far out
    hidden = wb.add_worksheet("coder_ak")
    hidden.write_row(0, 0, ["answer_id", "code"])
    hidden.hide()
    wb.add_worksheet("empty")
    chart = wb.add_chartsheet("chart")
    bars = wb.add_chart({"type": "column"})
    bars.add_series({"values": "=coder_jm!$D$4:$D$5"})
    chart.set_chart(bars)
    wb.close()
    return path


def test_workbooks_read_by_calamine_as_openpyxl_reads_them(tmp_path):
    from pipeline.core.coding import coder_sheets

    def trimmed(sheets):
        """Blank cells past the last value of a sheet dropped: openpyxl pads every row to
        the sheet's stated dimension, which counts a styled empty cell; calamine does not.
        Readers of the tables treat a missing cell as a blank one (a CSV's short row)."""
        out = []
        for name, rows in sheets:
            rows = [r[:max((i + 1 for i, v in enumerate(r) if v), default=0)] for r in rows]
            while rows and not rows[-1]:
                rows.pop()
            out.append((name, rows))
        return out

    path = _every_kind_of_cell(tmp_path / "cells.xlsx")
    assert not coder_sheets.has_error_cells(path)
    fast = list(coder_sheets._calamine_sheets(path))
    assert trimmed(fast) == trimmed(coder_sheets._openpyxl_sheets(path))
    assert trimmed(fast) != fast      # the padding differs indeed
    rows = dict(fast)["coder_jm"]
    assert [r[1:6] for r in rows[3:6]] == [
        ["A1", "CLASS", "1", "2.5", "1"],
        ["A2", "0", "0", "123456789012", "100000000000000000000"],
        ["2021-03-04T05:06:00", "2021-03-04T00:00:00", "07:08:00", "0.5", "2"]]
    assert rows[5][6:8] == ["xy", "0"]
    assert [name for name, _rows in fast] == ["coder_jm", "coder_ak", "empty"]
    # read_tables numbers spreadsheet rows from 1, blank rows above the header included
    tables = coder_sheets.read_tables(path)
    assert tables[0][2][2] == (4, rows[3])          # row 4 of the sheet: "A1"


def test_a_workbook_with_an_error_cell_is_read_with_the_error_text(tmp_path, monkeypatch):
    from pipeline.core.coding import coder_sheets

    wb = xlsxwriter.Workbook(str(tmp_path / "sheets.xlsx"))
    ws = wb.add_worksheet("coder_jm")
    ws.write_row(0, 0, LONG_HEADER)
    ws.write_row(1, 0, ["A1", "CLASS", "Emotional Support"])
    ws.write_formula(1, 3, "=VLOOKUP(1,Z1:Z2,1,0)", None, "#N/A")
    wb.close()
    path = tmp_path / "sheets.xlsx"
    assert coder_sheets.has_error_cells(path)
    for block in (5, 7, 64):   # the sheet's XML searched in blocks: a tag cut between two
        monkeypatch.setattr(coder_sheets, "_XML_BLOCK", block)
        assert coder_sheets.has_error_cells(path)
    monkeypatch.undo()
    # python-calamine would read the cell as empty: "coded, nothing applies"
    assert list(coder_sheets._calamine_sheets(path))[0][1][1][3] == ""
    rows = read_coder_sheets(path)
    assert rows.loc[0, ["answer_id", "code"]].tolist() == ["A1", "#N/A"]


def test_a_damaged_workbook_is_a_coder_sheet_error(tmp_path):
    import zipfile

    from pipeline.core.coding import coder_sheets

    path = tmp_path / "sheets.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")   # not a zip: openpyxl says so
    with pytest.raises(CoderSheetError, match="cannot read workbook"):
        read_coder_sheets(path)
    with zipfile.ZipFile(path, "w") as z:                    # a zip, no workbook: calamine
        z.writestr("notes.txt", "hello")
    assert not coder_sheets.has_error_cells(path)
    with pytest.raises(CoderSheetError, match="cannot read workbook"):
        read_coder_sheets(path)


def _rezip(src: Path, dst: Path, edit) -> Path:
    """A copy of the workbook `src` with each member's bytes passed through edit(name, data)."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, edit(item.filename, zin.read(item.filename)))
    return dst


def test_error_cells_are_found_with_a_prefix_and_outside_xl_worksheets(tmp_path):
    import zipfile

    from pipeline.core.coding import coder_sheets

    def part(name: str, xml: bytes) -> Path:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.xlsx"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(name, xml)
        return path

    prefixed = b'<x:sheetData><x:row r="1"><x:c r="A1" t="e"><x:v>#N/A</x:v></x:c>'
    assert coder_sheets.has_error_cells(part("xl/worksheets/sheet1.xml", prefixed))
    assert coder_sheets.has_error_cells(part("xl/elsewhere/data.xml",
                                             b'<c r="B2" s="1" t=\'e\'><v>#REF!</v></c>'))
    assert not coder_sheets.has_error_cells(part("xl/charts/chart1.xml",
                                                 b'<c:chart><c:title t="e"/></c:chart>'))
    assert not coder_sheets.has_error_cells(part("xl/worksheets/sheet1.xml",
                                                 b'<c r="A1" t="s"><v>0</v></c>'))


def test_a_stale_dimension_hides_no_cell_from_either_reader(tmp_path):
    """A writer that leaves `<dimension ref="A1"/>` while the data reaches E3: openpyxl's
    read-only mode would stop at A1; both readers read every cell."""
    import re

    from pipeline.core.coding import coder_sheets

    path = write_workbook(tmp_path / "full.xlsx", {"coder_jm": [LONG_HEADER, ["A1", "CLASS",
                                                                           "", "x", "n"]]})

    def stale(name, data):
        if name.startswith("xl/worksheets/"):
            return re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1"/>', data)
        return data

    path = _rezip(path, tmp_path / "stale.xlsx", stale)
    rows = [[LONG_HEADER, ["A1", "CLASS", "", "x", "n"]]]
    assert [r for _n, r in coder_sheets._openpyxl_sheets(path)] == rows
    assert [r for _n, r in coder_sheets._calamine_sheets(path)] == rows


def test_a_workbook_whose_sheet_data_is_damaged_is_a_coder_sheet_error(tmp_path):
    """Deflated sheet data that does not inflate: the error check cannot search it (so the
    slow reader is asked), and the error names the file instead of a bare zlib error."""
    import zipfile

    from pipeline.core.coding import coder_sheets

    path = write_workbook(tmp_path / "sheets.xlsx", {"coder_jm": [LONG_HEADER, ["A1"] * 5] * 40})
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10:start + 60] = b"\xff" * 50
    path.write_bytes(bytes(data))
    assert coder_sheets.has_error_cells(path)
    with pytest.raises(CoderSheetError, match="sheets.xlsx: cannot read workbook"):
        read_coder_sheets(path)


def test_the_kept_queue_check_is_redone_for_another_reader_version(tmp_path, monkeypatch):
    """What is kept from a parse on disk is keyed by the readers' versions: an upgraded
    reader parses the file again instead of being served the old answer."""
    from pipeline.core.coding import coder_sheets

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    path = write_workbook(tmp_path / "sheets.xlsx", {"coder_jm": [LONG_HEADER, ["A1"]]})
    read = []
    real = coder_sheets.read_headers
    monkeypatch.setattr(coder_sheets, "read_headers", lambda p: read.append(p) or real(p))

    def check(versions: str) -> bool:
        monkeypatch.setattr(coder_sheets, "reader_versions", lambda: versions)
        coder_sheets._QUEUE_CACHE.clear()   # the in-process copy: only the disk memo left
        return coder_sheets._is_queue(path)

    assert [check("python-calamine 0.9.1"), check("python-calamine 0.9.1")] == [False, False]
    assert len(read) == 1                     # the second answer came from the disk memo
    assert check("python-calamine 0.9.2") is False and len(read) == 2


def test_a_folder_read_parses_each_unknown_workbook_once(tmp_path, monkeypatch):
    """Reading a folder tells its queues from its sheets from the workbooks it parses anyway:
    no separate header read (calamine loads a tab whole for its first row), the same rows as
    reading the files coder_sheet_files lists, and the queue check kept for the next read."""
    from pipeline.core.coding import coder_sheets

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "sheets"
    folder.mkdir()
    write_workbook(folder / "sheets.xlsx", {"coder_jm": [LONG_HEADER, ["A1", "Scale", "Depth",
                                                                        "Collaboration", ""]],
                                            "coder_ab": [LONG_HEADER, ["A2"]]})
    write_workbook(folder / "queue.xlsx", {"queue": [["discrepancy_id", "decision"], ["d1"]]})
    # the adjudication file, by its name: its headers read, not the whole workbook
    write_workbook(folder / "adjudications.xlsx", {"queue": [["discrepancy_id", "decision"],
                                                             ["d1", "apply"]]})
    write_csv(folder / "coder_cd.csv", [LONG_HEADER, ["A3", "", "", "", ""]])
    headers, parses = [], []
    real_headers, real_tables = coder_sheets.read_headers, coder_sheets.read_tables
    monkeypatch.setattr(coder_sheets, "read_headers",
                        lambda p: headers.append(Path(p).name) or real_headers(p))
    monkeypatch.setattr(coder_sheets, "read_tables",
                        lambda p: parses.append(Path(p).name) or real_tables(p))
    coder_sheets._QUEUE_CACHE.clear()
    rows = read_coder_sheets(folder)
    assert [h for h in headers if h.endswith(".xlsx")] == ["adjudications.xlsx"]
    assert sorted(parses) == ["coder_cd.csv", "queue.xlsx", "sheets.xlsx"]
    assert set(rows["coder"]) == {"coder_jm", "coder_ab", "coder_cd"}
    coder_sheets._QUEUE_CACHE.clear()   # the disk memo now knows both workbooks
    files = coder_sheet_files(folder)
    assert [f.name for f in files] == ["coder_cd.csv", "sheets.xlsx"]
    assert [h for h in headers if h.endswith(".xlsx")] == ["adjudications.xlsx"]
    pd.testing.assert_frame_equal(read_coder_sheets(files), rows)


def test_the_warehouse_query_selects_the_answers_the_sheets_can_depend_on():
    """warehouse_sheet_answers (one DuckDB query) gives sheet_answers' rows: the answers named
    by id or by response id, and every answer of their sessions, sorted by answer id."""
    import duckdb

    answers = pd.concat([ANSWERS.assign(session_number=pd.array([1, 1, 2, 2, None],
                                                                dtype="Int64")),
                         ANSWERS.assign(answer_id=ANSWERS["answer_id"] + "x",
                                        response_id=ANSWERS["response_id"] + "x",
                                        school_year="2020-21",
                                        session_number=pd.array([1, 2, 3, None, None],
                                                                dtype="Int64"))],
                        ignore_index=True).iloc[::-1]
    con = duckdb.connect()
    con.execute("create schema staging")
    con.register("frame", answers)
    con.execute("create table staging.answers as select * from frame")
    for refs in ([("A1", None)], [(None, "r2x")], [("A5x", ""), ("", "r3")],
                 [("nope", "nope")], [("A2", "r5x"), ("A5", None)]):
        refs = pd.DataFrame(refs, columns=["answer_id", "response_id"])
        want = dual_coding.sheet_answers(con.execute("select * from staging.answers").df(),
                                         refs).reset_index(drop=True)
        got = dual_coding.warehouse_sheet_answers(con, refs)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert len(want) or refs.at[0, "answer_id"] == "nope"
    assert dual_coding.warehouse_sheet_answers(duckdb.connect(), refs).empty


def test_a_keyed_import_is_read_back_per_year_without_its_answers(tmp_path, monkeypatch):
    """With the caller's key (import_key) and a school year: the year's applications and
    units of the whole import, the whole quarantine; a second year's call and a repeat read
    them back without importing or reading the answers again; a year nobody coded gets no
    row, with the same columns; another key imports again."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    sheets = tmp_path / "coding"
    sheets.mkdir()
    write_csv(sheets / "coder_jm.csv", [LONG_HEADER, ["A1", "", "", "Collaboration", ""],
                                        ["A4", "", "", "Knowledgeable", ""],
                                        ["A9", "", "", "Knowledgeable", ""]])
    write_csv(sheets / "coder_ak.csv", [LONG_HEADER, ["A2", "", "", "Time allocated", ""],
                                        ["A4", "", "", "Collaboration", ""]])
    answers = ANSWERS.assign(session_number=pd.array([1, 1, 1, 2, 2], dtype="Int64"),
                             school_year=["2022-23", "2022-23", "2022-23", "2023-24",
                                          "2023-24"])
    redactor = Redactor([RosterEntry("Ana Lima", "coach")])
    whole = dual_coding.import_sheets(sheets, answers, BOOKS, redactor)
    assert set(whole[0]["school_year"]) == {"2022-23", "2023-24"} and len(whole[2])
    calls, reads = _import_spy(monkeypatch), []

    def given(refs):
        reads.append(1)
        return dual_coding.sheet_answers(answers, refs)

    for n, year in enumerate(["2022-23", "2023-24", "2022-23"]):
        got = dual_coding.import_sheets(sheets, given, BOOKS, redactor, key="k1", year=year)
        for part, full in zip(got[:2], whole[:2], strict=True):
            pd.testing.assert_frame_equal(
                part, full[full["school_year"] == year].reset_index(drop=True),
                check_dtype=False)
        for part, full in zip(got[2:], whole[2:], strict=True):
            pd.testing.assert_frame_equal(part.reset_index(drop=True),
                                          full.reset_index(drop=True), check_dtype=False)
        assert (len(calls), len(reads)) == (1, 1), n   # imported once, for the first call
    none = dual_coding.import_sheets(sheets, given, BOOKS, redactor, key="k1", year="2019-20")
    assert [len(f) for f in none[:2]] == [0, 0]
    assert [list(f.columns) for f in none[:2]] == [list(f.columns) for f in whole[:2]]
    # every year read back: the computed import's rows, by school year (ak coded both years)
    every = dual_coding.import_sheets(sheets, given, BOOKS, redactor, key="k1")
    years = list(every[1]["school_year"])
    assert years == sorted(years) and set(years) == {"2022-23", "2023-24"}
    for part, full in zip(every, whole, strict=True):
        pd.testing.assert_frame_equal(part, full.reset_index(drop=True), check_dtype=False)
    assert (len(calls), len(reads)) == (1, 1)
    dual_coding.import_sheets(sheets, given, BOOKS, redactor, key="k2", year="2022-23")
    assert (len(calls), len(reads)) == (2, 2)


def test_a_sheet_row_the_validator_loses_is_unaccounted(tmp_path, monkeypatch):
    """The import's guard (the `sheet_rows_accounted` check): a sheet row naming a code that
    became neither an application nor a quarantine row is listed, and only that one."""
    sheets = tmp_path / "coding"
    sheets.mkdir()
    write_csv(sheets / "coder_jm.csv", [LONG_HEADER, ["A1", "", "", "Collaboration", ""],
                                        ["A4", "", "", "Knowledgeable", ""],
                                        ["A9", "", "", "Knowledgeable", ""]])
    rows = read_coder_sheets(coder_sheet_files([sheets]))
    redactor = Redactor([])
    *_, unaccounted = dual_coding._import(rows, ANSWERS, BOOKS, redactor)
    assert unaccounted.empty   # A1, A4 applied; A9 quarantined (unknown answer id)

    def losing_one(*args):
        apps, units, quarantine = validate_coder_sheets(*args)
        return apps[apps["answer_id"] != "A4"].reset_index(drop=True), units, quarantine

    monkeypatch.setattr(dual_coding, "validate_coder_sheets", losing_one)
    *_, unaccounted = dual_coding._import(rows, ANSWERS, BOOKS, redactor)
    assert unaccounted[["answer_id", "source_row"]].values.tolist() == [["A4", 3]]


def test_tabs_are_stacked_as_concat_stacks_them():
    """read_coder_sheets stacks the tabs a column at a time (_stacked): the same frame as
    pd.concat, whatever the mix of layouts, empty tabs and all-None columns."""
    from pipeline.core.coding.coder_sheets import _sheet_rows, _stacked

    path = Path("sheets.xlsx")
    long = _sheet_rows(path, "coder_jm", "coder_jm", ["answer_id", "code", "note"],
                       [(2, ["A1", "C1", ""]), (3, ["", "", ""]), (4, ["A2", "", "n"])])
    wide = _sheet_rows(path, "coder_ak", "coder_ak", ["answer_id", "C1", "C2"],
                       [(2, ["A1", "1", ""]), (5, ["A2", "", "x"])])
    empty = _sheet_rows(path, "blank", "blank", [], [])
    assert long["value"].isna().all() and len(wide) == 4 and empty.empty
    for frames in ([long, wide], [wide, empty, long], [long, long], [empty, empty]):
        stacked = _stacked(frames)
        pd.testing.assert_frame_equal(stacked, pd.concat(frames, ignore_index=True))
    assert _stacked([long]) is long
    assert list(_stacked([]).columns) == SHEET_ROW_COLUMNS
