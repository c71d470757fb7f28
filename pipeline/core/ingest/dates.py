"""Submission times, read the same way for every row of a file, or not at all.

`resolve_dates(cells, mapping)` reads one file's submission-time cells (spreadsheet row ->
text). Nothing is guessed row by row:

- With the mapping's `timestamp_format`, each cell is read with it (ISO 8601 text and Excel
  serial numbers, which cannot be misread, are accepted too). A cell the format does not read
  but the format with day and month swapped does ("14/09/2020" under "%m/%d/%Y") means the
  format is wrong for the file: a *conflict*, and the file stops.
- Without one, unambiguous cells are read as they are: ISO 8601 ("2024-01-15 10:00:00",
  "2024-01-15T10:00:00Z"), year first ("2024/01/15"), a month name ("Sep 14, 2020"), an
  Excel serial date ("45306.4375", days since 1899-12-30). Cells like "3/4/2024" need an
  order. A cell whose first number is over 12 can only be day-first, one whose second is over
  12 only month-first; every row of the file must agree with one order (rows that disagree are
  named in the conflict). When no row decides, `date_order` in the mapping does; else the
  order that puts every date inside the school year's window; when both do and the readings
  differ, the file stops asking for `date_order`.

The caller decides what a conflict or dates outside the window mean (core.raw refuses the
file; core.staging flags each row). Pure Python, no Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from pipeline.core.ingest.mapping import Mapping

EXCEL_EPOCH = datetime(1899, 12, 30)
EXCEL_SERIAL_RANGE = (20_000, 80_000)      # 1954-10-03 .. 2119-01-10: plausible as a date
_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T].*)?$")
_YMD = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:[ T]+(.*))?$")
_ABY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T,]+(.*))?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp]\.?[Mm]\.?)?$")
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")
_MONTH_NAME = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b",
                         re.IGNORECASE)
ORDERS = ("month-first", "day-first")


@dataclass
class DateResolution:
    """One file's submission times. `values` holds every readable row, `problems` why the
    others are not; `conflict` (when set) is why the file cannot be read at all."""

    values: dict[int, datetime] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    order: str | None = None          # the day/month order used for slash dates
    how: str = ""                     # what decided it
    conflict: str | None = None
    window: tuple[datetime, datetime] | None = None

    @property
    def outside(self) -> list[int]:
        """Rows whose time falls outside the school year's window."""
        if not self.window:
            return []
        start, end = self.window
        return sorted(r for r, v in self.values.items() if not start <= v <= end)

    def mostly_outside(self) -> bool:
        return bool(self.values) and len(self.outside) * 2 > len(self.values)


