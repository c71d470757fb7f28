"""Readers for survey-tool exports (pure Python, no Dagster).

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
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
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


@dataclass
class _Grid:
    """Raw records of a file before any header interpretation."""

    records: list[list[str]]  # every record, cells as text
    row_numbers: list[int]  # spreadsheet row of each record
    encoding: str
    is_workbook: bool
    problems: list[RowProblem] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# public API


def detect_kind(path: str | Path) -> str:
    """The reader kind for a file, from its type and header rows."""
    path = Path(path)
    grid = _load_grid(path, _read_bytes(path))
    return _detect(grid)


def read_export(path: str | Path, kind: str | None = None) -> ExportTable:
    """Read one export file. `kind=None` detects the kind from the headers."""
    path = Path(path)
    if kind is not None and kind not in READER_KINDS:
        raise ExportReadError(
            str(path), f"unknown export kind {kind!r} (expected one of: {', '.join(READER_KINDS)})"
        )
    data = _read_bytes(path)
    grid = _load_grid(path, data)
    detected = kind is None
    if kind is None:
        kind = _detect(grid)
    table = _build_table(path, kind, grid)
    table.detected = detected
    table.sha256 = hashlib.sha256(data).hexdigest()
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


def _load_grid(path: Path, data: bytes) -> _Grid:
    if data.startswith(_OLE2_MAGIC):
        raise ExportReadError(
            str(path), "legacy binary .xls workbook is not supported; save it as .xlsx or CSV"
        )
    if path.suffix.lower() in _XLSX_SUFFIXES or data.startswith(_ZIP_MAGIC):
        return _workbook_grid(path, data)
    text, encoding = _decode(path, data)
    return _csv_grid(path, text, encoding)


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
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        raise ExportReadError(
            str(path), "cannot decode bytes as UTF-8 or cp1252", offset=first_bad
        ) from None


def _csv_grid(path: Path, text: str, encoding: str) -> _Grid:
    """Parse CSV text into records; row numbers count records, not physical lines."""
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines)
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
    grid = _Grid(records, list(range(1, len(records) + 1)), encoding, is_workbook=False)
    if records and _ends_inside_quotes(lines[starts[-1] :]):
        swallowed = len(lines) - starts[-1]
        grid.problems.append(
            RowProblem(
                row=grid.row_numbers[-1],
                column=None,
                reason=(
                    "a quoted cell is never closed: the rest of the file "
                    f"({swallowed} physical lines) would be swallowed into one cell"
                ),
            )
        )
        grid.records[-1] = []  # reported, not read as data
    return grid


def _ends_inside_quotes(lines: list[str]) -> bool:
    try:
        list(csv.reader(lines, strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _workbook_grid(path: Path, data: bytes) -> _Grid:
    """First worksheet of an XLSX workbook, every cell as text."""
    import openpyxl  # local import: only needed for workbooks

    records: list[list[str]] = []
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not workbook.worksheets:
                raise ExportReadError(str(path), "workbook has no worksheets")
            sheet = workbook.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
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
        raise ExportReadError(str(path), "file is empty (first worksheet has no cells)")
    return _Grid(records, list(range(1, len(records) + 1)), "xlsx", is_workbook=True)


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


def _detect(grid: _Grid) -> str:
    nonblank = [cells for cells in grid.records if any(cells)]
    row1 = _stripped(nonblank[0]) if nonblank else []
    row2 = _stripped(nonblank[1]) if len(nonblank) > 1 else []
    row3 = nonblank[2] if len(nonblank) > 2 else []
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

    width = max(len(cells) for cells in headers)
    headers = [_fit(cells, width) for cells in headers]
    width = _width_without_empty_tail(headers, [cells for _, cells in data])
    headers = [cells[:width] for cells in headers]

    if kind == "surveymonkey":
        labels = _surveymonkey_labels(headers[0], headers[1])
        columns = _unique_names(labels)
    else:
        columns = _unique_names(headers[0])
        labels = list(headers[1]) if kind in ("qualtrics", "qualtrics-legacy") else list(columns)

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
    )
    for number, cells in data:
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
    table.problems.sort(key=lambda problem: problem.row)
    return table


def _check_qualtrics_headers(
    path: Path, headers: list[list[str]], numbered: list[tuple[int, list[str]]]
) -> None:
    if len(headers) == 3 and _is_import_id_row(headers[2]):
        return
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
