"""Readers for survey-tool exports (pure Python, no Dagster). Over 400 lines on purpose: every
layout shares the same bytes -> records -> table path and its checks, kept in one place.

`read_export(path)` turns one export file into an `ExportTable`: column ids, human labels,
every data record as a list of cell texts exactly as exported, and the spreadsheet row
number a person sees when opening the file in Excel. Nothing is converted to missing values:
'NA', 'N/A', 'none' and blanks stay text ('' for an empty cell).

Supported layouts (`READER_KINDS`):

- google-forms      CSV, one header row, 'Timestamp' first.
- qualtrics         CSV/XLSX, three header rows: column ids, question text, ImportId JSON.
- qualtrics-legacy  CSV, two header rows: V1..Vn ids, then labels (trailing commas allowed).
- microsoft-forms   XLSX, one header row: Id, Start time, Completion time, Email, Name, ...
- surveymonkey      CSV/XLSX, two header rows: questions (blank under merged cells), sub-labels.
- csv, xlsx         generic, one header row.

The header layout comes from the kind; the file type (CSV text or XLSX workbook) comes from
the file itself, so e.g. a SurveyMonkey or Qualtrics XLSX reads with the same kind.

Record rules: a record with more non-empty cells than the header is *ragged* and goes to
`problems`; a shorter record is padded with ''; extra empty trailing cells are dropped.
Completely empty records (blank lines, empty spreadsheet rows) carry no text and are skipped,
but still count for row numbers. A file that cannot be read at all raises `ExportReadError`.

Nothing is reinterpreted silently. A file is decoded as one encoding (UTF-8, else cp1252) or
refused with the line that breaks it (UTF-8 rows mixed with cp1252 rows); a semicolon- or
tab-delimited file is refused by name unless the delimiter is given; a CSV that ends in the
middle of a row (cut off while copying) has that row in `problems`; a Qualtrics export missing
one of its three header rows is refused by name (its header would be read as an answer);
repeated column names are kept (made unique) and listed in `duplicate_columns`; an XLSX whose
answers are not on its first worksheet, or on several, is refused naming the worksheets (give
`sheet`).
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

READER_KINDS = (
    "google-forms",
    "qualtrics",
    "qualtrics-legacy",
    "microsoft-forms",
    "surveymonkey",
    "csv",
    "xlsx",
)

HEADER_ROWS = {"qualtrics": 3, "qualtrics-legacy": 2, "surveymonkey": 2}
SURVEYMONKEY_PLAIN_SUBLABELS = {"", "Response", "Open-Ended Response"}
MICROSOFT_FORMS_HEADERS = {"id", "start time", "completion time"}   # compared case-folded

_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy binary .xls
_UTF8_BOM = b"\xef\xbb\xbf"
# a valid multi-byte UTF-8 sequence: in a file that is not UTF-8 throughout, the sign of a
# second encoding (cp1252 text hardly ever produces one)
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                             rb"|[\xf0-\xf4][\x80-\xbf]{3}")
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
QUALTRICS_ID_COLUMNS = {"ResponseId", "ResponseID"}
QUALTRICS_TIME_COLUMNS = {"StartDate", "EndDate", "RecordedDate"}

# Answers can be long, but the csv module's default field limit (131,072 characters) made a
# file with one huge cell unreadable as a whole. Cells are read whole and the raw layer applies
# its own per-cell limit (mapping.yaml `max_cell_chars`), quarantining just that cell.
csv.field_size_limit(2**31 - 1)


class ExportReadError(Exception):
    """A file that cannot be read at all. `str(err)` is one line naming the file."""

    def __init__(
        self,
        file: str,
        message: str,
        *,
        column: str | None = None,
        row: int | None = None,
        offset: int | None = None,
    ):
        self.file = str(file)
        self.message = message
        self.column = column
        self.row = row
        self.offset = offset
        super().__init__(str(self))

    def __reduce__(self):  # picklable across processes despite keyword-only arguments
        return (_rebuild_error, (self.file, self.message, self.column, self.row, self.offset))

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        location = f" at {', '.join(where)}" if where else ""
        return f"{self.file}: {self.message}{location}"


def _rebuild_error(file, message, column, row, offset) -> ExportReadError:
    return ExportReadError(file, message, column=column, row=row, offset=offset)


@dataclass
class RowProblem:
    """A record that could not be read as a row; the caller quarantines it."""

    row: int
    column: str | None
    reason: str


@dataclass
class ExportTable:
    path: Path
    kind: str
    detected: bool
    encoding: str
    sha256: str
    columns: list[str]
    labels: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    problems: list[RowProblem] = field(default_factory=list)
    # a column name (or label) that appears more than once -> its 1-based column positions
    duplicate_columns: dict[str, list[int]] = field(default_factory=dict)
    sheet: str | None = None                # XLSX: the worksheet read


@dataclass
class _Grid:
    """Raw records of a file before any header interpretation."""

    records: list[list[str]]  # every record, cells as text
    row_numbers: list[int]  # spreadsheet row of each record
    encoding: str
    is_workbook: bool
    problems: list[RowProblem] = field(default_factory=list)
    ends_with_newline: bool = True
    sheet: str | None = None


# --------------------------------------------------------------------------------------
# public API


def detect_kind(path: str | Path, *, delimiter: str | None = None,
                sheet: str | None = None) -> str:
    """The reader kind for a file, from its type and header rows."""
    path = Path(path)
    grid = _load_grid(path, _read_bytes(path), delimiter, sheet)
    return _detect(path, grid)


def read_export(path: str | Path, kind: str | None = None, *, delimiter: str | None = None,
                sheet: str | None = None) -> ExportTable:
    """Read one export file. `kind=None` detects the kind from the headers. `delimiter` (CSV)
    and `sheet` (XLSX) come from the mapping; by default a comma and the only worksheet with
    data."""
    path = Path(path)
    if kind is not None and kind not in READER_KINDS:
        raise ExportReadError(
            str(path), f"unknown export kind {kind!r} (expected one of: {', '.join(READER_KINDS)})"
        )
    data = _read_bytes(path)
    grid = _load_grid(path, data, delimiter, sheet)
    detected = kind is None
    if kind is None:
        kind = _detect(path, grid)
    table = _build_table(path, kind, grid)
    table.detected = detected
    table.sha256 = hashlib.sha256(data).hexdigest()
    table.sheet = grid.sheet
    return table


# --------------------------------------------------------------------------------------
# bytes -> records


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExportReadError(str(path), "file not found") from None
    except IsADirectoryError:
        raise ExportReadError(str(path), "is a directory, not an export file") from None
    except OSError as exc:
        raise ExportReadError(str(path), f"cannot open file ({exc.strerror})") from None
    if not data.strip() or data.strip() == _UTF8_BOM:
        raise ExportReadError(str(path), "file is empty")
    return data


def _load_grid(path: Path, data: bytes, delimiter: str | None = None,
               sheet: str | None = None) -> _Grid:
    if data.startswith(_OLE2_MAGIC):
        raise ExportReadError(
            str(path), "legacy binary .xls workbook is not supported; save it as .xlsx or CSV"
        )
    if path.suffix.lower() in _XLSX_SUFFIXES or data.startswith(_ZIP_MAGIC):
        return _workbook_grid(path, data, sheet)
    text, encoding = _decode(path, data)
    return _csv_grid(path, text, encoding, delimiter)


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-8 with BOM, UTF-8, then cp1252 (Excel). UTF-16/32 (Excel's
    "Unicode text") is refused by name: cp1252 would decode it into nonsense."""
    head = data[:4]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            len(head) == 4 and (head[1] == head[3] == 0 or head[0] == head[2] == 0)):
        raise ExportReadError(
            str(path), "looks UTF-16 or UTF-32 encoded (a BOM or NUL bytes between letters); "
            "save the export as CSV UTF-8", offset=0)
    if data.startswith(_UTF8_BOM):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        first_bad = utf8_error.start
    utf8_seen = _UTF8_MULTIBYTE.search(data)
    if utf8_seen:
        # UTF-8 rows and rows in another encoding (cp1252 saved by Excel, pasted together):
        # decoding all as cp1252 would turn "Café" into "CafÃ©" in the UTF-8 rows
        good_line = data[:utf8_seen.start()].count(b"\n") + 1
        bad_line = data[:first_bad].count(b"\n") + 1
        sample = _line_text(data, utf8_seen.start())
        raise ExportReadError(
            str(path), f"mixes two text encodings: line {good_line} is UTF-8 ({sample!r}) but "
            f"line {bad_line} is not (byte 0x{data[first_bad]:02X}, cp1252 from Excel?); "
            "re-save the whole file as CSV UTF-8", offset=first_bad)
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        raise ExportReadError(
            str(path), "cannot decode bytes as UTF-8 or cp1252", offset=first_bad
        ) from None


