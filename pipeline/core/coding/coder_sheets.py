"""Human coder sheets: read one sheet per coder into sheet rows.

Reading (`read_coder_sheets`) turns workbooks (one tab per coder, tab name = coder id) and CSVs
(one per coder, file stem = coder id) into *sheet rows*, each with its source file, sheet and
spreadsheet row. Two layouts, detected per tab / file from the header (row 1):

- long (has a `code` column): `answer_id` (or `response_id` + `question`), `framework`,
  `category`, `code`, optional `note`; one row per code applied; an answer id with an empty code
  means "coded, nothing applies". One sheet row per spreadsheet row.
- wide (an `answer_id` / `response_id` column, no `code` column): one spreadsheet row per answer
  and one 0/1 column per code (code id or label). Each spreadsheet row gives one sheet row that
  lists the answer (code empty) plus one sheet row per cell that is neither blank nor 0.

Validation against the codebook and the answers: core.coding.sheet_validation.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.ingest.hashing import file_sha256

SHEET_ROW_COLUMNS = [
    "source_file", "source_sheet", "source_row", "source_column", "coder", "layout",
    "answer_id", "response_id", "question", "school_year", "framework", "category", "code",
    "value", "note",
]
# Header spellings accepted for each field (compared after norm_key()).
FIELDS = {
    "answer_id": ("answer_id", "answerid", "answer_key"),
    "response_id": ("response_id", "responseid"),
    "question": ("question", "question_id", "q"),
    "school_year": ("school_year", "year"),
    "framework": ("framework",),
    "category": ("category", "dimension"),
    "code": ("code", "coded_term", "term", "code_id"),
    "note": ("note", "notes", "comment", "comments", "memo"),
}
# The adjudication file and the discrepancy queue as the pipeline names them in the coder
# sheets' folder (core.coding.dual_coding): never coder sheets.
ADJUDICATION_NAMES = ("adjudications.xlsx", "adjudications.csv")
QUEUE_NAMES = ("discrepancy_queue.xlsx", "discrepancy_queue.csv")
QUEUE_FILE_NAMES = (*ADJUDICATION_NAMES, *QUEUE_NAMES)
# Wide layout: columns that give context and are neither ids nor codes.
CONTEXT_COLUMNS = {"answer", "answer_text", "text", "response", "question_text", "session",
                   "session_number", "school", "school_id", "role", "coder"}


class CoderSheetError(ValueError):
    """A coder sheet that cannot be read at all (unknown layout, unreadable file)."""


_NON_KEY = re.compile(r"[^0-9a-z]+")


def norm_key(text: object) -> str:
    """Normalised header / code text: case-folded, runs of non-alphanumerics -> '_'."""
    return _norm_key_text(str(text))


@lru_cache(maxsize=65536)
def _norm_key_text(text: str) -> str:
    # validation normalises the same few hundred code names, categories and questions on
    # every sheet row: each distinct text is normalised once
    return _NON_KEY.sub("_", text.casefold()).strip("_")


def cell_text(value: object) -> str:
    """A spreadsheet cell as text: None -> '', True -> '1', 2.0 -> '2', dates ISO, stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


# --------------------------------------------------------------------------------- reading


def coder_sheet_files(paths) -> list[Path]:
    """Each path is a workbook, a CSV or a folder. In a folder: every *.xlsx and *.csv (sorted),
    except Office lock files (~$...), hidden files and files with a `discrepancy_id` column (an
    adjudication queue kept next to the sheets)."""
    return [f for f, in_folder in _listed(paths) if not in_folder or not _is_queue(f)]


def candidate_files(paths) -> list[Path]:
    """coder_sheet_files before telling adjudication queues apart (which opens each workbook):
    every file that is, or might be, a coder sheet."""
    return [f for f, _in_folder in _listed(paths)]


def _listed(paths) -> list[tuple[Path, bool]]:
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append((p, False))
            continue
        out.extend((f, True) for f in sorted([*p.glob("*.xlsx"), *p.glob("*.csv")])
                   if not f.name.startswith(("~$", ".")))
    return out


