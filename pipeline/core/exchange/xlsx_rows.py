"""Large XLSX tables fast: rows rendered as worksheet XML in bulk, streamed by xlsxwriter.

xlsxwriter spends about 30 us of Python per cell (checks, a cell tuple, then the XML of each
cell when the row is flushed); a coder sheet of 70,000 answers x 116 columns is 8 million
cells. Here the cells of a table are rendered column by column (one template per column, the
row number joined in) and handed to a constant_memory worksheet as XML text, which it writes
to its row file as it would its own rows. Everything else (header rows, formats, column
widths, frozen panes, filters, validations, comments, the other tabs) goes through
xlsxwriter's API as before.

The XML is what xlsxwriter writes in constant_memory mode for the same calls (`write_string`,
`write_number`, `write_blank` with a format): inline strings with its escaping (control
characters as _xHHHH_, xml:space="preserve" for leading or trailing white space, strings cut
at 32,767 UTF-16 units), numbers as `%.16G`. tests/test_coded_answers.py and
tests/test_sheet_writer.py compare workbooks written this way with the old per-cell writer,
cell by cell (values, types, styles), through openpyxl.

`RowsWorksheet.write_rendered_rows` relies on xlsxwriter's constant_memory internals (the row
file, `previous_row`, `_check_dimensions`, `_write_single_row`; xlsxwriter 3.x): the tests
above fail if a new version changes them.

`QuickZipWorkbook` zips the package at deflate level 1 instead of zlib's default 6: on a
66,000-answer coder sheet (151 MB of XML) 1.4 s instead of 5.0 s, the file 22.5 MB instead of
17.0 (docs/benchmarks.md). It swaps the `ZipFile` xlsxwriter's workbook module uses for the
length of `_store_workbook` (tests/test_sheet_writer.py checks the swap is undone).
"""

from __future__ import annotations

import datetime
import functools
import itertools
import math
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence

import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from pipeline.core.exchange import zip_parts
from pipeline.core.exchange.zip_parts import Part

# xlsxwriter.xmlwriter / utility, as used for an inline string in constant_memory mode
_ESCAPED_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_NEEDS_WORK = re.compile('[\x00-\x08\x0b-\x1f"&<>\n\ufffe\uffff]|_x[0-9a-fA-F]{4}_')
_LEADING_WS = re.compile(r"^\s")
_TRAILING_WS = re.compile(r"\s$")
STRING_MAX = 32767   # UTF-16 units in a cell


def _truncate(text: str) -> str:
    if len(text) <= STRING_MAX // 2:
        return text
    length = 0
    for index, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > STRING_MAX:
            return text[:index]
    return text


def _escaped(text: str) -> tuple[str, str]:
    """(the <t> element's xml:space attribute or '', its content) as xlsxwriter writes
    `text`. Not its rich-string branch: in constant_memory mode xlsxwriter writes a string
    that starts with <r> and ends with </r> as raw XML; here it is text like any other (as
    the shared string xlsxwriter writes for it outside constant_memory mode)."""
    if _NEEDS_WORK.search(text):
        text = _ESCAPED_ESCAPE.sub(r"_x005F\1", text)
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
        text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    space = ' xml:space="preserve"' if (_LEADING_WS.search(text) or _TRAILING_WS.search(text)) \
        else ""
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return space, text


def string_cell(text: str, xf: int) -> str:
    """A string cell after its `<c r="A1"`: what write_string(r, c, text, fmt) writes."""
    space, body = _escaped(_truncate(text))
    return f' s="{xf}" t="inlineStr"><is><t{space}>{body}</t></is></c>'


def number_cell(number: float, xf: int) -> str:
    """What write_number(r, c, number, fmt) writes (NaN and infinities are refused, as there)."""
    if math.isnan(number) or math.isinf(number):
        raise TypeError("NAN/INF not supported in write_number() without 'nan_inf_to_errors'")
    return f' s="{xf}"><v>{number:.16G}</v></c>'


def blank_cell(xf: int) -> str:
    """What write_blank(r, c, None, fmt) writes."""
    return f' s="{xf}"/>'


