"""marts.coded_answers (warehouse/queries/13_coded_answers.sql) and the workbook written from
it (pipeline.core.exchange.coded_answers): content per answer, filters, frozen header and no
cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv

import duckdb
import openpyxl
import pytest

from pipeline.core.exchange.coded_answers import COLUMNS, read_coded_answers, write_coded_answers
from tests import exchange_data as data

FORMULA_START = ("=", "+", "-", "@")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = data.build(tmp_path_factory.mktemp("wh") / "survey.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        return read_coded_answers(con)


def test_one_row_per_answer_with_labels_categories_provenance_evidence(rows):
    assert list(rows.columns) == list(COLUMNS)
    assert list(rows["answer_id"]) == [data.A, data.C, data.B, data.D]   # year, session, worked
    by = rows.set_index("answer_id")
    a = by.loc[data.A]
    assert (a["n_codes"], a["codes"], a["categories"], a["provenance"], a["decided_by"]) == (
        1, "Collaboration", "Depth", "agreed", "jm+ak")
    assert a["evidence"] == 'Collaboration: "collaborated"'
    assert a["undecided"] == "Knowledgeable"       # the coders disagree, not decided yet
    b = by.loc[data.B]
    assert (b["codes"], b["provenance"], b["decided_by"]) == (
        "time allocated", "adjudicated", "Lead researcher")
    assert b["question"] == "In what ways can we improve today's coaching session?"
    d = by.loc[data.D]
    assert (d["codes"], d["provenance"]) == ("Our practice", "machine: trained suggestion")
    assert d["evidence"] == 'Our practice: "We changed our practice."'
    c = by.loc[data.C]
    assert (c["n_codes"], c["codes"], bool(c["non_substantive"])) == (0, "", True)


def test_workbook_has_filters_a_frozen_header_and_no_live_formula(rows, tmp_path):
    xlsx, csv_path = tmp_path / "coded_answers.xlsx", tmp_path / "coded_answers.csv"
    counts = write_coded_answers(rows, xlsx, csv_path)
    assert counts == {"answers": 4, "coded_answers": 3, "codes": 3, "with_undecided": 1}
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["coded answers"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(row=1, column=len(COLUMNS)).column_letter}5"
    assert [c.value for c in ws[1]] == list(COLUMNS)
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert all(c.data_type != "f" for c in cells)
    risky = [c for c in cells if isinstance(c.value, str) and c.value.startswith(FORMULA_START)]
    assert {c.value for c in risky} == {data.TEXT_1, "=more time please"}
    assert all(c.quotePrefix for c in risky)          # shown and kept as text by Excel
    n_codes = [c for c in ws[1] if c.value == "n_codes"][0].column
    assert [ws.cell(row=r, column=n_codes).value for r in range(2, 6)] == [1, 0, 1, 1]
    assert "columns" in wb.sheetnames

    with csv_path.open(encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == list(COLUMNS) and len(table) == 5
    assert not any(v.startswith(FORMULA_START) for r in table for v in r)
    text = table[0].index("answer_text")
    assert table[1][text] == "'" + data.TEXT_1


def test_a_warehouse_built_before_dimension_label_gets_the_column(tmp_path):
    """Views are created on warehouses built by an older catalog: the nullable column added
    since is added (null until the codebook stage rewrites its rows) and the view works."""
    from pipeline.core.warehouse import connection as wh
    from pipeline.core.warehouse import views

    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        old = wh.TABLES["coding.codebook_codes"].replace(', "dimension_label" VARCHAR', "")
        assert "dimension_label" not in old
        con.execute("create schema coding")
        con.execute(f"create table coding.codebook_codes ({old})")
        views.create_views(con)
        assert "dimension_label" in wh.table_columns(con, "coding.codebook_codes")
        assert con.execute("select count(*) from marts.coded_answers").fetchone() == (0,)


def _old_workbook(frame, path):
    """The oracle: the workbook as written before the rows were rendered in bulk (xlsxwriter's
    API cell by cell, shared strings)."""
    import math
    import numbers

    import pandas as pd
    import xlsxwriter

    from pipeline.core.exchange.coded_answers import WIDTHS
    from pipeline.core.exchange.spreadsheet import cell_text
    from pipeline.core.reconciliation.queue import FORMULA_START as START

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})

    def sheet(name, frame, widths, number_columns=()):
        ws = wb.add_worksheet(name)
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
                              "valign": "top"})
        text = wb.add_format({"text_wrap": True, "valign": "top"})
        quoted = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
        columns = list(frame.columns)
        for j, col in enumerate(columns):
            ws.write_string(0, j, str(col), head)
            ws.set_column(j, j, widths.get(col, 16))
        numeric = {columns.index(c) for c in number_columns if c in columns}
        for i, row in enumerate(frame.itertuples(index=False), start=1):
            for j, v in enumerate(row):
                if j in numeric and isinstance(v, numbers.Real) and not isinstance(v, bool) \
                        and not (isinstance(v, float) and math.isnan(v)):
                    ws.write_number(i, j, v, text)
                    continue
                s = cell_text(v)
                ws.write_string(i, j, s, quoted if s.startswith(START) else text)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(frame), 1), max(len(columns) - 1, 0))

    sheet("coded answers", frame.reindex(columns=list(COLUMNS)), WIDTHS,
          ("session_number", "n_codes"))
    sheet("columns", pd.DataFrame({"column": list(COLUMNS), "meaning": list(COLUMNS.values())}),
          {"column": 18, "meaning": 100})
    wb.close()


def _awkward(rows):
    """The rows and more: text xlsxwriter escapes (control characters, _xHHHH_, leading and
    trailing space, markup, a string over Excel's limit), missing and boolean values, a
    float session."""
    import pandas as pd

    odd = [" lead", "trail\n", "a\x01b\x1fc", "_x0041_ stays", "<r>rich?</r>", "&<>\"'",
           "\tTab", "\rCR", "é — 😀", "x" * 40000, "😀" * 17000, ""]
    extra = pd.DataFrame({c: [rows.iloc[0][c]] * len(odd) for c in rows.columns})
    extra["answer_text"] = odd
    extra["session_number"] = [1.0, None, 2.5, float("nan"), 3, 4, 5, 6, 7, 8, 9, 10]
    extra["non_substantive"] = [True, False, None] * 4
    extra["n_codes"] = [0, 1, 2, 3] * 3
    extra["undecided"] = [None, "", "x", float("nan")] * 3
    return pd.concat([rows, extra], ignore_index=True)


@pytest.mark.parametrize("awkward", [False, True])
def test_the_bulk_rendered_workbook_reads_as_the_old_one(rows, tmp_path, awkward, monkeypatch):
    from pipeline.core.exchange import spreadsheet
    from tests.exchange_data import workbook_contents

    monkeypatch.setattr(spreadsheet, "ROWS_PER_BLOCK", 3)   # several blocks

    frame = _awkward(rows) if awkward else rows
    write_coded_answers(frame, tmp_path / "new.xlsx", None)
    _old_workbook(frame, tmp_path / "old.xlsx")
    new, old = (workbook_contents(tmp_path / f"{v}.xlsx") for v in ("new", "old"))
    if awkward:
        # Two known differences, both in text no answer has: '_x0041_' is written as
        # '_x005F_x0041_' in both files (Excel shows '_x0041_'), but openpyxl undoes that
        # escape in shared strings only; '<r>...</r>' was written as raw rich-text XML by
        # xlsxwriter (Excel shows nothing), and is now text like any other.
        new_cells, old_cells = new["coded answers"]["cells"], old["coded answers"]["cells"]
        assert new_cells.pop("H9")[0] == "_x005F_x0041_ stays"
        assert old_cells.pop("H9")[0] == "_x0041_ stays"
        assert (new_cells.pop("H10")[0], old_cells.pop("H10")[0]) == ("<r>rich?</r>", "")
    assert new == old


def test_the_per_session_name_check_gives_the_hits_of_the_whole_frame(rows, tmp_path):
    """names_in_coded_answers == names_in_frames over the whole frame, cached or not; a session
    whose rows change is scanned again (its stale result is never reused), the others reused."""
    from pipeline.core.exchange.coded_answers import names_in_coded_answers
    from pipeline.core.privacy.name_scan import names_in_frames
    from pipeline.core.privacy.redact import RosterEntry
    from pipeline.core.result_cache import ResultCache

    assert rows["school_year"].nunique() == 2
    roster = [RosterEntry(full_name="Marisol Quintero", role="teacher")]
    named = rows.copy()
    named.loc[0, "answer_text"] = "Marisol helped"
    named.loc[len(named) - 1, "decided_by"] = "quintero"
    cache = ResultCache(tmp_path / "cache")

    def check(frame, scanned_sessions):
        expected = names_in_frames(roster, {"coded_answers": frame})
        before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.bin")}
        assert names_in_coded_answers(frame, roster, cache) == expected
        assert names_in_coded_answers(frame, roster, None) == expected
        after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.bin")}
        assert sorted(n.split("--")[0] for n in set(after) - set(before)) == scanned_sessions
        return expected

    assert len(check(named, ["2020-21-1", "2020-21-2", "2024-25-1"])) == 2
    assert len(check(named, [])) == 2
    fixed = named.copy()
    fixed.loc[len(named) - 1, "decided_by"] = "ak"     # the later year's name removed
    assert len(check(fixed, ["2024-25-1"])) == 1


def _members(path):
    import zipfile

    with zipfile.ZipFile(path) as z:   # docProps/core.xml holds the creation time
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


def spreadsheet_runs(frame) -> list:
    from pipeline.core.exchange import spreadsheet
    from pipeline.core.exchange.coded_answers import RUNS

    return spreadsheet.runs(frame, RUNS)


def _ahead_always(monkeypatch) -> list[int]:
    """Runs rendered and texts scanned ahead in forked workers however few they are; returns
    the sizes of the maps run."""
    from pipeline.core import parallel
    from pipeline.core.exchange import spreadsheet
    from pipeline.core.privacy import name_scan

    sizes = []

    def counted(func, items, *args, **kwargs):
        items = list(items)
        sizes.append(len(items))
        return parallel.map_forked(func, items, *args, **kwargs)

    for module in (spreadsheet, name_scan):
        monkeypatch.setattr(module, "map_forked", counted)
    monkeypatch.setattr(spreadsheet, "AHEAD_MIN_ROWS", 0)
    monkeypatch.setattr(name_scan, "AHEAD_MIN_TEXTS", 0)
    return sizes


@pytest.mark.parametrize("ahead", [False, True], ids=["in order", "rendered ahead"])
def test_rows_kept_per_session_write_the_same_files(rows, tmp_path, monkeypatch, ahead):
    """write_coded_answers with the result cache writes the files it writes without one (xlsx
    member by member, csv byte for byte), on the first run, the second (every session reused)
    and after a change: a changed later session is rendered again; a changed row count of the
    first session renders the later sessions' rows again (they start elsewhere). The same when
    the runs to render are rendered ahead in forked workers (RunsKept.render_ahead)."""
    from pipeline.core.result_cache import ResultCache

    maps = _ahead_always(monkeypatch) if ahead else []

    cache = ResultCache(tmp_path / "cache")
    sessions = ["2020-21-1", "2020-21-2", "2024-25-1"]

    def check(frame, reused):
        plain = write_coded_answers(frame, tmp_path / "a.xlsx", tmp_path / "a.csv")
        got = write_coded_answers(frame, tmp_path / "b.xlsx", tmp_path / "b.csv", cache)
        assert _members(tmp_path / "a.xlsx") == _members(tmp_path / "b.xlsx")
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
        assert sorted(got.pop("rows_reused")) == sorted(reused)
        got.pop("rows_rendered")
        assert got == plain

    check(rows, [])
    check(rows, [f"{k}-{s}" for k in ("xlsx", "csv") for s in sessions])
    later = rows.copy()
    later.loc[len(later) - 1, "answer_text"] = "=changed, starts like a formula"
    check(later, [f"{k}-{s}" for k in ("xlsx", "csv") for s in sessions[:2]])
    fewer = later.drop(index=0).reset_index(drop=True)
    check(fewer, [])
    # rendered ahead: the xlsx's and the csv's sessions on the first write (three) and the
    # last (every session left: two); one session only after the change, not worth a fork
    assert maps == ([3, 3, len(spreadsheet_runs(fewer)), len(spreadsheet_runs(fewer))]
                    if ahead else [])


def test_kept_worksheet_parts_are_copied_into_the_zip_and_checked(rows, tmp_path):
    """The worksheet's kept runs are deflated parts copied into the workbook's zip (CRCs
    checked on reading); an entry whose trailer does not describe it is rendered again; a
    part given to a workbook that cannot zip it, or a NUL in a worksheet, is an error."""
    import zipfile

    import xlsxwriter

    from pipeline.core.exchange import spreadsheet, xlsx_rows, zip_parts
    from pipeline.core.result_cache import ResultCache

    cache = ResultCache(tmp_path / "cache")
    write_coded_answers(rows, tmp_path / "a.xlsx", tmp_path / "a.csv")
    write_coded_answers(rows, tmp_path / "b.xlsx", tmp_path / "b.csv", cache)
    with zipfile.ZipFile(tmp_path / "b.xlsx") as z:
        assert z.testzip() is None
        assert b"\x00" not in z.read("xl/worksheets/sheet1.xml")
    # a trailer saying another size: the run is rendered again, the file the same
    entry = next((tmp_path / "cache").glob("xlsx-2020-21-1--*.bin"))
    key, slot, trailer = entry.name.split("--")[1].removesuffix(".bin"), "xlsx-2020-21-1", \
        spreadsheet._TRAILER
    fh = cache.open(key, slot=slot)
    payload = fh.read()
    fh.seek(-len(payload), 1)
    assert spreadsheet._kept_part(fh).compressed_size == len(payload) - trailer.size
    crc, size, compressed, magic = trailer.unpack(payload[-trailer.size:])
    cache.store(key, payload[:-trailer.size] + trailer.pack(crc, size, compressed + 1, magic),
                slot=slot)
    write_coded_answers(rows, tmp_path / "c.xlsx", tmp_path / "c.csv", cache)
    assert _members(tmp_path / "a.xlsx") == _members(tmp_path / "c.xlsx")

    plain = xlsxwriter.Workbook(str(tmp_path / "d.xlsx"), {"constant_memory": True})
    ws = plain.add_worksheet("x", worksheet_class=xlsx_rows.RowsWorksheet)
    with pytest.raises(ValueError, match="QuickZipWorkbook"):
        ws.write_rendered_rows(0, 0, 0, [zip_parts.deflate([b"<row r='1'/>"])])
    plain.close()
    (tmp_path / "e.xml").write_bytes(b"<a>\x00oops</a>")
    with pytest.raises(ValueError, match="not a kept-part marker"):
        xlsx_rows._split_at_marks(tmp_path / "e.xml", {})


def test_an_unwritable_cache_still_writes_the_same_files(rows, tmp_path):
    from pipeline.core.result_cache import ResultCache

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    write_coded_answers(rows, tmp_path / "a.xlsx", tmp_path / "a.csv")
    got = write_coded_answers(rows, tmp_path / "b.xlsx", tmp_path / "b.csv",
                              ResultCache(blocker / "cache"))
    assert got["rows_reused"] == []
    assert _members(tmp_path / "a.xlsx") == _members(tmp_path / "b.xlsx")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_rows_beyond_a_worksheet_go_on_in_more_tabs(rows, tmp_path, monkeypatch):
    """A worksheet holds 1,048,576 rows: beyond that the coded answers go on in "coded answers
    (2)", "(3)"..., each with its header, filters and frozen pane, every row once and in order
    (here 40 rows and an 18-row worksheet: 17 + 17 + 6, a school year across tabs). With the
    result cache (the rows sorted by year only: a session is several runs), the same files,
    and a second write reuses every tab's runs. A table that is read back (the adjudication
    queue) must fit in one worksheet: it is an error naming the sheet."""
    import pandas as pd

    from pipeline.core.exchange import spreadsheet
    from pipeline.core.result_cache import ResultCache

    monkeypatch.setattr(spreadsheet, "EXCEL_ROWS", 18)       # a header and 17 rows per tab
    frame = pd.concat([rows.assign(answer_id=rows["answer_id"] + f"-{k}") for k in range(10)])
    frame = frame.sort_values("school_year", kind="stable").reset_index(drop=True)
    write_coded_answers(frame, tmp_path / "a.xlsx", tmp_path / "a.csv")
    wb = openpyxl.load_workbook(tmp_path / "a.xlsx")
    tabs = ["coded answers", "coded answers (2)", "coded answers (3)"]
    assert wb.sheetnames == [*tabs, "columns"]
    seen = []
    for name, n in zip(tabs, (17, 17, 6), strict=True):
        ws = wb[name]
        assert [c.value for c in ws[1]] == list(COLUMNS)
        assert ws.freeze_panes == "A2"
        last = ws.cell(row=1, column=len(COLUMNS)).column_letter
        assert ws.auto_filter.ref == f"A1:{last}{n + 1}"
        seen += [r[0] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert seen == list(frame["answer_id"])
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as fh:
        assert len(list(csv.reader(fh))) == len(frame) + 1     # the CSV: one table

    cache = ResultCache(tmp_path / "cache")
    write_coded_answers(frame, tmp_path / "b.xlsx", tmp_path / "b.csv", cache)
    again = write_coded_answers(frame, tmp_path / "c.xlsx", tmp_path / "c.csv", cache)
    assert again["rows_rendered"] == []
    assert _members(tmp_path / "a.xlsx") == _members(tmp_path / "b.xlsx") \
        == _members(tmp_path / "c.xlsx")

    assert spreadsheet.continued_name("x" * 31, 1) == "x" * 27 + " (2)"
    wb = spreadsheet.open_workbook(tmp_path / "q.xlsx")
    with pytest.raises(ValueError, match="'queue': 40 rows do not fit in one worksheet"):
        spreadsheet.add_table_sheet(wb, "queue", frame)
    wb.close()


def test_no_bulk_written_worksheet_goes_beyond_the_rows_a_worksheet_holds(tmp_path):
    """The guard under every bulk writer (coded answers, queue, coder sheets): a row past
    1,048,576 is an error naming the worksheet, not a file Excel opens cut short."""
    from pipeline.core.exchange.spreadsheet import open_workbook
    from pipeline.core.exchange.xlsx_rows import RowsWorksheet

    wb = open_workbook(tmp_path / "big.xlsx")
    ws = wb.add_worksheet("coder_a", worksheet_class=RowsWorksheet)
    with pytest.raises(ValueError, match="'coder_a': 1,048,577 rows, more than the 1,048,576"):
        ws.write_rendered_rows(1, 1_048_576, 3, [])
    ws.write_rendered_rows(1, 1_048_575, 3, [])                 # the last row a sheet has
    wb.close()


def test_runs_name_their_cache_slots_once_each():
    """A run per (school year, session) in row order; a float session number 3.0 is "3", a
    missing value "none"; rows not sorted by them give a second run of the same values its own
    name (a cache slot holds one entry)."""
    import pandas as pd

    from pipeline.core.exchange.coded_answers import RUNS
    from pipeline.core.exchange.spreadsheet import runs

    frame = pd.DataFrame({"school_year": ["2020-21", "2020-21", "2020-21", "2023-24", None,
                                          "2020-21"],
                          "session_number": [3.0, 3.0, 4, None, None, 3]})
    assert runs(frame, RUNS) == [("2020-21-3", 0, 2), ("2020-21-4", 2, 3),
                                 ("2023-24-none", 3, 4), ("none-none", 4, 5),
                                 ("2020-21-3_run2", 5, 6)]
    with pytest.raises(ValueError):
        runs(frame, ())


@pytest.mark.parametrize("ahead", [False, True], ids=["in order", "ahead"])
def test_view_rows_read_only_the_sessions_whose_results_are_not_kept(tmp_path, monkeypatch,
                                                                     ahead):
    """ViewRows (the view run once into a temporary table, each session digested by DuckDB)
    writes the files the view's frame writes, with the same counts and name hits; a second
    write reads no session's rows; an edited answer's session is read, checked and rendered
    again, alone. Across worksheets (a session split between two tabs), the same files. The
    same with the names scanned and the runs rendered ahead in forked workers (which read
    nothing from the warehouse: the rows are read before they fork)."""
    import shutil

    from pipeline.core.exchange import spreadsheet
    from pipeline.core.exchange.coded_answers import ViewRows, names_in_coded_answers
    from pipeline.core.privacy.redact import RosterEntry
    from pipeline.core.result_cache import ResultCache

    path = data.build(tmp_path / "survey.duckdb")
    roster = [RosterEntry(full_name="Marisol Quintero", role="teacher")]
    names, rows_cache = ResultCache(tmp_path / "names"), ResultCache(tmp_path / "rows")
    maps = _ahead_always(monkeypatch) if ahead else []

    def write(tag):
        with duckdb.connect(str(path), read_only=True) as con:
            frame = read_coded_answers(con)
            plain = write_coded_answers(frame, tmp_path / f"{tag}a.xlsx", tmp_path / f"{tag}a.csv")
            view = ViewRows(con, ResultCache(tmp_path / "counts"))
            assert len(view) == len(frame)
            assert [(n, a, b) for n, a, b in view.runs] == \
                spreadsheet.runs(frame, ("school_year", "session_number"))
            assert view.frame().equals(frame)
            hits = names_in_coded_answers(view, roster, names)
            assert hits == names_in_coded_answers(frame, roster, None)
            got = write_coded_answers(view, tmp_path / f"{tag}b.xlsx", tmp_path / f"{tag}b.csv",
                                      rows_cache)
        assert _members(tmp_path / f"{tag}a.xlsx") == _members(tmp_path / f"{tag}b.xlsx")
        assert (tmp_path / f"{tag}a.csv").read_bytes() == (tmp_path / f"{tag}b.csv").read_bytes()
        assert {k: got[k] for k in plain} == plain
        return view.read_sessions(), hits

    everything = ["2020-21-1", "2020-21-2", "2024-25-1"]
    assert write("1") == (everything, [])
    assert write("2") == ([], [])
    with duckdb.connect(str(path)) as con:
        con.execute("update staging.answers set answer_text = 'Marisol helped' "
                    "where answer_id = ?", [data.D])
    read, hits = write("3")
    assert read == ["2024-25-1"] and [h["row"] for h in hits] == ["3"]

    monkeypatch.setattr(spreadsheet, "EXCEL_ROWS", 18)    # a header and 17 rows per tab
    shutil.rmtree(tmp_path / "rows")
    rows_cache = ResultCache(tmp_path / "rows")
    with duckdb.connect(str(path)) as con:   # 40 answers: 2020-21-2 (rows 10-29) spans two tabs
        con.execute("update staging.answers set answer_text = 'fine' where answer_id = ?",
                    [data.D])
        con.execute("insert into staging.answers select a.* replace (answer_id || '-' || k "
                    "as answer_id) from staging.answers a, range(1, 10) r(k)")
    assert write("4")[0] == everything
    assert write("5")[0] == []
    assert (len(maps) > 0) == ahead


def test_view_rows_of_a_few_sessions_are_the_views_rows(tmp_path):
    """A session's rows made by the view's SQL on that session's rows only (copied through
    Parquet into an in-memory database) are the view's rows of that session: each session
    alone, a missing session number among them, and every session at once. (pandas gives a
    whole-number column without a missing value as int32, with one as Int32, as it did when
    each session was read from the view's rows one at a time: same values.)"""
    import pandas as pd

    from pipeline.core.exchange.coded_answers import ViewRows

    path = data.build(tmp_path / "survey.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute("insert into staging.answers select a.* replace (answer_id || '-x' as "
                    "answer_id, null as session_number) from staging.answers a")
        con.execute("insert into coding.final_codes select f.* replace (answer_id || '-x' as "
                    "answer_id) from coding.final_codes f")
    with duckdb.connect(str(path), read_only=True) as con:
        frame = read_coded_answers(con)
        view = ViewRows(con)
        assert [name for name, _a, _b in view.runs][-1].endswith("-none")
        for i, (_name, start, stop) in enumerate(view.runs):
            pd.testing.assert_frame_equal(view._view_of([i]), frame.iloc[start:stop]
                                          .reset_index(drop=True), check_dtype=False)
        pd.testing.assert_frame_equal(view._view_of(list(range(len(view.runs)))), frame)
        assert view.counts() == write_coded_answers(frame, None, None)
