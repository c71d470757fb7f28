"""Per-year export mappings: which export column holds which canonical field.

A mapping is a small YAML file beside a year's exports (``<landing>/<school_year>/mapping.yaml``),
so a new year's export with new headers is a configuration change, not a code change.

Every key is checked: an unknown key (a typo such as ``timestamp_fromat``) is an error with a
"did you mean", never silently ignored. The keys:

    school_year        "2024-25", the folder's name (required)
    source             reader kind (google-forms, qualtrics, ...); absent = detected
    files              glob of the exports in the folder (default "*.csv")
    columns            canonical field -> export column id or question text
    identifying        columns that never leave the raw layer
    timestamp_format   strptime format of the submission time ("%m/%d/%Y %H:%M:%S")
    date_order         month-first | day-first: how to read 3/4/2024 when no row says
    submission_window  {start: 2024-07-01, end: 2025-06-30}; default 1 July - 30 June
    delimiter          the CSV delimiter when it is not a comma (";", "\\t", "|")
    sheet              the XLSX worksheet holding the answers (default: the only one with data)
    max_cell_chars     longest cell read (default 20000); a longer cell is quarantined
    aliases            the year's school/coach alias CSV (default "aliases.csv")
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MAPPING_FILE_NAME = "mapping.yaml"
FIELDS = ("submitted_at", "response_id", "school", "coach", "role", "session", "worked", "improve")
REQUIRED_FIELDS = ("worked", "improve")
SCHOOL_YEAR_RE = re.compile(r"^(\d{4})-(\d{2})$")
KEYS = ("school_year", "source", "files", "columns", "identifying", "timestamp_format",
        "date_order", "submission_window", "delimiter", "sheet", "max_cell_chars", "aliases")
DATE_ORDERS = ("month-first", "day-first")
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_MAX_CELL_CHARS = 20_000
DEFAULT_ALIASES_FILE = "aliases.csv"


class MappingError(ValueError):
    """A mapping file that cannot be used, or an export that does not fit its mapping.
    `str(err)` is one line."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(" ".join(str(message).split()))
        self.column = column


@dataclass(frozen=True)
class Mapping:
    school_year: str
    source: str | None                  # reader kind; None -> detect from headers
    files: str = "*.csv"                # glob inside the year folder
    columns: dict[str, str | None] = field(default_factory=dict)
    identifying: tuple[str, ...] = ()
    timestamp_format: str | None = None
    path: Path | None = None
    date_order: str | None = None       # month-first | day-first, for dates no row resolves
    window_start: dt.date | None = None  # submission window; None = 1 July of the first year
    window_end: dt.date | None = None    # None = 30 June of the second year
    delimiter: str | None = None        # None = comma (a semicolon file is refused by name)
    sheet: str | None = None            # XLSX worksheet; None = the only one with data
    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS
    aliases: str = DEFAULT_ALIASES_FILE

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """First and last moment a submission of this school year may carry."""
        first = int(self.school_year[:4]) if valid_school_year(self.school_year) else None
        start = self.window_start or (dt.date(first, 7, 1) if first else dt.date.min)
        end = self.window_end or (dt.date(first + 1, 6, 30) if first else dt.date.max)
        return (dt.datetime.combine(start, dt.time.min), dt.datetime.combine(end, dt.time.max))

    def window_text(self) -> str:
        start, end = self.window
        return f"{start.date().isoformat()} to {end.date().isoformat()}"

    @property
    def reserved_files(self) -> set[str]:
        """Files in the year folder that are configuration, not exports."""
        return {MAPPING_FILE_NAME, self.aliases, suggested_name(self.aliases)}


def suggested_name(aliases_file: str) -> str:
    """Where the fuzzy-matching suggestions go: next to the alias file."""
    stem, dot, ext = aliases_file.rpartition(".")
    return f"{stem}.suggested.{ext}" if dot else f"{aliases_file}.suggested"


def valid_school_year(value: str) -> bool:
    m = SCHOOL_YEAR_RE.match(value or "")
    return bool(m) and (int(m.group(1)) + 1) % 100 == int(m.group(2))