def _is_queue(path: Path, headers: list[tuple[str | None, list[str]]] | None = None) -> bool:
    """Whether the file is an adjudication queue (a `discrepancy_id` column): kept per
    content in this process and on disk (frame_memo), since telling it needs the workbook
    parsed (seconds for a large sheet). `headers`: the file's (as read_headers gives them),
    when the caller has parsed it already."""
    key = _content_key(path)
    found = _known_queue(key)
    if found is None:
        found = any("discrepancy_id" in {norm_key(h) for h in header}
                    for _sheet, header in (read_headers(path) if headers is None else headers))
        if key is not None:
            frame_memo.store("sheet_is_queue", _queue_memo_key(key),
                             pd.DataFrame({"is_queue": [found]}))
            _QUEUE_CACHE[key] = found
    return found


def _queue_unknown(path: Path) -> bool:
    """Whether `_is_queue` has to read the file's headers: a readable file that neither this
    process nor the disk memo has told apart."""
    key = _content_key(path)
    return key is not None and _known_queue(key) is None


def _known_queue(key: tuple[str, str] | None) -> bool | None:
    """Whether the file of this `_content_key` is a queue, as this process or the disk memo
    knows it; None when neither does."""
    if key is None:
        return None
    if key not in _QUEUE_CACHE:
        stored = frame_memo.load("sheet_is_queue", _queue_memo_key(key))
        if stored is None or list(stored.columns) != ["is_queue"] or len(stored) != 1:
            return None
        _QUEUE_CACHE[key] = bool(stored["is_queue"].iloc[0])
    return _QUEUE_CACHE[key]


def _queue_memo_key(key: tuple[str, str]) -> str:
    return frame_memo.key("is adjudication queue", key[1], reader_versions())


def _content_key(path: Path) -> tuple[str, str] | None:
    """(resolved path, sha256 of the bytes), or None when the file cannot be read."""
    try:
        return str(Path(path).resolve()), file_sha256(path)
    except OSError:
        return None


def _open_workbook(path: Path):
    """The workbook, read-only with cached values; a bad file is a CoderSheetError."""
    import openpyxl

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None


