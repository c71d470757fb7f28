"""Tables a person opens in Excel or LibreOffice, written so that no cell runs as a formula.

XLSX (xlsxwriter, constant_memory; the rows of a table rendered in bulk by `xlsx_rows`): text
as strings, strings_to_formulas/numbers/urls off, and Excel's
quote-prefix ("text") flag on cells that start like a formula (= + - @ tab CR); whole numbers as
numbers; a bold header row, frozen, with an autofilter over the table. CSV: the same text with
a leading ' on such cells (`queue.neutralise`, OWASP's advice). Both go through
`pipeline.core.files.atomic_path`.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import logging
import math
import numbers
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.exchange import zip_parts
from pipeline.core.exchange.xlsx_rows import (
    DEFLATE_LEVEL,
    QuickZipWorkbook,
    RowsWorksheet,
    number_cell,
    render_rows,
    string_cell,
)
from pipeline.core.exchange.zip_parts import Part
from pipeline.core.files import atomic_path
from pipeline.core.parallel import map_forked
from pipeline.core.reconciliation.queue import FORMULA_START, neutralise
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import code_digest, fingerprint, frame_digest

ROWS_PER_BLOCK = 5000   # rows of a table rendered at a time
AHEAD_MIN_ROWS = 20_000   # RunsKept.render_ahead forks for this many rows to render or more
EXCEL_ROWS = 1_048_576   # rows in a worksheet (Excel and LibreOffice open no more)

log = logging.getLogger(__name__)


def cell_text(value: object) -> str:
    """A cell as text: '' for missing, yes/no for booleans, whole floats without '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_csv(frame: pd.DataFrame, path: str | Path, kept: RunsKept | None = None) -> Path:
    """`kept`: each run of rows (a school year) kept rendered and reused while its rows are the
    same (`RunsKept`). Only with `kept`, `frame` may be a source of runs (`FrameRuns`)
    instead of a DataFrame."""
    csv_text = lambda v: neutralise(cell_text(v))  # noqa: E731

    def rows(part: pd.DataFrame):
        # column by column (iterating a column gives the values itertuples gave)
        return zip(*(rendered(part.iloc[:, j], csv_text) for j in range(part.shape[1])),
                   strict=True)

    def text(part: pd.DataFrame, _start: int) -> Iterator[str]:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows(part))
        yield out.getvalue()

    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow([neutralise(c) for c in frame.columns])
        if kept is None:
            w.writerows(rows(frame))
        else:
            kept.render_ahead(frame, "csv", "", text)
            fh.writelines(kept.chunks(frame, "csv", "", text))
    return Path(path)


class FrameRuns:
    """A frame's rows as runs of equal values of `run_columns`, for `RunsKept`: the table's
    `columns`, its length, its `runs` ((name, start, stop), `runs()`), a digest of rows
    start..stop-1 (`frame_digest`: index, columns, dtypes, values in order) and those rows.
    Another source of runs (`coded_answers.ViewRows`: a warehouse view's sessions, digested
    by DuckDB, read only when rendered) offers the same."""

    def __init__(self, frame: pd.DataFrame, run_columns: tuple[str, ...]):
        self.frame = frame
        self.columns = list(frame.columns)
        self.runs = runs(frame, run_columns)
        self._digests: dict[tuple[int, int], str] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def digest(self, start: int, stop: int) -> str:
        if (start, stop) not in self._digests:
            self._digests[(start, stop)] = frame_digest(self.frame.iloc[start:stop])
        return self._digests[(start, stop)]

    def rows(self, start: int, stop: int) -> pd.DataFrame:
        return self.frame.iloc[start:stop]