def _line_text(data: bytes, offset: int, width: int = 30) -> str:
    """A few characters of UTF-8 text around `offset` (for messages)."""
    start = max(data.rfind(b"\n", 0, offset) + 1, offset - width // 2)
    return data[start:start + width].decode("utf-8", errors="replace").strip()


def _check_delimiter(path: Path, text: str) -> None:
    """A semicolon-, tab- or pipe-delimited file read with commas becomes one column per row:
    refuse it by name (the mapping's `delimiter` reads it)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    for sep, name in _OTHER_DELIMITERS.items():
        n = header.count(sep)
        if n and n >= header.count(","):
            raise ExportReadError(
                str(path), f"looks {name}-delimited: the header row holds {n} {sep!r} and "
                f"{header.count(',')} ','; save it as comma-separated CSV, or set "
                f"`delimiter: {sep!r}` in mapping.yaml", row=1)


def _csv_grid(path: Path, text: str, encoding: str, delimiter: str | None = None) -> _Grid:
    """Parse CSV text into records; row numbers count records, not physical lines."""
    if delimiter is None:
        _check_delimiter(path, text)
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, delimiter=delimiter or ",")
    records: list[list[str]] = []
    starts: list[int] = []  # physical line index where each record starts
    while True:
        start = reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ExportReadError(
                str(path), f"malformed CSV ({exc})", row=len(records) + 1
            ) from None
        records.append(record)
        starts.append(start)
    grid = _Grid(records, list(range(1, len(records) + 1)), encoding, is_workbook=False,
                 ends_with_newline=text.endswith(("\n", "\r")))
    if records and _ends_inside_quotes(lines[starts[-1] :], delimiter or ","):
        swallowed = len(lines) - starts[-1]
        grid.problems.append(
            RowProblem(
                row=grid.row_numbers[-1],
                column=None,
                reason=(
                    "a quoted cell is never closed: the rest of the file "
                    f"({swallowed} physical lines) would be swallowed into one cell (a file "
                    "cut off in the middle of a quoted answer?)"
                ),
            )
        )
        grid.records[-1] = []  # reported, not read as data
    return grid


def _ends_inside_quotes(lines: list[str], delimiter: str = ",") -> bool:
    try:
        list(csv.reader(lines, strict=True, delimiter=delimiter))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _workbook_grid(path: Path, data: bytes, sheet: str | None = None) -> _Grid:
    """One worksheet of an XLSX workbook, every cell as text: `sheet`, else the first, which
    must be the only one holding answers (answers elsewhere are never left behind silently)."""
    import openpyxl  # local import: only needed for workbooks

    records: list[list[str]] = []
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not workbook.worksheets:
                raise ExportReadError(str(path), "workbook has no worksheets")
            # read-only mode stops at a sheet's stated dimension (`<dimension ref=...>`), which
            # a writer may leave stale: rows past it would be dropped without a word. Reset,
            # every row in the sheet's XML is read (by _choose_sheet's counts too).
            for ws in workbook.worksheets:
                ws.reset_dimensions()
            chosen = _choose_sheet(path, workbook, sheet)
            for values in chosen.iter_rows(values_only=True):
                records.append([_cell_text(value) for value in values])
        finally:
            workbook.close()
    except ExportReadError:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, TypeError) as exc:
        raise ExportReadError(
            str(path), f"not a readable XLSX workbook (truncated or corrupt zip: {exc})"
        ) from None
    except Exception as exc:  # openpyxl/lxml raise many parser-specific errors
        raise ExportReadError(
            str(path), f"not a readable XLSX workbook ({type(exc).__name__}: {exc})"
        ) from None
    if not any(any(cells) for cells in records):
        raise ExportReadError(str(path), f"file is empty (worksheet {chosen.title!r} has no "
                              "cells)")
    return _Grid(records, list(range(1, len(records) + 1)), "xlsx", is_workbook=True,
                 sheet=chosen.title)


def _filled_rows(worksheet) -> int:
    return sum(1 for values in worksheet.iter_rows(values_only=True)
               if any(v not in (None, "") for v in values))


def _choose_sheet(path: Path, workbook, sheet: str | None):
    names = [ws.title for ws in workbook.worksheets]
    if sheet is not None:
        for ws in workbook.worksheets:
            if ws.title == sheet or ws.title.strip().casefold() == sheet.strip().casefold():
                return ws
        close = difflib.get_close_matches(sheet, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ExportReadError(str(path), f"no worksheet {sheet!r}{hint}; the workbook has "
                              f"{', '.join(repr(n) for n in names)}")
    if len(names) == 1:
        return workbook.worksheets[0]
    filled = {ws.title: _filled_rows(ws) for ws in workbook.worksheets}
    with_data = [n for n in names if filled[n] >= 2]          # a header and an answer
    first = names[0]
    if with_data == [first] or (not with_data and filled[first]):
        return workbook.worksheets[0]
    if with_data and first not in with_data and len(with_data) == 1:
        raise ExportReadError(
            str(path), f"the first worksheet {first!r} holds no answers ({filled[first]} "
            f"filled rows); they are on worksheet {with_data[0]!r} ({filled[with_data[0]]} "
            f"filled rows): set `sheet: {with_data[0]}` in mapping.yaml, or move that "
            "worksheet first")
    listed = ", ".join(f"{n!r} ({filled[n]} rows)" for n in with_data or names)
    raise ExportReadError(
        str(path), f"answers on several worksheets: {listed}; set `sheet:` in mapping.yaml to "
        "the one to read")


def _cell_text(value: object) -> str:
    """Spreadsheet cell value as the text a person would read."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------
# detection


def _detect(path: Path, grid: _Grid) -> str:
    nonblank = [cells for cells in grid.records if any(cells)]
    row1 = _stripped(nonblank[0]) if nonblank else []
    row2 = _stripped(nonblank[1]) if len(nonblank) > 1 else []
    row3 = nonblank[2] if len(nonblank) > 2 else []
    _check_qualtrics_like(path, row1, row2, row3)
    if grid.is_workbook:
        if MICROSOFT_FORMS_HEADERS <= {c.strip().casefold() for c in row1}:
            return "microsoft-forms"
        if _is_surveymonkey(row1, row2):
            return "surveymonkey"
        if _is_import_id_row(row3):
            return "qualtrics"
        return "xlsx"
    if _is_import_id_row(row3):
        return "qualtrics"
    if row1[:2] == ["V1", "V2"] and ("ResponseID" in row1 or "ResponseID" in row2):
        return "qualtrics-legacy"
    if row1 and row1[0] == "Timestamp":
        return "google-forms"
    if _is_surveymonkey(row1, row2):
        return "surveymonkey"
    return "csv"


def _looks_like_qualtrics_ids(row: list[str]) -> bool:
    cells = set(row)
    return bool(cells & QUALTRICS_ID_COLUMNS) and bool(cells & QUALTRICS_TIME_COLUMNS)


def _qualtrics_label_row(ids: list[str], row: list[str]) -> bool:
    """True when `row`, under Qualtrics column ids, holds their labels ("Response ID", "Start
    Date"), not a response (R_... ids, dates)."""
    for i, name in enumerate(ids):
        if i >= len(row):
            continue
        value = row[i].strip()
        if name in QUALTRICS_ID_COLUMNS:
            return bool(value) and not re.fullmatch(r"R_\w+", value)
    return False


def _check_qualtrics_like(path: Path, row1: list[str], row2: list[str], row3: list[str]) -> None:
    """A Qualtrics export that lost one of its three header rows: refused by name, since the
    remaining header row would otherwise be staged as an answer."""
    if _is_import_id_row(row3):
        return
    if _is_import_id_row(row2):
        missing = ("the question-text row (between the column ids and the ImportId row)"
                   if _looks_like_qualtrics_ids(row1) else "the column-id row (the first)")
        raise ExportReadError(
            str(path), f"a Qualtrics export with 2 of its 3 header rows: {missing} is missing; "
            "re-export the responses or restore the row", row=2)
    if _looks_like_qualtrics_ids(row1) and _qualtrics_label_row(row1, row2):
        raise ExportReadError(
            str(path), "a Qualtrics export with 2 of its 3 header rows: the ImportId row (row "
            '3, cells like {"ImportId":"QID1"}) is missing, so row 3 would be read as an '
            "answer; re-export the responses or restore the row", row=3)


def _stripped(cells: list[str]) -> list[str]:
    return [cell.strip() for cell in cells]


def _is_surveymonkey(row1: list[str], row2: list[str]) -> bool:
    return "Respondent ID" in row1 and bool({"Response", "Open-Ended Response"} & set(row2))


def _is_import_id_row(cells: list[str]) -> bool:
    """True when every non-empty cell is JSON like {"ImportId": "QID1_TEXT"}."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    return bool(filled) and all(_is_import_id(cell) for cell in filled)


def _is_import_id(cell: str) -> bool:
    if not cell.startswith("{"):
        return False
    try:
        value = json.loads(cell)
    except ValueError:
        return False
    return isinstance(value, dict) and "ImportId" in value


# --------------------------------------------------------------------------------------
# records -> table


def _build_table(path: Path, kind: str, grid: _Grid) -> ExportTable:
    headers, data = _split_header(path, kind, grid)
    width = max(len(cells) for cells in headers)
    headers = [_fit(cells, width) for cells in headers]
    width = _width_without_empty_tail(headers, [cells for _, cells in data])
    headers = [cells[:width] for cells in headers]
    columns, labels, duplicates = _column_names(kind, headers)
    table = ExportTable(
        path=path,
        kind=kind,
        detected=False,
        encoding=grid.encoding,
        sha256="",
        columns=columns,
        labels=labels,
        rows=[],
        row_numbers=[],
        problems=list(grid.problems),
        duplicate_columns=duplicates,
    )
    _add_rows(table, grid, data, width)
    table.problems.sort(key=lambda problem: problem.row)
    return table


def _split_header(path: Path, kind: str, grid: _Grid
                  ) -> tuple[list[list[str]], list[tuple[int, list[str]]]]:
    """The layout's header rows and the numbered data rows after them (blank rows dropped);
    ExportReadError when the header is short or no data row is left."""
    numbered = [
        (number, cells)
        for number, cells in zip(grid.row_numbers, grid.records, strict=True)
        if any(cells)
    ]
    header_count = HEADER_ROWS.get(kind, 1)
    headers = [cells for _, cells in numbered[:header_count]]
    data = numbered[header_count:]
    if kind == "qualtrics":
        _check_qualtrics_headers(path, headers, numbered[:header_count])
    if len(headers) < header_count:
        raise ExportReadError(
            str(path), f"{kind} export needs {header_count} header rows, found {len(headers)}"
        )
    if not data:
        if grid.problems:
            raise ExportReadError(
                str(path),
                f"no data rows could be read ({grid.problems[0].reason})",
                row=grid.problems[0].row,
            )
        raise ExportReadError(str(path), "header only, no data rows")
    return headers, data


def _column_names(kind: str, headers: list[list[str]]
                  ) -> tuple[list[str], list[str], dict[str, list[int]]]:
    """(column ids, human labels, repeated header names) of the layout's header rows."""
    if kind == "surveymonkey":
        labels = _surveymonkey_labels(headers[0], headers[1])
        columns = _unique_names(labels)
        duplicates = _repeated(labels)
    else:
        columns = _unique_names(headers[0])
        labels = list(headers[1]) if kind in ("qualtrics", "qualtrics-legacy") else list(columns)
        duplicates = _repeated(headers[0])
        if kind in ("qualtrics", "qualtrics-legacy"):
            duplicates.update({k: v for k, v in _repeated(labels).items()
                               if k not in duplicates})
    return columns, labels, duplicates


def _add_rows(table: ExportTable, grid: _Grid, data: list[tuple[int, list[str]]],
              width: int) -> None:
    """Each data row into the table, padded to `width`; a row cut off at the end of the file
    or with cells beyond the header is a problem, not a row."""
    last_number = grid.row_numbers[-1] if grid.row_numbers else None
    for number, cells in data:
        if (number == last_number and not grid.is_workbook and not grid.ends_with_newline
                and len(cells) < width):
            table.problems.append(RowProblem(
                row=number, column=None,
                reason=(f"the file ends in the middle of this row ({len(cells)} of {width} "
                        "cells and no line end): it looks cut off while being copied or "
                        "exported; the row is not read")))
            continue
        extra = [cell for cell in cells[width:] if cell != ""]
        if extra:
            table.problems.append(
                RowProblem(
                    row=number,
                    column=None,
                    reason=(
                        f"ragged record: {len(cells)} cells but the header has {width} "
                        f"columns (extra cells: {extra[:3]!r})"
                    ),
                )
            )
            continue
        table.rows.append(_fit(cells, width))
        table.row_numbers.append(number)


def _check_qualtrics_headers(
    path: Path, headers: list[list[str]], numbered: list[tuple[int, list[str]]]
) -> None:
    if len(headers) == 3 and _is_import_id_row(headers[2]):
        return
    _check_qualtrics_like(path, *(_stripped(h) for h in (headers + [[], [], []])[:3]))
    row = numbered[2][0] if len(numbered) > 2 else None
    raise ExportReadError(
        str(path),
        "Qualtrics header rows 2-3 (question text, ImportId JSON) are missing or malformed; "
        'the ImportId row should hold cells like {"ImportId":"QID1"}',
        row=row,
    )


def _fit(cells: list[str], width: int) -> list[str]:
    """Pad with '' or cut to `width` cells."""
    return (list(cells) + [""] * width)[:width]


def _width_without_empty_tail(headers: list[list[str]], data: list[list[str]]) -> int:
    """Drop trailing columns that have no header text and no data (trailing commas)."""
    width = len(headers[0])
    while width > 1:
        index = width - 1
        if any(cells[index] for cells in headers):
            break
        if any(len(cells) > index and cells[index] for cells in data):
            break
        width -= 1
    return width


def _surveymonkey_labels(questions: list[str], sublabels: list[str]) -> list[str]:
    """'Question' or 'Question - Sub-label', filling blank question cells forward."""
    labels = []
    question = ""
    for raw_question, sublabel in zip(questions, sublabels, strict=True):
        if raw_question.strip():
            question = raw_question
        if sublabel.strip() in SURVEYMONKEY_PLAIN_SUBLABELS:
            labels.append(question)
        elif question:
            labels.append(f"{question} - {sublabel}")
        else:
            labels.append(sublabel)
    return labels


def _repeated(names: list[str]) -> dict[str, list[int]]:
    """Non-blank names that occur more than once -> their 1-based positions."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names, start=1):
        if name.strip():
            positions.setdefault(name.strip(), []).append(index)
    return {name: where for name, where in positions.items() if len(where) > 1}


def _unique_names(names: list[str]) -> list[str]:
    """Column names made unique: blanks become 'Unnamed: i', repeats get ' (2)', ' (3)'."""
    result: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        base = name if name.strip() else f"Unnamed: {index}"
        candidate, copy = base, 1
        while candidate in seen:
            copy += 1
            candidate = f"{base} ({copy})"
        seen.add(candidate)
        result.append(candidate)
    return result