# A cell of type "e" in a sheet's XML, with or without a namespace prefix (`<x:c ...>`, as
# the .NET Open XML SDK writes): an error value (#N/A, #DIV/0!, #REF!...)
_ERROR_CELL = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*\bt\s*=\s*["']e["']""")
_XML_BLOCK = 1 << 20
# parts that hold no cells: not searched (any other XML part is, wherever the workbook keeps
# its sheets: the package's relationships may place them outside xl/worksheets/)
_NO_CELLS = ("xl/sharedStrings.xml", "xl/styles.xml", "[Content_Types].xml")


def has_error_cells(path: Path) -> bool:
    """Whether any sheet of the workbook holds an error value. python-calamine reads an error
    cell as an empty one (python-calamine issue #105), which in a coder sheet would turn a
    broken formula into "coded, nothing applies": such workbooks are read by openpyxl, which
    gives the error's text (then validated like any other unknown value). Every XML part that
    can hold cells is inflated and searched in blocks; a false alarm only means the slower
    reader. A file that cannot be searched says True (openpyxl then names the problem)."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if not name.endswith(".xml") or name in _NO_CELLS or name.startswith(
                        ("docProps/", "xl/theme/")):
                    continue
                with z.open(name) as member:
                    tail = b""
                    for block in iter(lambda m=member: m.read(_XML_BLOCK), b""):
                        text = tail + block
                        if _ERROR_CELL.search(text):
                            return True
                        tail = text[-256:]   # a tag cut between blocks
        return False
    except Exception:  # zipfile, zlib and the OS raise many kinds for a damaged file
        return True


def _calamine_sheets(path: Path) -> list[tuple[str, list[list[str]]]]:
    """Every worksheet (not chart sheets) as text rows from A1, as `_openpyxl_sheets` gives
    them: python-calamine (Rust) reads a sheet 3-4x faster than openpyxl's read-only mode
    (the 100k bench's two coders' tabs, 311,000 rows, as text: 2.2-2.7 s against 8.0-9.1 s;
    docs/benchmarks.md, stop 17). Its values differ from openpyxl's in type only where
    cell_text() makes them equal (1.0 for 1, '' for None), except a date-only cell, a `date`
    here and a midnight `datetime` there: made the same. An error cell reads as an empty
    one: `_workbook_sheets` reads such a workbook with openpyxl."""
    return [(name, _calamine_sheet(path, name)) for name in _calamine_sheet_names(path)]


def _workbook_sheets(path: Path) -> list[tuple[str, list[list[str]]]]:
    """`_calamine_sheets`, or `_openpyxl_sheets` for a workbook with an error cell
    (`has_error_cells`). The search and the sheets are read on threads at once: calamine
    parses without holding the GIL (the 1M bench's two 1,048,576-row tabs and the search:
    7.0 s one after another, about 3.5 s so)."""
    with ThreadPoolExecutor(max_workers=_SHEET_THREADS) as pool:
        errors = pool.submit(has_error_cells, path)
        try:
            parsed = [(name, pool.submit(_calamine_sheet, path, name))
                      for name in _calamine_sheet_names(path)]
            if not errors.result():
                return [(name, rows.result()) for name, rows in parsed]
            for _name, rows in parsed:   # not started yet: not parsed for nothing
                rows.cancel()
            del parsed
        except CoderSheetError:
            if not errors.result():   # else openpyxl names the problem
                raise
    return list(_openpyxl_sheets(path))


_SHEET_THREADS = 3   # the error-cell search and two coders' sheets at once


def _calamine_sheet_names(path: Path) -> list[str]:
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    try:
        with CalamineWorkbook.from_path(str(path)) as wb:
            return [m.name for m in wb.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    except Exception as exc:  # python-calamine raises its own and several builtin types
        raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None


def _calamine_sheet(path: Path, name: str) -> list[list[str]]:
    from python_calamine import CalamineWorkbook

    try:
        with CalamineWorkbook.from_path(str(path)) as wb:
            rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        for i, r in enumerate(rows):   # in place: one copy of a large sheet at a time
            # most cells are text: cell_text() of a str is its strip(), without a call
            rows[i] = [v.strip() if type(v) is str else _calamine_text(v) for v in r]
    except Exception as exc:  # as _calamine_sheet_names
        raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None
    return rows


def _calamine_text(value: object) -> str:
    if type(value) is date:
        value = datetime(value.year, value.month, value.day)
    return cell_text(value)


def _openpyxl_sheets(path: Path) -> Iterable[tuple[str, list[list[str]]]]:
    """Every worksheet as text rows from A1, through openpyxl's read-only mode. Its rows stop
    at the sheet's stated dimension (`<dimension ref=...>`), which a writer may leave stale:
    reset, so every cell is read, as calamine reads them."""
    wb = _open_workbook(path)
    try:
        for ws in wb.worksheets:
            ws.reset_dimensions()
            yield ws.title, [[cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
    except CoderSheetError:
        raise
    except Exception as exc:  # openpyxl and lxml raise many kinds for a damaged sheet
        raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None
    finally:
        wb.close()


@lru_cache(maxsize=1)
def reader_versions() -> str:
    """The workbook readers' versions (looked up once per process): part of the keys of what
    is kept from a parse (the queue check, the import), so a reader that parses differently is
    never served old results."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("python-calamine", "openpyxl"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} -")
    return ", ".join(out)


def read_headers(path: Path) -> list[tuple[str | None, list[str]]]:
    """(sheet name or None for CSV, header) per tab / file, as `read_tables` gives them,
    without parsing the rest where that can be avoided: a CSV's first record only; a
    workbook's first row of each tab (calamine still loads every tab, but converts one row;
    at a million answers the two coders' tabs, two million rows, took ~20 s to read whole
    just to tell a queue from a sheet). A workbook with error cells (read by openpyxl), a tab
    that does not start at A1 (read_tables pads it from A1) or a file read whole before in
    this process gives what `read_tables` gives."""
    path = Path(path)
    key = _content_key(path)
    if key is not None and key in _TABLES_CACHE:
        return [(sheet, header) for sheet, header, _rows in _TABLES_CACHE[key]]
    suffix = path.suffix.lower()
    if key is not None and suffix == ".csv":
        first = next(csv.reader(io.StringIO(_csv_text(path), newline="")), [])
        return [(None, [c.strip() for c in first])]
    if key is not None and suffix in (".xlsx", ".xlsm") and not has_error_cells(path):
        headers = _calamine_headers(path)
        if headers is not None:
            return headers
    return [(sheet, header) for sheet, header, _rows in read_tables(path)]