class RunsKept:
    """Rendered rows of a table kept per run of equal values of `columns` (a school year's
    session: the rows are sorted by year and session, so each session is one run) in a result
    cache, keyed by the run's rows (the table's `digest`: for a frame, `FrameRuns`), where the
    run starts, what it is rendered as and the code rendering it; a kept run's rows are not
    even asked for. A refresh that adds or changes one session renders that session's rows
    again and copies the others' (an XLSX row carries its row number: a run after one whose
    row count changed is rendered again too). With `deflated` (a worksheet's rows), a run is kept as the workbook's zip will hold
    it: deflated as one part of the worksheet member (`zip_parts`), its CRC-32 and sizes in a
    trailer, and the workbook copies it into the zip as is (`xlsx_rows.QuickZipWorkbook`)."""

    def __init__(self, cache: ResultCache, columns: tuple[str, ...] = ("school_year",)):
        self.cache, self.columns = cache, columns
        self.reused: list[str] = []
        self.rendered: list[str] = []
        # the xlsx and csv of a frame share its runs and their digests: id -> (frame, runs)
        self._frames: dict[int, tuple[pd.DataFrame, FrameRuns]] = {}
        self._ahead: set[str] = set()   # slots render_ahead stored, not yet copied

    def table(self, frame) -> FrameRuns:
        """`frame`'s runs (a frame: its `FrameRuns`, made once; a source of runs as it is)."""
        if not isinstance(frame, pd.DataFrame):
            return frame
        seen = self._frames.get(id(frame))
        if seen is None or seen[0] is not frame:   # held with the frame: its id is its own
            seen = self._frames[id(frame)] = (frame, FrameRuns(frame, self.columns))
        return seen[1]

    def _runs(self, table, kind: str, settings: str, span: tuple[int, int] | None,
              label: str, deflated: bool) -> Iterator[tuple[str, str, int, int, int]]:
        """(key, slot, start, stop, lo) of each run of `table` within `span` (see `chunks`)."""
        lo, hi = span if span is not None else (0, len(table))
        for name, run_start, run_stop in table.runs:
            start, stop = max(run_start, lo), min(run_stop, hi)
            if start >= stop:
                continue
            key = fingerprint("rendered rows", kind, settings, _code(), start - lo,
                              table.digest(start, stop), "deflated" if deflated else "text")
            yield key, f"{kind}{label}-{name}", start, stop, lo

    def render_ahead(self, frame, kind: str, settings: str,
                     render: Callable[[pd.DataFrame, int], Iterable[str]],
                     span: tuple[int, int] | None = None, label: str = "",
                     deflated: bool = False, min_rows: int | None = None) -> int:
        """Render into the cache, on every core (core.parallel.map_forked), the runs that
        `chunks` with the same arguments would render (no entry under their key), when there
        are two or more of them with at least `min_rows` rows (default AHEAD_MIN_ROWS) in all;
        `chunks` then copies them as it copies kept runs, and counts them as rendered. The
        runs' rows are read here first (a source of runs reads a warehouse: the workers only
        render). Returns how many runs were rendered."""
        table = self.table(frame)
        todo = [run for run in self._runs(table, kind, settings, span, label, deflated)
                if not self.cache.has(run[0], slot=run[1])]
        if len(todo) < 2 or sum(stop - start for _k, _s, start, stop, _lo in todo) < (
                AHEAD_MIN_ROWS if min_rows is None else min_rows):
            return 0
        for _key, _slot, start, stop, _lo in todo:
            table.rows(start, stop)

        def store(run) -> bool:
            key, slot, start, stop, lo = run
            encoded = (t.encode("utf-8") for t in render(table.rows(start, stop), start - lo))
            return self.cache.store(key, _with_trailer(encoded) if deflated else encoded,
                                    slot=slot)

        stored = map_forked(store, todo)
        self._ahead.update(run[1] for run, ok in zip(todo, stored, strict=True) if ok)
        return sum(stored)

    def chunks(self, frame, kind: str, settings: str,
               render: Callable[[pd.DataFrame, int], Iterable[str]],
               span: tuple[int, int] | None = None, label: str = "", deflated: bool = False
               ) -> Iterator[str | Part]:
        """The rows of `frame` (a DataFrame, or a source of runs like `FrameRuns`) rendered
        by `render(part, start)` (a run's rows and where they start), run by run, a kept run's
        text instead when its key matches (with `deflated`, its deflated `Part`). `span`: only
        rows lo..hi-1, `start` counted from lo (a worksheet continuing the table); `label`
        tells its runs' cache slots from the other spans'."""
        table = self.table(frame)
        for key, slot, start, stop, lo in self._runs(table, kind, settings, span, label,
                                                     deflated):
            kept = self.cache.open(key, slot=slot)
            piece = _kept_part(kept) if deflated and kept is not None else None
            if deflated and kept is not None and piece is None:
                log.warning("kept rows %s: trailer does not match, rendered again", slot)
                kept = None
            if kept is None:   # rendered into the cache, then read back: memory stays flat
                self.rendered.append(slot)
                part = table.rows(start, stop)
                encoded = (t.encode("utf-8") for t in render(part, start - lo))
                if self.cache.store(key, _with_trailer(encoded) if deflated else encoded,
                                    slot=slot):
                    kept = self.cache.open(key, slot=slot)
                    piece = _kept_part(kept) if deflated and kept is not None else None
                if kept is None or (deflated and piece is None):
                    # not stored (or not readable back): rendered again, straight to the file
                    yield from render(part, start - lo)
                    continue
            elif slot in self._ahead:   # rendered by render_ahead
                self._ahead.discard(slot)
                self.rendered.append(slot)
            else:
                self.reused.append(slot)
            if deflated:
                yield piece
                continue
            with io.TextIOWrapper(kept, encoding="utf-8", newline="") as text:
                yield from iter(lambda: text.read(1 << 20), "")