def render_rows(first_row: int, columns: Sequence[Sequence[str | None]],
                tails: Iterable[Callable[[str], str]] | None = None, rows_per_chunk: int = 2000
                ) -> Iterator[str]:
    """Rows `first_row`, `first_row` + 1, ... as XML chunks. `columns[j][i]` is the cell of
    row i in column j after its `<c r="..."` (`string_cell`, `number_cell`, `blank_cell`), or
    None for no cell. `tails` (one per row, optional): the row's last cells, rendered whole
    by the caller (`BlankRun`)."""
    letters = [xl_col_to_name(j) for j in range(len(columns))]
    tails = iter(tails) if tails is not None else None
    out = []
    n = len(columns[0]) if columns else 0
    for i in range(n):
        r = str(first_row + i + 1)
        cells = "".join(f'<c r="{letters[j]}{r}"{col[i]}' for j, col in enumerate(columns)
                        if col[i] is not None)
        out.append(f'<row r="{r}">{cells}{next(tails)(r) if tails else ""}</row>')
        if len(out) == rows_per_chunk:
            yield "".join(out)
            out = []
    if out:
        yield "".join(out)


class BlankRun:
    """Blank formatted cells in columns first..last of a row, as one string per row: the
    row number is joined into a template, no per-cell work. `xfs`: the format index of each
    column (a fill per suggestion), or one index for all."""

    def __init__(self, first_col: int, last_col: int):
        self.letters = [xl_col_to_name(j) for j in range(first_col, last_col + 1)]
        self._templates: dict[int, list[str]] = {}

    def uniform(self, xf: int) -> Callable[[str], str]:
        pieces = self._templates.get(xf)
        if pieces is None:
            pieces = [f'<c r="{self.letters[0]}']
            pieces += [f'" s="{xf}"/><c r="{letter}' for letter in self.letters[1:]]
            pieces.append(f'" s="{xf}"/>')
            self._templates[xf] = pieces
        return lambda r: r.join(pieces)

    def varied(self, xfs: Sequence[int]) -> Callable[[str], str]:
        return lambda r: "".join(f'<c r="{letter}{r}" s="{xf}"/>'
                                 for letter, xf in zip(self.letters, xfs, strict=True))


class RowsWorksheet(Worksheet):
    """A worksheet (of a constant_memory workbook) that also takes rows as rendered XML, and,
    in a `QuickZipWorkbook`, as kept deflated parts (`zip_parts.Part`)."""

    kept_parts: dict[int, Part] | None = None   # a dict once its workbook can zip them

    def write_rendered_rows(self, first_row: int, last_row: int, last_col: int,
                            chunks: Iterable[str | Part]) -> None:
        """Write rows first_row..last_row (XML from `render_rows`, or a `Part`: such XML
        deflated by `zip_parts` at DEFLATE_LEVEL) after the rows written so far; nothing can
        be written to these rows afterwards. Comments on them must be added before (in
        constant_memory mode xlsxwriter takes nothing for a row it has flushed). A part stands
        in the row file as a marker, replaced by its bytes when the package is zipped."""
        if not self.constant_memory:
            raise ValueError("rendered rows need a constant_memory workbook")
        if first_row <= self.previous_row and self.table:
            raise ValueError(f"row {first_row} is not after the rows written so far")
        if last_row < first_row:
            return
        if last_row >= self.xls_rowmax:   # Excel and LibreOffice would not open all of it
            raise ValueError(f"worksheet {self.name!r}: {last_row + 1:,} rows, more than the "
                             f"{self.xls_rowmax:,} a worksheet holds")
        self._write_single_row(first_row)          # flush the row in hand (the header)
        self._check_dimensions(first_row, 0)
        self._check_dimensions(last_row, last_col)
        for chunk in chunks:
            if isinstance(chunk, Part):
                if self.kept_parts is None:
                    raise ValueError("kept parts need a QuickZipWorkbook")
                n = next(_PART_IDS)
                self.kept_parts[n] = chunk
                chunk = f"{_MARK}{n}\x00"
            self.fh.write(chunk)
        self.previous_row = last_row + 1           # the rows are written: none in hand


DEFLATE_LEVEL = 1

# The package's "created" property when the caller sets none. xlsxwriter writes the time of
# writing there, so two workbooks of the same rows written a second apart differed; fixed, a
# workbook's bytes depend only on what is in it (kept results, checksums in the publishing
# manifest, tests that compare files); xlsxwriter dates the zip's members 1980 likewise.
CREATED = datetime.datetime(1980, 1, 1, tzinfo=datetime.UTC)