def _calamine_headers(path: Path) -> list[tuple[str, list[str]]] | None:
    """Each worksheet's first row as `_calamine_sheets` gives it, or None when a tab does not
    start at A1 (calamine's rows then start elsewhere than the padded rows read_tables gets)."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    out = []
    try:
        with CalamineWorkbook.from_path(str(path)) as wb:
            for meta in wb.sheets_metadata:
                if meta.typ != SheetTypeEnum.WorkSheet:
                    continue
                sheet = wb.get_sheet_by_name(meta.name)
                if sheet.start not in (None, (0, 0)):
                    return None
                first = next(iter(sheet.iter_rows()), None) if sheet.start else None
                out.append((meta.name, [] if first is None else [
                    v.strip() if type(v) is str else _calamine_text(v) for v in first]))
    except Exception as exc:  # as _calamine_sheets
        raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None
    return out


# A few files read whole, kept by content: the year partitions of one run import the same coder
# sheets, and reconciliation reads the same adjudication file once per year. Keyed by the
# path and the sha256 of the bytes, so an edited file is always read again. Only files of at
# most _TABLES_CACHE_CELLS cells are kept: the coders' sheets of a 1M-answer study are tens of
# millions of cells, GBs of strings that stayed in memory for the rest of the run (their
# import is kept on disk instead: dual_coding.import_sheets).
_TABLES_CACHE: OrderedDict[tuple[str, str], list] = OrderedDict()
_TABLES_CACHE_FILES = 2
_TABLES_CACHE_CELLS = 2_000_000
_QUEUE_CACHE: dict[tuple[str, str], bool] = {}   # (path, sha256) -> is an adjudication queue


def read_tables(path: Path) -> list[tuple[str | None, list[str], list[tuple[int, list[str]]]]]:
    """(sheet name or None for CSV, header, [(spreadsheet row, cells)]) per tab / file.
    Cells are text (cell_text); CSVs are UTF-8 (BOM or not), else cp1252.

    A file with the same bytes as one read before in this process is not parsed again (unless
    it was too large to keep): the same lists are returned (callers only read them)."""
    path = Path(path)
    key = _content_key(path)
    if key is None:
        return list(_parse_tables(path))   # the reader names the problem
    if key in _TABLES_CACHE:
        _TABLES_CACHE.move_to_end(key)
        return _TABLES_CACHE[key]
    tables = list(_parse_tables(path))
    if sum(len(cells) for _sheet, _header, rows in tables for _n, cells in rows) \
            <= _TABLES_CACHE_CELLS:
        _TABLES_CACHE[key] = tables
        while len(_TABLES_CACHE) > _TABLES_CACHE_FILES:
            _TABLES_CACHE.popitem(last=False)
    return tables


def _parse_tables(path: Path
                  ) -> Iterable[tuple[str | None, list[str], list[tuple[int, list[str]]]]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        sheets = _workbook_sheets(path)
        for title, rows in sheets:
            yield title, rows[0] if rows else [], list(enumerate(rows[1:], start=2))
    elif path.suffix.lower() == ".csv":
        rows = [[c.strip() for c in r]
                for r in csv.reader(io.StringIO(_csv_text(path), newline=""))]
        yield None, rows[0] if rows else [], list(enumerate(rows[1:], start=2))
    else:
        raise CoderSheetError(f"{path}: not a coder sheet (expected .xlsx or .csv)")


def _csv_text(path: Path) -> str:
    """A CSV's text: UTF-8 (BOM or not), else cp1252."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CoderSheetError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_coder_sheets(paths) -> pd.DataFrame:
    """Sheet rows of every coder sheet under `paths` (files or folders, see coder_sheet_files).

    Workbook tabs whose name starts with '_' or '#' are skipped (notes, instructions). Fully
    blank spreadsheet rows are not data. Raises CoderSheetError for a tab or file whose layout
    cannot be recognised (the first such file in name order). Columns: SHEET_ROW_COLUMNS (all
    text; source_row int).
    """
    out: list[pd.DataFrame] = []
    for path, in_folder in _listed(paths):
        tables = None
        if in_folder and path.suffix.lower() == ".xlsx" and path.name not in QUEUE_FILE_NAMES \
                and _queue_unknown(path):
            # telling a queue loads the workbook's tabs whole (read_headers): a workbook that
            # may be a coder sheet is parsed once here, for both (the adjudication file and the
            # queue, by their names, have their headers read)
            tables = read_tables(path)
            if _is_queue(path, [(sheet, header) for sheet, header, _rows in tables]):
                continue
        elif in_folder and _is_queue(path):
            continue
        for sheet, header, rows in tables if tables is not None else read_tables(path):
            if sheet is not None and sheet.startswith(("_", "#")):
                continue
            coder = (sheet if sheet is not None else path.stem).strip()
            out.append(_sheet_rows(path, sheet, coder, header, rows))
    frame = _stacked(out)
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame


