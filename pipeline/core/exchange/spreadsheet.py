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
import math
import numbers
from pathlib import Path

import pandas as pd

from pipeline.core.exchange.xlsx_rows import RowsWorksheet, number_cell, render_rows, string_cell
from pipeline.core.files import atomic_path
from pipeline.core.reconciliation.queue import FORMULA_START, neutralise

ROWS_PER_BLOCK = 5000   # rows of a table rendered at a time


def cell_text(value: object) -> str:
    """A cell as text: '' for missing, yes/no for booleans, whole floats without '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow([neutralise(c) for c in frame.columns])
        # column by column (iterating a column gives the values itertuples gave)
        csv_text = lambda v: neutralise(cell_text(v))  # noqa: E731
        w.writerows(zip(*(rendered(frame.iloc[:, j], csv_text) for j in range(frame.shape[1])),
                        strict=True))
    return Path(path)


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
                    first_row: int = 0, number_columns: tuple[str, ...] = ()) -> object:
    """One worksheet: the header on `first_row` (frozen, filtered), the rows below it. `wb`:
    an `open_workbook` (constant_memory); the rows are rendered in bulk (`xlsx_rows`)."""
    ws = wb.add_worksheet(name, worksheet_class=RowsWorksheet)
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
                          "valign": "top"})
    text = wb.add_format({"text_wrap": True, "valign": "top"})
    quoted = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
    widths = widths or {}
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

    def blocks():   # rendered a block of rows at a time: memory stays flat
        for start in range(0, len(frame), ROWS_PER_BLOCK):
            part = frame.iloc[start:start + ROWS_PER_BLOCK]
            cells = [rendered(part.iloc[:, j], number_or_string if j in numeric else string)
                     for j in range(len(columns))]
            yield from render_rows(first_row + 1 + start, cells)

    ws.write_rendered_rows(first_row + 1, first_row + len(frame), len(columns) - 1, blocks())
    ws.freeze_panes(first_row + 1, 0)
    ws.autofilter(first_row, 0, first_row + max(len(frame), 1), max(len(columns) - 1, 0))
    return ws


def open_workbook(path: Path):
    """An xlsxwriter workbook in constant_memory mode (rows go to disk as they are written;
    strings are inline, not shared), no string taken for a formula, number or link."""
    import xlsxwriter

    return xlsxwriter.Workbook(str(path), {"constant_memory": True,
                                           "strings_to_formulas": False,
                                           "strings_to_numbers": False,
                                           "strings_to_urls": False})