def did_you_mean(word: str, options) -> str:
    """' (did you mean 'x'?)' for the closest option, '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(path: Path, where: str, keys, allowed, noun: str = "key") -> None:
    unknown = [k for k in keys if k not in allowed]
    if unknown:
        parts = [f"{k!r}{did_you_mean(k, allowed)}" for k in unknown]
        raise MappingError(f"{path}: unknown {noun}(s) {where}: {', '.join(parts)}; allowed: "
                           f"{', '.join(allowed)}")


def _date(path: Path, value, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise MappingError(f"{path}: submission_window.{what} {value!r} is not a date like "
                           "2024-07-01") from None


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a year's mapping.yaml; the first problem raises MappingError naming the
    file (and the line, for invalid YAML)."""
    path = Path(path)
    data = _read_yaml(path)
    _unknown(path, "at the top level", data, KEYS)
    year = str(data.get("school_year", ""))
    if not valid_school_year(year):
        raise MappingError(f"{path}: school_year {year!r} is not like '2020-21'")
    columns = _columns(path, data)
    source = _source(path, data)
    identifying = _identifying(path, data, columns)
    fmt, order, (start, end) = _dates(path, data)
    delimiter, limit, aliases, files = _reading(path, data)
    mapping = Mapping(
        school_year=year,
        source=source,
        files=files,
        columns={f: (str(columns[f]) if columns.get(f) else None) for f in FIELDS},
        identifying=identifying,
        timestamp_format=fmt,
        path=path,
        date_order=order,
        window_start=start,
        window_end=end,
        delimiter=delimiter,
        sheet=None if data.get("sheet") is None else str(data["sheet"]),
        max_cell_chars=limit,
        aliases=aliases,
    )
    first, last = mapping.window
    if first >= last:
        raise MappingError(f"{path}: submission_window starts ({first.date()}) after it ends "
                           f"({last.date()})")
    return mapping


def _read_yaml(path: Path) -> dict:
    """The file's YAML, which must be a mapping of keys."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found") from exc
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: not UTF-8 text (byte offset {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise MappingError(f"{path}: invalid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def _columns(path: Path, data: dict) -> dict:
    """columns: known fields only, the question columns present."""
    columns = data.get("columns") or {}
    if not isinstance(columns, dict):
        raise MappingError(f"{path}: columns must map fields to export columns")
    _unknown(path, "under columns", columns, FIELDS, noun="field")
    for name in REQUIRED_FIELDS:
        if not columns.get(name):
            raise MappingError(f"{path}: columns.{name} (the question column) is required")
    return columns


def _source(path: Path, data: dict) -> str | None:
    """source: a reader kind, or None (detected from the file)."""
    source = data.get("source")
    if source is not None:
        from pipeline.core.ingest.exports import READER_KINDS

        if source not in READER_KINDS:
            raise MappingError(f"{path}: source {source!r} is not a reader kind"
                               f"{did_you_mean(source, READER_KINDS)}; one of: "
                               f"{', '.join(READER_KINDS)}")
    return source


def _identifying(path: Path, data: dict, columns: dict) -> tuple[str, ...]:
    """identifying columns, none of them mapped to a field that reaches staging as text."""
    identifying = tuple(str(c) for c in data.get("identifying") or ())
    # school and coach are hashed into pseudonyms; every other field reaches staging as text
    leaks = [f for f in FIELDS if f not in ("school", "coach") and columns.get(f)
             and norm_header(str(columns[f])) in {norm_header(c) for c in identifying}]
    if leaks:
        raise MappingError(f"{path}: identifying column(s) mapped to {', '.join(leaks)}; "
                           "identifying columns never leave the raw layer")
    return identifying


def _dates(path: Path, data: dict):
    """(timestamp_format, date_order, (window start, window end)), each None when not set."""
    fmt = data.get("timestamp_format")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        raise MappingError(f"{path}: timestamp_format {fmt!r} is not a strptime format like "
                           "'%m/%d/%Y %H:%M:%S'")
    order = data.get("date_order")
    if order is not None and order not in DATE_ORDERS:
        raise MappingError(f"{path}: date_order {order!r}{did_you_mean(order, DATE_ORDERS)}; "
                           f"one of: {', '.join(DATE_ORDERS)}")
    window = data.get("submission_window")
    start = end = None
    if window is not None:
        if not isinstance(window, dict):
            raise MappingError(f"{path}: submission_window must be {{start: YYYY-MM-DD, "
                               "end: YYYY-MM-DD}")
        _unknown(path, "under submission_window", window, ("start", "end"))
        start = _date(path, window["start"], "start") if "start" in window else None
        end = _date(path, window["end"], "end") if "end" in window else None
    return fmt, order, (start, end)


def _reading(path: Path, data: dict) -> tuple[str | None, int, str, str]:
    """(delimiter, max_cell_chars, aliases file name, files pattern): how the files are read."""
    delimiter = data.get("delimiter")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise MappingError(f"{path}: delimiter {delimiter!r} is not one of "
                           f"{', '.join(repr(d) for d in DELIMITERS)}")
    limit = data.get("max_cell_chars", DEFAULT_MAX_CELL_CHARS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise MappingError(f"{path}: max_cell_chars {limit!r} is not a positive whole number")
    aliases = str(data.get("aliases") or DEFAULT_ALIASES_FILE)
    if "/" in aliases or "\\" in aliases or aliases in (".", ".."):
        raise MappingError(f"{path}: aliases {aliases!r} must be a file name in the year folder")
    files = data.get("files", "*.csv")
    if not isinstance(files, str) or not files or "/" in files or ".." in files:
        raise MappingError(f"{path}: files {files!r} must be a pattern inside the year folder, "
                           "like 'session-*.csv'")
    return delimiter, limit, aliases, files


def norm_header(text: str) -> str:
    """A header as compared: curly quotes straightened, BOM dropped, spaces folded, casefolded."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\ufeff", "")
    return " ".join(text.split()).casefold()


