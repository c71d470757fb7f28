"""The next cycle's coder sheets: written per coder, read back by the importer unchanged."""

from __future__ import annotations

from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.coding.coder_sheets import read_coder_sheets
from pipeline.core.coding.sheet_validation import sheet_codes, validate_coder_sheets
from pipeline.core.coding.sheet_writer import (
    CODEBOOK_TAB,
    CONTEXT,
    INSTRUCTIONS_TAB,
    answer_uncertainty,
    code_headers,
    write_coder_sheets,
)

ROOT = Path(__file__).resolve().parents[1]
YEAR = "2024-25"
runner = CliRunner()


@pytest.fixture(scope="module")
def books():
    return load_codebooks(ROOT / "codebooks")


def answers_frame() -> pd.DataFrame:
    rows = [  # answer_id, year, question, session, role, text, non_substantive
        ("A000000000001", YEAR, "improve", 1, "teacher", "More time to plan.", False),
        ("A000000000002", YEAR, "worked", 2, "teacher", "We collaborated on norms.", False),
        ("A000000000003", YEAR, "worked", 1, "administrator", "=HYPERLINK(\"x\")", False),
        ("A000000000004", YEAR, "worked", 1, "teacher", "N/A", True),
        ("A000000000005", YEAR, "worked", None, None, "-nothing to add, all good", False),
        ("A000000000006", YEAR, "improve", 2, "teacher", "@coach was great +1", False),
        ("A000000000007", "2023-24", "worked", 1, "teacher", "Last year's answer.", False),
    ]
    df = pd.DataFrame(rows, columns=["answer_id", "school_year", "question_id",
                                     "session_number", "role", "answer_text", "non_substantive"])
    df["response_id"] = [f"r{i}" for i in range(len(df))]
    df["school_id"] = "school_0000abcd"
    df["session_number"] = df["session_number"].astype("Int64")
    return df


BLIND_ORDER = ["A000000000003", "A000000000002", "A000000000005", "A000000000001",
               "A000000000006"]  # worked (session 1, 2, unknown), then improve (1, 2)


def data_rows(path: Path, tab: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path)
    return [tuple(r) for r in wb[tab].iter_rows(values_only=True)]


def header_index(path: Path, tab: str) -> dict[str, int]:
    return {h: j for j, h in enumerate(data_rows(path, tab)[0])}


def fill(path: Path, tab: str, cells: list[tuple[str, str]], value=1) -> None:
    """Type `value` into (answer_id, column header) cells, as a coder would."""
    wb = openpyxl.load_workbook(path)
    ws = wb[tab]
    header = [c.value for c in ws[1]]
    row_of = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    for aid, col in cells:
        ws.cell(row_of[aid], header.index(col) + 1).value = value
    wb.save(path)


def headers_by_id(books) -> dict[str, str]:
    return {code.code_id: h for _b, code, h in code_headers(books)}


# ------------------------------------------------------------------------------ the round trip


def test_round_trip_gives_exactly_the_filled_cells(tmp_path, books):
    answers = answers_frame()
    paths = write_coder_sheets(answers, books, ["jm", "coder_ak"], tmp_path, YEAR)
    assert [p.name for p in paths] == [f"coder_sheet_{YEAR}_jm.xlsx",
                                       f"coder_sheet_{YEAR}_coder_ak.xlsx"]
    wb = openpyxl.load_workbook(paths[0])
    assert wb.sheetnames == ["jm", CODEBOOK_TAB, INSTRUCTIONS_TAB]

    h = headers_by_id(books)
    assert h["coaching_support"] == "Coaching support"  # labels, not ids
    jm = [("A000000000002", h["collaboration"]), ("A000000000002", h["norms"]),
          ("A000000000001", h["time_allocated"])]
    ak = [("A000000000006", h["coaching_support"])]
    fill(paths[0], "jm", jm)
    fill(paths[1], "coder_ak", ak)
    fill(paths[1], "coder_ak", [("A000000000003", h["norms"])], value=0)  # 0 = not applied

    rows = read_coder_sheets(tmp_path)  # the folder, as the pipeline reads it
    assert set(rows["coder"]) == {"jm", "coder_ak"}
    assert set(rows["source_sheet"]) == {"jm", "coder_ak"}  # neither extra tab is read
    assert set(rows["layout"]) == {"wide"}
    apps, units, quarantine = validate_coder_sheets(rows, answers, sheet_codes(books))
    assert quarantine.empty, quarantine.to_dict("records")
    got = set(zip(apps["coder"], apps["answer_id"], apps["code_id"], strict=True))
    assert got == {("jm", "A000000000002", "collaboration"), ("jm", "A000000000002", "norms"),
                   ("jm", "A000000000001", "time_allocated"),
                   ("coder_ak", "A000000000006", "coaching_support")}
    # every substantive answer of the year is a unit of each coder, nothing else
    for coder in ("jm", "coder_ak"):
        assert set(units.loc[units["coder"] == coder, "answer_id"]) == set(BLIND_ORDER)