def _time_of_day(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return (0, 0, 0)
    m = _TIME.match(text.strip())
    if not m:
        return None
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if m.group(4):
        pm = m.group(4)[0].lower() == "p"
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if pm else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _build(year: int, month: int, day: int, clock: tuple[int, int, int] | None
           ) -> datetime | None:
    if clock is None:
        return None
    if year < 100:
        year += 2000
    try:
        return datetime(year, month, day, *clock)
    except ValueError:
        return None


def excel_serial(text: str) -> datetime | None:
    """An Excel serial date ("45306.4375") in the plausible range, else None."""
    if not _SERIAL.match(text):
        return None
    days = float(text)
    if not EXCEL_SERIAL_RANGE[0] <= days <= EXCEL_SERIAL_RANGE[1]:
        return None
    return EXCEL_EPOCH + timedelta(seconds=round(days * 86400))


def _iso(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=None) if value.tzinfo else value


def unambiguous(text: str) -> datetime | None:
    """A time that reads one way only (ISO, year first, month name, Excel serial), else None."""
    text = text.strip()
    if _ISO.match(text):
        return _iso(text)
    m = _YMD.match(text)
    if m:
        return _build(int(m.group(1)), int(m.group(2)), int(m.group(3)), _time_of_day(m.group(4)))
    serial = excel_serial(text)
    if serial is not None:
        return serial
    if _MONTH_NAME.search(text) and not _ABY.match(text):
        try:
            ts = pd.to_datetime(text)
        except (ValueError, OverflowError, TypeError):
            return None
        if pd.isna(ts):
            return None
        return ts.tz_localize(None).to_pydatetime() if ts.tzinfo else ts.to_pydatetime()
    return None


def slash_date(text: str, order: str) -> datetime | None:
    """'3/4/2024 10:00' read month-first or day-first (None if it does not read that way)."""
    m = _ABY.match(text.strip())
    if not m:
        return None
    a, b = int(m.group(1)), int(m.group(3))
    month, day = (a, b) if order == "month-first" else (b, a)
    return _build(int(m.group(4)), month, day, _time_of_day(m.group(5)))


def _orders(text: str) -> set[str]:
    return {o for o in ORDERS if slash_date(text, o) is not None}


def _swapped(fmt: str) -> str | None:
    if "%m" in fmt and "%d" in fmt:
        return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")
    return None


def _rows(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _with_format(cells: list[tuple[int, str]], fmt: str, out: DateResolution) -> None:
    swapped = _swapped(fmt)
    misread = []
    for row, text in cells:
        value = text.strip()
        try:
            out.values[row] = datetime.strptime(value, fmt)
            continue
        except ValueError:
            pass
        other = unambiguous(value) if value else None
        if other is not None:
            out.values[row] = other
            continue
        if swapped and value:
            try:
                datetime.strptime(value, swapped)
                misread.append((row, value))
            except ValueError:
                pass
        out.problems[row] = (f"unreadable timestamp {text!r} (timestamp_format {fmt!r})"
                             if value else "blank timestamp")
    out.how = "timestamp_format"
    if misread:
        rows = [r for r, _ in misread]
        out.conflict = (f"timestamp_format {fmt!r} does not read row(s) {_rows(rows)} (e.g. "
                        f"{misread[0][1]!r}), which read with day and month swapped: the file "
                        "is probably written the other way round, and its other dates would "
                        "be misread; fix timestamp_format in mapping.yaml")


def resolve_dates(cells: list[tuple[int, str]], mapping: Mapping) -> DateResolution:
    """Read one file's submission-time cells, (row number, text) pairs."""
    out = DateResolution(window=mapping.window)
    if mapping.timestamp_format:
        _with_format(cells, mapping.timestamp_format, out)
        return out
    slashed: list[tuple[int, str, set[str]]] = []
    for row, text in cells:
        value = text.strip()
        if not value:
            out.problems[row] = "blank timestamp"
            continue
        fixed = unambiguous(value)
        if fixed is not None:
            out.values[row] = fixed
            continue
        orders = _orders(value)
        if orders:
            slashed.append((row, value, orders))
        else:
            out.problems[row] = f"unreadable timestamp {text!r}"
    if not slashed:
        return out
    forced = {o: [(r, v) for r, v, orders in slashed if orders == {o}] for o in ORDERS}
    if forced["month-first"] and forced["day-first"]:
        minority = min(ORDERS, key=lambda o: (len(forced[o]), o))
        majority = ORDERS[1 - ORDERS.index(minority)]
        out.conflict = (
            f"rows disagree on the order of day and month: row(s) "
            f"{_rows([r for r, _ in forced[majority]])} read only {majority} (e.g. "
            f"{forced[majority][0][1]!r}) but row(s) {_rows([r for r, _ in forced[minority]])} "
            f"read only {minority} (e.g. {forced[minority][0][1]!r}); a file must use one "
            "order: correct those rows, or split the file")
        return out
    decided = [o for o in ORDERS if forced[o]]
    if decided:
        out.order, out.how = decided[0], f"rows such as {forced[decided[0]][0][1]!r}"
    elif mapping.date_order:
        out.order, out.how = mapping.date_order, "date_order in mapping.yaml"
    else:
        start, end = mapping.window
        fits = [o for o in ORDERS
                if all(start <= slash_date(v, o) <= end for _, v, _ in slashed)]
        same = all(slash_date(v, "month-first") == slash_date(v, "day-first")
                   for _, v, _ in slashed)
        if same:
            out.order, out.how = "month-first", "day and month equal"
        elif len(fits) == 1:
            out.order, out.how = fits[0], "the only order inside the school year"
        elif fits:
            example = slashed[0][1]
            out.conflict = (
                f"every date reads both ways (e.g. {example!r}: month-first "
                f"{slash_date(example, 'month-first'):%d %B %Y}, day-first "
                f"{slash_date(example, 'day-first'):%d %B %Y}) and both fall in the school "
                "year; set `date_order: month-first` or `day-first` in mapping.yaml")
            return out
        else:
            out.order, out.how = "month-first", "no order fits the school year"
    for row, value, _ in slashed:
        parsed = slash_date(value, out.order)
        if parsed is None:
            out.problems[row] = f"unreadable timestamp {value!r} ({out.order})"
        else:
            out.values[row] = parsed
    return out
