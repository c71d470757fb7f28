"""Per-year export mappings: which export column holds which canonical field.

A mapping is a small YAML file beside a year's exports (``<landing>/<school_year>/mapping.yaml``),
so a new year's export with new headers is a configuration change, not a code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MAPPING_FILE_NAME = "mapping.yaml"
FIELDS = ("submitted_at", "response_id", "school", "coach", "role", "session", "worked", "improve")
REQUIRED_FIELDS = ("worked", "improve")
SCHOOL_YEAR_RE = re.compile(r"^(\d{4})-(\d{2})$")


class MappingError(ValueError):
    """A mapping file that cannot be used, or an export that does not fit its mapping."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
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


def valid_school_year(value: str) -> bool:
    m = SCHOOL_YEAR_RE.match(value or "")
    return bool(m) and (int(m.group(1)) + 1) % 100 == int(m.group(2))


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    year = str(data.get("school_year", ""))
    if not valid_school_year(year):
        raise MappingError(f"{path}: school_year {year!r} is not like '2020-21'")
    columns = data.get("columns") or {}
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise MappingError(f"{path}: unknown field(s) under columns: {', '.join(unknown)}")
    for name in REQUIRED_FIELDS:
        if not columns.get(name):
            raise MappingError(f"{path}: columns.{name} (the question column) is required")
    identifying = tuple(str(c) for c in data.get("identifying") or ())
    # school and coach are hashed into pseudonyms; every other field reaches staging as text
    leaks = [f for f in FIELDS if f not in ("school", "coach") and columns.get(f)
             and _norm(str(columns[f])) in {_norm(c) for c in identifying}]
    if leaks:
        raise MappingError(f"{path}: identifying column(s) mapped to {', '.join(leaks)}; "
                           "identifying columns never leave the raw layer")
    return Mapping(
        school_year=year,
        source=data.get("source"),
        files=data.get("files", "*.csv"),
        columns={f: (str(columns[f]) if columns.get(f) else None) for f in FIELDS},
        identifying=identifying,
        timestamp_format=data.get("timestamp_format"),
        path=path,
    )


def _norm(text: str) -> str:
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
            loose.setdefault(_norm(key), i)
    found: dict[str, int | None] = {}
    missing = []
    for name in FIELDS:
        wanted = mapping.columns.get(name)
        idx = exact.get(wanted, loose.get(_norm(wanted))) if wanted else None
        if wanted and idx is None:
            missing.append(f"{wanted!r} (mapped as {name})")
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

    present = {_norm(x): x for pair in zip(columns, labels, strict=True) for x in pair}
    chosen: dict[str, str | None] = {}
    for name in FIELDS:
        options = (QUESTION_TEXT[name],) if name in QUESTION_TEXT else GUESSES[name]
        chosen[name] = next((present[_norm(o)] for o in options if _norm(o) in present), None)
    return Mapping(school_year=school_year, source=source, columns=chosen)