def test_sheet_layout(tmp_path, books):
    path = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path, YEAR)[0]
    rows = data_rows(path, "jm")
    header = rows[0]
    n_ctx = len(CONTEXT)
    assert list(header[:n_ctx]) == [h for h, _c in CONTEXT]
    codes = [h for _b, _c, h in code_headers(books)]
    assert list(header[n_ctx:]) == codes and len(set(codes)) == len(codes)
    assert len(codes) == sum(len(b.codes) for b in books)
    # only substantive answers of the year, blind order; code cells empty
    assert [r[0] for r in rows[1:]] == BLIND_ORDER
    assert all(v is None for r in rows[1:] for v in r[n_ctx:])
    wb = openpyxl.load_workbook(path)
    ws = wb["jm"]
    assert ws.freeze_panes == "G2"  # header row and the context columns
    assert ws.cell(2, n_ctx).alignment.wrap_text
    dv = ws.data_validations.dataValidation
    assert len(dv) == 1 and dv[0].type == "list" and dv[0].formula1 == '"0,1"'
    assert str(dv[0].sqref).startswith("G2:")
    book_rows = list(wb[CODEBOOK_TAB].iter_rows(values_only=True))
    assert book_rows[0][:6] == ("framework", "category", "category_definition", "code",
                                "code_id", "sheet_column")
    assert len(book_rows) == 1 + len(codes)
    assert any("SURVEY_CODER_SHEETS" in (r[0] or "") for r in
               wb[INSTRUCTIONS_TAB].iter_rows(values_only=True))


def test_sheets_are_zipped_at_the_fast_deflate_level(tmp_path, books):
    """QuickZipWorkbook: every member deflated at level 1, and xlsxwriter's ZipFile put back."""
    import zipfile
    import zlib

    import xlsxwriter.workbook

    from pipeline.core.exchange.xlsx_rows import DEFLATE_LEVEL

    path = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path, YEAR)[0]
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED
            packer = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
            data = z.read(info)
            assert info.compress_size == len(packer.compress(data) + packer.flush()), info


def test_a_workbook_is_the_same_bytes_whenever_it_is_written(tmp_path, books, monkeypatch):
    """The package's creation time is fixed (xlsx_rows.CREATED), not the clock's: the same
    sheet written in another second (the clock moved a day here) is the same bytes."""
    import datetime as dt
    import zipfile

    import xlsxwriter.core

    first = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path / "a", YEAR)[0]

    class IsDatetime(type):
        def __instancecheck__(cls, obj):
            return isinstance(obj, dt.datetime)

    class Tomorrow(metaclass=IsDatetime):   # xlsxwriter.core's datetime, a day later
        @staticmethod
        def now(tz=None):
            return dt.datetime.now(tz) + dt.timedelta(days=1)

    monkeypatch.setattr(xlsxwriter.core, "datetime", Tomorrow)
    again = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path / "b", YEAR)[0]
    assert again.read_bytes() == first.read_bytes()
    with zipfile.ZipFile(first) as z:
        assert b"1980-01-01T00:00:00Z" in z.read("docProps/core.xml")