def _stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The tabs' rows one after another, as pd.concat(ignore_index=True) gives them, but a
    column at a time: pd.concat looks at every cell of a column that is all None in a tab
    (source_column and value in the long layout), 2.3 s for two 1M-row tabs."""
    if not frames:
        return pd.DataFrame([], columns=SHEET_ROW_COLUMNS)
    if len(frames) == 1:
        return frames[0]
    return pd.DataFrame({c: np.concatenate([f[c].to_numpy() for f in frames])
                         for c in SHEET_ROW_COLUMNS}, copy=False)


def _sheet_rows(path: Path, sheet, coder, header, rows) -> pd.DataFrame:
    """One tab's (or CSV's) sheet rows, SHEET_ROW_COLUMNS."""
    where = f"{path.name}" + (f" [{sheet}]" if sheet is not None else "")
    keys = [norm_key(h) for h in header]
    field_of = {}
    for i, k in enumerate(keys):
        for field, names in FIELDS.items():
            if k in names and field not in field_of:
                field_of[field] = i
    rows = [(n, cells) for n, cells in rows if any(cells)]   # cells are text
    if not header and not rows:
        return pd.DataFrame([], columns=SHEET_ROW_COLUMNS)
    base = {"source_file": path.name, "source_sheet": sheet or "", "coder": coder}
    if "code" in field_of:
        if "answer_id" not in field_of and "response_id" not in field_of:
            raise CoderSheetError(f"{where}: long layout needs an 'answer_id' column "
                                  f"(or 'response_id' and 'question'); header: {header}")
        # a row per spreadsheet row: built a column at a time, as object arrays (a frame
        # infers nothing from them)
        def same(value) -> np.ndarray:
            return np.full(len(rows), value, dtype=object)

        columns = {**{k: same(v) for k, v in base.items()},
                   "source_row": np.array([n for n, _cells in rows], dtype=np.int64),
                   "source_column": same(None), "layout": same("long"), "value": same(None)}
        for field in FIELDS:
            i = field_of.get(field)
            columns[field] = same("") if i is None else np.array(
                [cells[i] if i < len(cells) else "" for _n, cells in rows], dtype=object)
        return pd.DataFrame(columns, columns=SHEET_ROW_COLUMNS, copy=False)
    if "answer_id" not in field_of and "response_id" not in field_of:
        raise CoderSheetError(f"{where}: cannot tell the layout: no 'code' column (long layout) "
                              f"and no 'answer_id' column (wide layout); header: {header}")
    used = set(field_of.values())
    code_cols = [i for i, k in enumerate(keys) if i not in used and k not in CONTEXT_COLUMNS
                 and (k or any(i < len(c) and c[i] for _n, c in rows))]
    out = []
    for n, cells in rows:
        ids = _fields(cells, field_of)
        out.append({**base, "source_row": n, "source_column": None, "layout": "wide", **ids,
                    "code": "", "value": None})
        for i in code_cols:
            v = cells[i] if i < len(cells) else ""
            if v not in ("", "0"):
                out.append({**base, "source_row": n, "source_column": header[i] or f"#{i + 1}",
                            "layout": "wide", **ids, "framework": "", "category": "",
                            "code": header[i], "value": v, "note": ""})
    return pd.DataFrame(out, columns=SHEET_ROW_COLUMNS)


def _fields(cells: list[str], field_of: dict[str, int]) -> dict[str, str]:
    n = len(cells)
    return {f: (cells[i] if i is not None and i < n else "")
            for f, i in ((f, field_of.get(f)) for f in FIELDS)}