_TRAILER = struct.Struct("<IQQ4s")   # CRC-32, size, deflated size, magic
_TRAILER_MAGIC = b"DFL1"


def _with_trailer(encoded: Iterable[bytes]) -> Iterator[bytes]:
    """The rows deflated as one part of a worksheet member, then their CRC-32 and sizes."""
    deflater = zip_parts.Deflater(level=DEFLATE_LEVEL)
    yield from deflater.stream(encoded)
    yield _TRAILER.pack(deflater.crc, deflater.size, deflater.compressed_size, _TRAILER_MAGIC)


def _kept_part(fh) -> Part | None:
    """The part of an entry written by `_with_trailer` (`fh` at its payload, digest checked),
    or None (and `fh` closed) if the trailer does not describe it."""
    start = fh.tell()
    end = fh.seek(0, io.SEEK_END) - _TRAILER.size
    if end < start:
        fh.close()
        return None
    fh.seek(end)
    crc, size, compressed, magic = _TRAILER.unpack(fh.read(_TRAILER.size))
    if magic != _TRAILER_MAGIC or end - start != compressed:
        fh.close()
        return None
    fh.seek(start)
    return Part(crc, size, compressed, file=fh)


def runs(frame, columns: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(name, start, stop) of each run of rows with equal values of `columns` (`frame`: a
    DataFrame, or a mapping of column -> values), in order. The name joins the values with "-"
    (a missing or empty value is "none"; a whole number written as a float, 3.0, is "3"), for a
    cache slot, and is unique: where the rows are not sorted by `columns`, the second run of
    the same values is "<name>_run2", and so on."""
    if not columns:
        raise ValueError("runs of rows need at least one column")
    parts = [rendered(frame[c], _slot_part) for c in columns]   # each distinct value once
    n = len(parts[0])
    if any(len(p) != n for p in parts):
        raise ValueError("runs of rows: the columns differ in length")
    starts = np.zeros(n, dtype=bool)   # a run starts where any column's value changes
    starts[:1] = True
    for p in parts:
        codes = pd.factorize(np.asarray(p, dtype=object))[0]
        starts[1:] |= codes[1:] != codes[:-1]
    bounds = [*np.flatnonzero(starts).tolist(), n]
    out, seen = [], Counter()
    for start, stop in itertools.pairwise(bounds):
        name = "-".join(p[start] for p in parts)   # run_name of the run's values
        seen[name] += 1
        out.append((name if seen[name] == 1 else f"{name}_run{seen[name]}", start, stop))
    return out


def run_name(values: Iterable[object]) -> str:
    """The name `runs` gives a run of these values (one per column)."""
    return "-".join(_slot_part(v) for v in values)


def _slot_part(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@functools.cache
def _code() -> str:
    import pipeline.core.exchange.spreadsheet as spreadsheet
    from pipeline.core.exchange import xlsx_rows
    from pipeline.core.reconciliation import queue

    return code_digest(spreadsheet, xlsx_rows, zip_parts, queue)


def rendered(values, render) -> list:
    """[render(v) for v in values], each distinct value rendered once (a column's values
    repeat: years, roles, questions, codes). Keyed by type and value, so True, 1 and 1.0
    stay apart."""
    cache: dict = {}
    out = []
    for v in values:
        key = (v.__class__, v)
        try:
            out.append(cache[key])
        except KeyError:
            out.append(cache.setdefault(key, render(v)))
        except TypeError:   # unhashable
            out.append(render(v))
    return out


def add_table_sheet(wb, name: str, frame: pd.DataFrame, widths: dict[str, int] | None = None,
                    first_row: int = 0, number_columns: tuple[str, ...] = (),
                    kept: RunsKept | None = None, title: str | None = None,
                    continued: bool = False) -> object:
    """One worksheet: the header on `first_row` (frozen, filtered), the rows below it. `wb`:
    an `open_workbook` (constant_memory); the rows are rendered in bulk (`xlsx_rows`).
    `kept`: each run of rows (a school year) kept rendered and reused (`RunsKept`). Only with
    `kept`, `frame` may be a source of runs (`FrameRuns`) instead of a DataFrame.
    `title`: a line in bold on the first row, above a header on a later one.

    A worksheet holds at most EXCEL_ROWS rows. With `continued`, rows beyond that go on to
    worksheets "<name> (2)", "<name> (3)"..., each with the header (and title); without it,
    such a table is an error (a sheet read back, like the adjudication queue, must be one).
    Returns the first worksheet."""
    per_sheet = EXCEL_ROWS - first_row - 1
    if len(frame) > per_sheet and not continued:
        raise ValueError(f"worksheet {name!r}: {len(frame):,} rows do not fit in one worksheet "
                         f"({per_sheet:,} at most below its header)")
    spans = [(lo, min(lo + per_sheet, len(frame)))
             for lo in range(0, max(len(frame), 1), per_sheet)]
    sheets = [_table_sheet(wb, continued_name(name, i), frame, span, widths or {}, first_row,
                           number_columns, kept, title)
              for i, span in enumerate(spans)]
    return sheets[0]


def continued_name(name: str, i: int) -> str:
    """The name of a table's worksheet i (0: `name`), within Excel's 31 characters."""
    if i == 0:
        return name
    tail = f" ({i + 1})"
    return name[: 31 - len(tail)] + tail


def _table_sheet(wb, name: str, frame: pd.DataFrame, span: tuple[int, int],
                 widths: dict[str, int], first_row: int, number_columns: tuple[str, ...],
                 kept: RunsKept | None, title: str | None) -> object:
    """One worksheet of `add_table_sheet`: the header and the frame's rows lo..hi-1."""
    lo, hi = span
    ws = wb.add_worksheet(name, worksheet_class=RowsWorksheet)
    if title is not None:
        if first_row < 1:
            raise ValueError("a title needs the header on a later row (first_row >= 1)")
        ws.write_string(0, 0, title, wb.add_format({"bold": True, "font_size": 12}))
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
                          "valign": "top"})
    text = wb.add_format({"text_wrap": True, "valign": "top"})
    quoted = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
    columns = list(frame.columns)
    for j, col in enumerate(columns):
        ws.write_string(first_row, j, str(col), head)
        ws.set_column(j, j, widths.get(col, 16))
    numeric = {columns.index(c) for c in number_columns if c in columns}
    text_xf, quoted_xf = text._get_xf_index(), quoted._get_xf_index()

    def string(v: object) -> str:
        s = cell_text(v)
        return string_cell(s, quoted_xf if s.startswith(FORMULA_START) else text_xf)

    def number_or_string(v: object) -> str:
        if isinstance(v, numbers.Real) and not isinstance(v, bool) \
                and not (isinstance(v, float) and math.isnan(v)):
            return number_cell(v, text_xf)
        return string(v)

    def blocks(frame: pd.DataFrame, first: int) -> Iterator[str]:
        # a block of rows at a time: memory stays flat
        for start in range(0, len(frame), ROWS_PER_BLOCK):
            part = frame.iloc[start:start + ROWS_PER_BLOCK]
            cells = [rendered(part.iloc[:, j], number_or_string if j in numeric else string)
                     for j in range(len(columns))]
            yield from render_rows(first + start, cells)

    if kept is None:
        rows = blocks(frame.iloc[lo:hi], first_row + 1)
    else:   # a run's rows start at its own row: first_row + 1 + its start
        how = dict(kind="xlsx", settings=repr((name, first_row, text_xf, quoted_xf,
                                               sorted(numeric))),
                   render=lambda part, start: blocks(part, first_row + 1 + start),
                   span=span, label="" if lo == 0 else f".{lo}", deflated=True)
        kept.render_ahead(frame, **how)
        rows = kept.chunks(frame, **how)
    ws.write_rendered_rows(first_row + 1, first_row + hi - lo, len(columns) - 1, rows)
    ws.freeze_panes(first_row + 1, 0)
    ws.autofilter(first_row, 0, first_row + max(hi - lo, 1), max(len(columns) - 1, 0))
    return ws


def open_workbook(path: Path):
    """An xlsxwriter workbook in constant_memory mode (rows go to disk as they are written;
    strings are inline, not shared), no string taken for a formula, number or link, zipped
    fast (`xlsx_rows.QuickZipWorkbook`)."""
    return QuickZipWorkbook(str(path), {"constant_memory": True,
                                        "strings_to_formulas": False,
                                        "strings_to_numbers": False,
                                        "strings_to_urls": False})