def test_blind_sheet_has_no_suggestion(tmp_path, books):
    path = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path, YEAR)[0]
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.comment is None
                assert "p=" not in str(cell.value or "")
                assert "suggested" not in str(cell.value or "").casefold()
    ws = wb["jm"]
    assert {ws.cell(r, c).fill.fgColor.rgb for r in range(2, ws.max_row + 1)
            for c in range(len(CONTEXT) + 1, ws.max_column + 1)} <= {"00000000", None}


def test_formula_looking_text_stays_text(tmp_path, books):
    path = write_coder_sheets(answers_frame(), books, ["jm"], tmp_path, YEAR)[0]
    wb = openpyxl.load_workbook(path)
    ws = wb["jm"]
    text = {ws.cell(r, 1).value: ws.cell(r, len(CONTEXT)) for r in range(2, ws.max_row + 1)}
    for aid, expected in [("A000000000003", '=HYPERLINK("x")'),
                          ("A000000000005", "-nothing to add, all good"),
                          ("A000000000006", "@coach was great +1")]:
        assert text[aid].value == expected  # unchanged, no ' added
        assert text[aid].data_type == "s"  # a string, not a formula
        assert text[aid].quotePrefix
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)


# ------------------------------------------------------------------------------ suggestions


def suggestions_frame() -> pd.DataFrame:
    return pd.DataFrame([
        ("A000000000001", "time_allocated", 0.97, "model"),   # sure: u = 0.06
        ("A000000000002", "collaboration", 0.52, "model"),    # least sure: u = 0.96
        ("A000000000002", "norms", 0.90, "model"),
        ("A000000000003", "coaching_support", 0.30, "model"),  # u = 0.6
        ("A000000000006", "coaching_support", 0.02, "model"),  # u = 0.04
        ("A000000000004", "coaching_support", 0.50, "model"),  # non-substantive: not in sheet
        ("A000000000001", "no_such_code", 0.50, "model"),      # unknown code: ignored
    ], columns=["answer_id", "code_id", "probability", "source"])


def test_uncertainty():
    s = suggestions_frame()
    s = s[s["code_id"] != "no_such_code"]  # the writer drops codes not in the codebooks
    u = answer_uncertainty(["A000000000001", "A000000000002", "A000000000005"], s)
    assert u["A000000000001"] == pytest.approx(0.06)
    assert u["A000000000002"] == pytest.approx(0.96)
    assert u["A000000000005"] == 1.0  # no suggestion at all: first


def test_suggestions_are_comments_and_fills_never_values(tmp_path, books):
    answers = answers_frame()
    path = write_coder_sheets(answers, books, ["jm"], tmp_path, YEAR, suggestions_frame())[0]
    assert path.name == f"coder_sheet_{YEAR}_jm_with_suggestions.xlsx"
    rows = data_rows(path, "jm")
    n_ctx = len(CONTEXT)
    # least sure first; the answer with no suggestion (A..5) before all; ties in blind order
    assert [r[0] for r in rows[1:]] == ["A000000000005", "A000000000002", "A000000000003",
                                        "A000000000001", "A000000000006"]
    assert all(v is None for r in rows[1:] for v in r[n_ctx:])  # values stay empty
    h = headers_by_id(books)
    col = header_index(path, "jm")
    wb = openpyxl.load_workbook(path)
    ws = wb["jm"]
    row_of = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    cell = ws.cell(row_of["A000000000002"], col[h["collaboration"]] + 1)
    assert cell.comment.text == "suggested (model) p=0.52"
    strong = ws.cell(row_of["A000000000001"], col[h["time_allocated"]] + 1)
    assert strong.comment.text == "suggested (model) p=0.97"
    assert strong.fill.fgColor.rgb != cell.fill.fgColor.rgb  # fill follows the probability
    n_comments = sum(c.comment is not None for row in ws.iter_rows() for c in row)
    assert n_comments == 5
    notes = "\n".join(r[0] or "" for r in wb[INSTRUCTIONS_TAB].iter_rows(values_only=True))
    assert "least sure of come first: coding those teaches it most" in notes
    assert "stay EMPTY" in notes

    # read back untouched: no application at all, nothing quarantined
    apps, _units, quarantine = validate_coder_sheets(read_coder_sheets(path), answers,
                                                     sheet_codes(books))
    assert apps.empty and quarantine.empty