# A kept part's place in a worksheet's XML: NUL never occurs in it otherwise (xlsxwriter and
# `string_cell` write control characters as _xHHHH_), so a marker cannot be mistaken for text.
_MARK = "\x00kept-part:"
_PART_IDS = itertools.count()


class QuickZipWorkbook(xlsxwriter.Workbook):
    """An xlsxwriter workbook whose package is zipped at DEFLATE_LEVEL (see the module doc),
    its worksheets' kept parts copied into the zip as they are (`_PartsZipFile`), created
    at CREATED unless `set_properties` says otherwise."""

    def add_worksheet(self, name: str | None = None, worksheet_class=None) -> Worksheet:
        ws = super().add_worksheet(name, worksheet_class=worksheet_class)
        if isinstance(ws, RowsWorksheet):
            ws.kept_parts = {}
        return ws

    def _store_workbook(self) -> None:
        parts = {n: p for ws in self.worksheets() if isinstance(ws, RowsWorksheet)
                 for n, p in (ws.kept_parts or {}).items()}
        if parts and self.in_memory:
            raise ValueError("kept parts need a workbook written through files, not in_memory")
        self.doc_properties = {"created": CREATED, **self.doc_properties}
        module = xlsxwriter.workbook
        zip_file = module.ZipFile
        module.ZipFile = functools.partial(_PartsZipFile, parts=parts,
                                           compresslevel=DEFLATE_LEVEL)
        try:
            super()._store_workbook()
        finally:
            module.ZipFile = zip_file


class _PartsZipFile(zipfile.ZipFile):
    """The package's zip: a worksheet file with kept-part markers is written as one member
    deflated in parts (its text between the markers deflated here, the parts copied); every
    other file as `ZipFile.write` writes it."""

    def __init__(self, *args, parts: dict[int, Part], **kwargs):
        super().__init__(*args, **kwargs)
        self._parts = parts

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        if self._parts and str(arcname).startswith("xl/worksheets/"):
            pieces = _split_at_marks(filename, self._parts)
            if pieces is not None:
                zinfo = zipfile.ZipInfo.from_file(filename, arcname,
                                                  strict_timestamps=self._strict_timestamps)
                zip_parts.write_member(self, zinfo, pieces)
                return
        super().write(filename, arcname, compress_type, compresslevel)


def _split_at_marks(path, parts: dict[int, Part]) -> list[Part] | None:
    """The file's bytes as parts: the text between markers deflated (into temporary files past
    a few MB), each marker's kept part; None when the file has no marker."""
    pieces: list[Part] = []
    mark = _MARK.encode()
    text = _SpooledPart()
    pending = b""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            pending += block
            while True:
                at = pending.find(b"\x00")
                if at >= 0 and not (pending.startswith(mark, at)
                                    or mark.startswith(pending[at:])):
                    raise ValueError(f"{path}: a NUL byte that is not a kept-part marker")
                end = pending.find(b"\x00", at + 1) if at >= 0 else -1
                if end < 0:   # no marker, or its end in the next block
                    keep = at if at >= 0 else len(pending)
                    text.write(pending[:keep])
                    pending = pending[keep:]
                    break
                text.write(pending[:at])
                if text.size:
                    pieces.append(text.part())
                    text = _SpooledPart()
                pieces.append(parts.pop(int(pending[at + len(mark):end])))
                pending = pending[end + 1:]
    if pending:
        raise ValueError(f"{path}: an unfinished kept-part marker")
    if not pieces:
        text.close()
        return None
    pieces.append(text.part(last=True))
    return pieces


class _SpooledPart:
    """Text deflated (at DEFLATE_LEVEL) into a spooled temporary file, then a `Part` of it."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        self._deflater = zip_parts.Deflater(level=DEFLATE_LEVEL)

    @property
    def size(self) -> int:
        return self._deflater.size

    def write(self, data: bytes) -> None:
        if data:
            self.file.write(self._deflater.feed(data))

    def part(self, last: bool = False) -> Part:
        self.file.write(self._deflater.end(last))
        self.file.seek(0)
        return self._deflater.part(file=self.file)

    def close(self) -> None:
        self.file.close()