def resolve_columns(
    mapping: Mapping, columns: list[str], labels: list[str], file_name: str
) -> dict[str, int | None]:
    """Index of the export column for each canonical field (None when unmapped).

    A field matches a column by its id or its label, exactly first, then ignoring case,
    whitespace and quote style. A mapped column that is missing is an error naming it.
    """
    exact = {}
    loose = {}
    for i, (col, label) in enumerate(zip(columns, labels, strict=True)):
        for key in (col, label):
            exact.setdefault(key, i)
            loose.setdefault(norm_header(key), i)
    found: dict[str, int | None] = {}
    missing = []
    for name in FIELDS:
        wanted = mapping.columns.get(name)
        idx = exact.get(wanted, loose.get(norm_header(wanted))) if wanted else None
        if wanted and idx is None:
            hint = did_you_mean(wanted, [*columns, *labels])
            missing.append(f"{wanted!r} (mapped as {name}){hint}")
        found[name] = idx
    if missing:
        raise MappingError(
            f"{file_name}: column {', '.join(missing)} not found in the export", column=missing[0]
        )
    return found


GUESSES = {
    "submitted_at": ("Timestamp", "RecordedDate", "EndDate", "Completion time", "End Date"),
    "response_id": ("ResponseId", "ResponseID", "Respondent ID", "Id"),
    "school": ("Which school are you from?", "School"),
    "coach": ("Who was your coach today?", "Coach"),
    "role": ("What is your role?", "Role"),
    "session": ("SessionNumber", "Session", "Session number"),
}


def guess_mapping(columns: list[str], labels: list[str], school_year: str = "unknown",
                  source: str | None = None) -> Mapping:
    """A mapping for an export that has none: the study's question texts and the survey
    tools' usual column names. Used by `survey-pipeline ingest FILE` without --mapping."""
    from pipeline.core.ingest.ids import QUESTION_TEXT

    present = {norm_header(x): x for pair in zip(columns, labels, strict=True) for x in pair}
    chosen: dict[str, str | None] = {}
    for name in FIELDS:
        options = (QUESTION_TEXT[name],) if name in QUESTION_TEXT else GUESSES[name]
        chosen[name] = next((present[norm_header(o)] for o in options if norm_header(o) in present), None)
    return Mapping(school_year=school_year, source=source, columns=chosen)