def test_bad_input(tmp_path, books):
    answers = answers_frame()
    with pytest.raises(ValueError, match="no coder"):
        write_coder_sheets(answers, books, [], tmp_path, YEAR)
    with pytest.raises(ValueError, match="tab name"):
        write_coder_sheets(answers, books, ["_hidden"], tmp_path, YEAR)
    with pytest.raises(ValueError, match="twice"):
        write_coder_sheets(answers, books, ["jm", "jm"], tmp_path, YEAR)
    with pytest.raises(ValueError, match="no substantive answers"):
        write_coder_sheets(answers, books, ["jm"], tmp_path, "1999-00")
    bad = suggestions_frame().assign(probability=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_coder_sheets(answers, books, ["jm"], tmp_path, YEAR, bad)


# ------------------------------------------------------------------------------ the CLI


def warehouse(tmp_path: Path, suggestions: bool = False) -> Path:
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema staging")
    df = answers_frame()
    con.register("df", df)
    con.execute("create table staging.answers as select answer_id, response_id, school_year, "
                "question_id, cast(session_number as integer) as session_number, school_id, "
                "role, answer_text, non_substantive from df")
    if suggestions:
        con.execute("create schema coding")
        s = suggestions_frame().assign(framework="scale", dimension="depth")
        con.register("s", s)
        con.execute("create table coding.suggestions as select answer_id, framework, dimension, "
                    "code_id, probability, source from s")
    con.close()
    return path


def invoke(*args: str):
    return runner.invoke(app, ["sheets", *args])


def test_cli_writes_one_sheet_per_coder(tmp_path):
    wh = warehouse(tmp_path)
    out = tmp_path / "out"
    res = invoke(YEAR, "--coder", "jm", "--coder", "ak", "--out", str(out), "--warehouse",
                 str(wh), "--codebook", str(ROOT / "codebooks"))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [f"coder_sheet_{YEAR}_ak.xlsx",
                                                     f"coder_sheet_{YEAR}_jm.xlsx"]
    assert "blind" in res.output
    rows = data_rows(out / f"coder_sheet_{YEAR}_jm.xlsx", "jm")
    assert [r[0] for r in rows[1:]] == BLIND_ORDER


def test_cli_with_suggestions(tmp_path):
    out = tmp_path / "out"
    args = [YEAR, "--coder", "jm", "--out", str(out), "--codebook", str(ROOT / "codebooks"),
            "--with-suggestions"]
    res = invoke(*args, "--warehouse", str(warehouse(tmp_path)))
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: no coding.suggestions table in {tmp_path / 'wh.duckdb'}; run the pipeline first"]
    wh2 = tmp_path / "with"
    wh2.mkdir()
    res = invoke(*args, "--warehouse", str(warehouse(wh2, suggestions=True)))
    assert res.exit_code == 0, res.output
    rows = data_rows(out / f"coder_sheet_{YEAR}_jm_with_suggestions.xlsx", "jm")
    assert rows[1][0] == "A000000000005" and rows[2][0] == "A000000000002"


def test_cli_errors(tmp_path):
    wh = warehouse(tmp_path)
    out = tmp_path / "out"
    res = invoke("2030-31", "--coder", "jm", "--out", str(out), "--warehouse", str(wh))
    assert res.exit_code == 1
    assert "years present: 2023-24, 2024-25" in res.output
    assert "Traceback" not in res.output and not out.exists()
    res = invoke(YEAR, "--out", str(out), "--warehouse", str(wh))
    assert res.exit_code == 1 and "no coder given" in res.output
    res = invoke(YEAR, "--coder", "jm", "--coder", "ak", "--with-suggestions", "--out",
                 str(out), "--warehouse", str(wh))
    assert res.exit_code == 1 and "must stay blind" in res.output and not out.exists()
    res = invoke(YEAR, "--coder", "jm", "--out", str(out), "--warehouse",
                 str(tmp_path / "missing.duckdb"))
    assert res.exit_code == 1 and "no warehouse at" in res.output
    assert "Traceback" not in res.output


# ------------------------------------------------------------- same cells as the per-cell writer


def _old_data_tab(w, ws, rows, columns, by_answer):
    """The oracle: the coder's tab as written before its rows were rendered in bulk."""
    from pipeline.core.coding.sheet_writer import CODE_WIDTH, WIDTHS

    n_ctx = len(CONTEXT)
    for j, (header, _col) in enumerate(CONTEXT):
        w.string(ws, 0, j, header, w.head)
        ws.set_column(j, j, WIDTHS[header])
    dims = []
    for k, (_book, code, header) in enumerate(columns):
        if (code.framework, code.dimension) not in dims:
            dims.append((code.framework, code.dimension))
        w.string(ws, 0, n_ctx + k, header, w.dim_heads[(len(dims) - 1) % 2])
    ws.set_column(n_ctx, n_ctx + len(columns) - 1, CODE_WIDTH)
    ws.set_row(0, 60)
    for i, rec in enumerate(rows.to_dict("records"), start=1):
        for j, (header, col) in enumerate(CONTEXT):
            v = rec.get(col)
            if header == "session" and v is not None and not pd.isna(v):
                ws.write_number(i, j, int(v), w.text)
            else:
                w.string(ws, i, j, v)
        sugg = (by_answer or {}).get(rec["answer_id"], {})
        for k, (_book, code, _header) in enumerate(columns):
            hits = sugg.get(code.code_id)
            if not hits:
                ws.write_blank(i, n_ctx + k, None, w.code)
                continue
            ws.write_blank(i, n_ctx + k, None, w.fills[round(max(p for _s, p in hits) * 10)])
            note = "\n".join(f"suggested ({s or 'model'}) p={p:.2f}" for s, p in sorted(hits))
            ws.write_comment(i, n_ctx + k, note, {"author": "suggestion", "x_scale": 1.6})
    last_row, last_col = len(rows), n_ctx + len(columns) - 1
    ws.data_validation(1, n_ctx, last_row, last_col, {
        "validate": "list", "source": ["0", "1"], "error_type": "stop",
        "error_title": "1, 0 or blank",
        "error_message": "1 = the code applies; 0 or blank = it does not."})
    ws.freeze_panes(1, n_ctx)
    ws.autofilter(0, 0, last_row, last_col)
    ws.activate()


def _old_workbook(path, coder, school_year, rows, codebooks, columns, by_answer, once=None,
                  kept=None):
    import xlsxwriter

    from pipeline.core.coding import sheet_writer as sw

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    w = sw._Writer(wb)
    wb.set_properties({"title": f"Coder sheet {school_year}: {coder}"})
    _old_data_tab(w, wb.add_worksheet(coder), rows, columns, by_answer)
    sw._codebook_tab(w, wb.add_worksheet(CODEBOOK_TAB), codebooks, columns)
    sw._instructions_tab(w, wb.add_worksheet(INSTRUCTIONS_TAB), coder, school_year, len(rows),
                         by_answer is not None)
    wb.close()


@pytest.mark.parametrize("with_suggestions", [False, True])
def test_sheets_read_as_the_per_cell_writer_wrote_them(tmp_path, books, monkeypatch,
                                                       with_suggestions):
    from pipeline.core.coding import sheet_writer as sw
    from tests.exchange_data import workbook_contents

    answers = answers_frame()
    answers.loc[0, "answer_text"] = " leading space, tab\tand a control \x02 character "
    answers.loc[1, "role"] = None
    sugg = suggestions_frame() if with_suggestions else None
    coders = ["jm"] if with_suggestions else ["jm", "coder_ak"]
    new = write_coder_sheets(answers, books, coders, tmp_path / "new", YEAR, sugg)
    monkeypatch.setattr(sw, "_write_workbook", _old_workbook)
    old = write_coder_sheets(answers, books, coders, tmp_path / "old", YEAR, sugg)
    for a, b in zip(new, old, strict=True):
        assert a.name == b.name
        assert workbook_contents(a) == workbook_contents(b)


def test_blind_rows_are_rendered_once_for_every_coder(tmp_path, books, monkeypatch):
    """Blind sheets hold the same answer rows: the second coder's are the first's, read back
    (each workbook read as the per-cell writer's above); with suggestions (one coder) they are
    rendered for that sheet."""
    from pipeline.core.coding import sheet_writer as sw

    calls = []
    render = sw.render_rows

    def counted(*args, **kwargs):
        calls.append(1)
        return render(*args, **kwargs)

    monkeypatch.setattr(sw, "render_rows", counted)
    paths = write_coder_sheets(answers_frame(), books, ["jm", "ak", "lb"], tmp_path, YEAR)
    assert len(calls) == 1
    rows = [data_rows(p, coder)[1:] for p, coder in zip(paths, ["jm", "ak", "lb"], strict=True)]
    assert rows[0] == rows[1] == rows[2]
    assert [r[0] for r in rows[0]] == BLIND_ORDER
    write_coder_sheets(answers_frame(), books, ["jm"], tmp_path / "s", YEAR, suggestions_frame())
    assert len(calls) == 2


def test_kept_runs_write_the_same_sheets_and_render_only_what_moved(tmp_path, books,
                                                                    monkeypatch):
    """Blind sheets from runs kept per question and session (deflated parts) read as the sheets
    written without them, for every coder; a second write renders nothing; a new session
    renders its own runs and the runs after it whose first row moved (the improve answers),
    and keeps the worked answers of the sessions before it."""
    from pipeline.core.coding import sheet_writer as sw
    from pipeline.core.exchange.spreadsheet import RunsKept
    from pipeline.core.result_cache import ResultCache
    from tests.exchange_data import workbook_contents

    cache = ResultCache(tmp_path / "cache")
    calls = []
    render = sw.render_rows

    def counted(first, cells, tails=None):
        calls.append((first, len(tails or ())))
        return render(first, cells, tails)

    monkeypatch.setattr(sw, "render_rows", counted)

    def write(answers, name):
        kept = RunsKept(cache, ("question_id", "session_number"))
        calls.clear()
        paths = write_coder_sheets(answers, books, ["jm", "ak"], tmp_path / name, YEAR,
                                   kept=kept)
        plain = write_coder_sheets(answers, books, ["jm", "ak"], tmp_path / f"{name}-plain",
                                   YEAR)
        for a, b in zip(paths, plain, strict=True):
            assert workbook_contents(a) == workbook_contents(b)
        return sorted(s.removeprefix(f"sheet-{YEAR}-") for s in kept.rendered), kept.reused

    rendered, reused = write(answers_frame(), "a")
    assert rendered == ["improve-1", "improve-2", "worked-1", "worked-2", "worked-none"]
    assert len(reused) == 5    # the second coder's rows, all of them
    rendered, reused = write(answers_frame(), "b")
    assert rendered == [] and len(reused) == 10
    more = pd.concat([answers_frame(), pd.DataFrame([{
        "answer_id": "A000000000008", "school_year": YEAR, "question_id": "worked",
        "session_number": 3, "role": "teacher", "answer_text": "Session three.",
        "non_substantive": False, "response_id": "r8", "school_id": "school_0000abcd"}])],
        ignore_index=True)
    more["session_number"] = more["session_number"].astype("Int64")
    rendered, _ = write(more, "c")
    assert rendered == ["improve-1", "improve-2", "worked-3", "worked-none"]
