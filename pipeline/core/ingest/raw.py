"""The raw layer: every exported record verbatim, with provenance, plus what could not be read.

Pure functions from files on disk to DataFrames shaped like the warehouse's raw tables.

Every record of every file ends in `raw.survey_rows` (and then staged or quarantined by
staging) or in `raw.quarantine` with a reason. A file is

- `loaded`: its records are in raw.survey_rows; cells over the mapping's `max_cell_chars`
  are emptied and each quarantined (level `cell`), the rest of the file loads;
- `unreadable`: it cannot be read, or does not fit its mapping (one file-level reason);
- `refused`: it was read but must not load: the same bytes (sha256) were already loaded for
  another school year or under another name, a symbolic link leaves the landing folder, a
  mapped column name is repeated in its header, its dates disagree on the order of day and
  month, or most of its submission dates fall outside the school year's window. Every record
  is quarantined (level `row`) with the reason, so the counts still add up;
- `skipped`: in the year folder but not covered by the mapping's `files` pattern.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pandas as pd

from pipeline.core.ingest.dates import resolve_dates
from pipeline.core.ingest.exports import ExportReadError, ExportTable, read_export
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.ingest.mapping import (
    MAPPING_FILE_NAME,
    Mapping,
    MappingError,
    load_mapping,
    norm_header,
    resolve_columns,
)

EXPORT_FILE_COLUMNS = [
    "school_year", "file_name", "file_sha256", "reader", "detected", "encoding",
    "n_columns", "columns", "labels", "n_records", "n_rows", "n_problems",
    "status", "error", "loaded_at",
]
SURVEY_ROW_COLUMNS = [
    "school_year", "file_name", "file_sha256", "row_number", "reader", "record", "loaded_at",
]
QUARANTINE_COLUMNS = [
    "school_year", "file_name", "row_number", "column_name", "stage", "level", "reason",
    "quarantined_at",
]


IGNORED_PREFIXES = (".", "~")  # .hidden, ~$lock files of Office, ~backups
IGNORED_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp",
                    ".lock", "~", ".suggested.csv")


def is_ignored(name: str) -> bool:
    """Temporary, hidden and lock files, and the pipeline's own suggestion files (written into
    the year folder, see core.ingest.aliases): never exports, never reported, not watched."""
    return name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES)


class LandingError(ValueError):
    """The landing folder cannot be used as it is. `str(err)` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass
class RawYear:
    export_files: pd.DataFrame
    survey_rows: pd.DataFrame
    quarantine: pd.DataFrame


@dataclass
class OtherYears:
    """What other school years already loaded: export files by sha256 and response ids (only
    those the exports supplied), each with where it was loaded."""

    files: dict[str, tuple[str, str]] = field(default_factory=dict)       # sha -> (year, file)
    response_ids: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    # response id -> (year, file, row)
    # a digest of the rows response_ids was read from, when the caller made one (the
    # warehouse's fingerprint of them); else staged_files.base_key digests response_ids
    ids_digest: str = ""
    # when set, response_ids holds only what `need` asked for: fetch(ids) gives the entries
    # of those ids that other years loaded (the warehouse's query; a refresh stages one new
    # export, so it asks for that file's ids, not the 900,000 of ten years)
    fetch: Callable[[list[str]], dict[str, tuple[str, str, int]]] | None = None
    _asked: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if self.fetch is not None and not self.ids_digest:
            # staged_files.base_key would digest the few ids fetched, not the other years'
            raise ValueError("OtherYears with fetch needs the ids_digest of what it fetches from")

    def need(self, ids: Iterable[str]) -> None:
        """Make response_ids hold the entry of each of `ids` other years loaded (nothing to do
        when it holds every entry already: no `fetch`)."""
        if self.fetch is None:
            return
        new = [i for i in dict.fromkeys(ids) if i not in self._asked]
        if new:
            self._asked.update(new)
            for rid, entry in self.fetch(new).items():
                self.response_ids.setdefault(rid, entry)


def inside(path: Path, root: Path) -> bool:
    """True when `path`, symbolic links followed, stays inside `root`."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):        # a link loop
        return False


def year_exports(year_dir: str | Path) -> tuple[Mapping, list[Path]]:
    """The mapping of one school-year folder and the export files it covers, sorted by name
    (see `unmatched_files` for the others)."""
    year_dir = Path(year_dir)
    mapping = load_mapping(year_dir / MAPPING_FILE_NAME)
    if mapping.school_year != year_dir.name:
        raise MappingError(
            f"{mapping.path}: school_year {mapping.school_year!r} does not match its folder "
            f"{year_dir.name!r}"
        )
    reserved = mapping.reserved_files
    files = sorted(p for p in year_dir.glob(mapping.files)
                   if (p.is_file() or p.is_symlink()) and not p.is_dir()
                   and p.name not in reserved and not is_ignored(p.name))
    return mapping, files


def unmatched_files(year_dir: str | Path, mapping: Mapping) -> list[Path]:
    """Files in a year folder that the mapping's `files` pattern does not cover."""
    year_dir = Path(year_dir)
    matched = set(year_dir.glob(mapping.files))
    return sorted(p for p in year_dir.iterdir() if p.is_file() and p not in matched
                  and p.name not in mapping.reserved_files and not is_ignored(p.name))


def folders_without_mapping(landing_dir: str | Path) -> list[str]:
    """Sub-folders of the landing folder that hold no mapping.yaml (so no school year)."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    return sorted(p.name for p in landing_dir.iterdir() if p.is_dir()
                  and not is_ignored(p.name) and not (p / MAPPING_FILE_NAME).is_file())


def school_years(landing_dir: str | Path) -> list[str]:
    """Year folders under the landing folder that hold a mapping file."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    return sorted(p.name for p in landing_dir.iterdir() if (p / MAPPING_FILE_NAME).is_file()
                  and not is_ignored(p.name))


def check_landing(landing_dir: str | Path, mappings: bool = True) -> list[str]:
    """The school years of a landing folder that can be used as it is, else `LandingError` or
    `MappingError` with a one-line reason: the folder is missing or not a folder, it holds no
    school-year folder, a year folder is a symbolic link leaving it, or a mapping.yaml (or the
    year's alias table: AliasError, a MappingError) is invalid or names another year
    (`mappings=False` skips the mappings). `survey-pipeline run` calls it before anything
    runs, and the year retirement before it retires anything (an unmounted share must not
    retire every year)."""
    root = Path(landing_dir)
    if not root.exists():
        raise LandingError(f"landing folder {root} does not exist (set SURVEY_LANDING_DIR)")
    if not root.is_dir():
        raise LandingError(f"landing folder {root} is not a folder")
    years = school_years(root)
    for year in years:
        if not inside(root / year, root):
            raise LandingError(f"landing folder {root}: {year}/ is a symbolic link to "
                               f"{(root / year).resolve()}, outside the landing folder; move "
                               "the folder itself into the landing folder")
        if mappings:
            from pipeline.core.ingest.aliases import load_aliases

            mapping, _ = year_exports(root / year)
            load_aliases(root / year / mapping.aliases)
    if not years:
        raise LandingError(f"landing folder {root} holds no school-year folder (a folder like "
                           "2024-25/ with a mapping.yaml)")
    return years


def _quarantine(year, file_name, row, column, stage, level, reason, at) -> dict:
    return {"school_year": year, "file_name": file_name, "row_number": row, "column_name": column,
            "stage": stage, "level": level, "reason": reason, "quarantined_at": at}


def _file_row(year: str, path: Path, loaded_at: datetime) -> dict:
    entry = {c: None for c in EXPORT_FILE_COLUMNS}
    entry.update(school_year=year, file_name=path.name, loaded_at=loaded_at)
    return entry


def _sha256(path: Path) -> str | None:
    try:
        return file_sha256(path) if path.is_file() else None
    except OSError:
        return None


def refused_file(path: Path, mapping: Mapping, reason: str, loaded_at: datetime,
                 table: ExportTable | None = None, sha256: str | None = None) -> RawYear:
    """A file that must not load: every record it holds is quarantined with `reason`."""
    year = mapping.school_year
    entry = _file_row(year, path, loaded_at)
    error = f"{path.name}: {reason}"
    records = sorted([*(table.row_numbers if table else []),
                      *(p.row for p in (table.problems if table else []))])
    if table is not None:
        entry.update(_file_entry(table))
    entry.update(file_sha256=sha256 or (table.sha256 if table else None), status="refused",
                 error=error, n_records=len(records), n_rows=0, n_problems=len(records))
    quarantine = ([_quarantine(year, path.name, r, None, "read", "row",
                               f"file refused: {reason}", loaded_at) for r in records]
                  or [_quarantine(year, path.name, None, None, "read", "file", error, loaded_at)])
    return RawYear(pd.DataFrame([entry], columns=EXPORT_FILE_COLUMNS),
                   pd.DataFrame(columns=SURVEY_ROW_COLUMNS),
                   pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS))


def _repeated_mapped_column(table: ExportTable, mapping: Mapping) -> str | None:
    repeated = {norm_header(name): (name, where) for name, where in table.duplicate_columns.items()}
    for fld, wanted in mapping.columns.items():
        if wanted and norm_header(wanted) in repeated:
            name, where = repeated[norm_header(wanted)]
            return (f"the header holds {name!r} {len(where)} times (columns "
                    f"{', '.join(map(str, where))}), mapped as {fld}: which one holds the "
                    "answers cannot be told; rename the repeats in the export")
    return None


def _date_refusal(table: ExportTable, mapping: Mapping, idx: dict) -> str | None:
    column = idx.get("submitted_at")
    if column is None:
        return None
    cells = [(n, row[column]) for n, row in zip(table.row_numbers, table.rows, strict=True)]
    dates = resolve_dates(cells, mapping)
    if dates.conflict:
        return dates.conflict
    if dates.mostly_outside():
        outside = dates.outside
        first = outside[0]
        return (f"{len(outside)} of {len(dates.values)} submission dates fall outside the "
                f"school year {mapping.school_year} ({mapping.window_text()}), e.g. row "
                f"{first}: {dates.values[first]:%Y-%m-%d}: an export of another year? (a year "
                "that runs on other dates sets `submission_window` in mapping.yaml)")
    return None


def _limit_cells(table: ExportTable, mapping: Mapping, loaded_at: datetime) -> list[dict]:
    """Cells longer than the mapping's max_cell_chars: emptied, each quarantined."""
    out = []
    limit = mapping.max_cell_chars
    for number, row in zip(table.row_numbers, table.rows, strict=True):
        for i, value in enumerate(row):
            if len(value) > limit:
                row[i] = ""
                out.append(_quarantine(
                    mapping.school_year, table.path.name, number, table.columns[i], "read",
                    "cell", f"cell of {len(value):,} characters is over the limit of "
                    f"{limit:,} (max_cell_chars in mapping.yaml); left empty, the rest of the "
                    "row is read", loaded_at))
    return out


def read_file(path: Path, mapping: Mapping, loaded_at: datetime | None = None,
              others: OtherYears | None = None, landing_root: Path | None = None) -> RawYear:
    """Read one export into raw-layer frames.

    A file that cannot be read at all, or that lacks a mapped column, is recorded with
    status 'unreadable' and a file-level quarantine row instead of raising; a file that must
    not load (see the module's doc) is 'refused' with every record quarantined. `others`:
    what other school years loaded; `landing_root`: the folder symbolic links may not leave
    (default: the year folder's parent).
    """
    loaded_at = loaded_at or datetime.now().replace(microsecond=0)
    year = mapping.school_year
    root = landing_root or path.parent.parent
    if path.is_symlink() and not inside(path, root):
        return refused_file(path, mapping, "is a symbolic link to a file outside the landing "
                            "folder; not read (copy the file itself into the year folder)",
                            loaded_at)
    entry = _file_row(year, path, loaded_at)
    quarantine = []
    try:
        table = read_export(path, mapping.source, delimiter=mapping.delimiter,
                            sheet=mapping.sheet)
        idx = resolve_columns(mapping, table.columns, table.labels, path.name)
    except (ExportReadError, MappingError) as exc:
        error = str(exc).replace(str(path), path.name)   # the warehouse names files, not paths
        entry.update(file_sha256=_sha256(path), status="unreadable", error=error, n_records=0,
                     n_rows=0, n_problems=0)
        quarantine.append(_quarantine(year, path.name, getattr(exc, "row", None),
                                      getattr(exc, "column", None), "read", "file", error,
                                      loaded_at))
        return RawYear(pd.DataFrame([entry], columns=EXPORT_FILE_COLUMNS),
                       pd.DataFrame(columns=SURVEY_ROW_COLUMNS),
                       pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS))
    elsewhere = (others or OtherYears()).files.get(table.sha256)
    if elsewhere:
        other_year, other_file = elsewhere
        same = "this year" if other_year == year else other_year
        reason = (f"the same file (sha256 {table.sha256[:12]}) was already loaded for {same} "
                  f"as {other_file}")
        return refused_file(path, mapping, reason, loaded_at, table)
    reason = _repeated_mapped_column(table, mapping) or _date_refusal(table, mapping, idx)
    if reason:
        return refused_file(path, mapping, reason, loaded_at, table)
    quarantine += _limit_cells(table, mapping, loaded_at)
    entry.update(_file_entry(table), status="loaded")
    rows = _survey_rows(table, year, loaded_at)
    quarantine += [_quarantine(year, path.name, p.row, p.column, "read", "row", p.reason,
                               loaded_at) for p in table.problems]
    return RawYear(
        export_files=pd.DataFrame([entry], columns=EXPORT_FILE_COLUMNS),
        survey_rows=rows,
        quarantine=pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS),
    )


KEPT_KIND = "raw_file"
KEPT_PARTS = ("export_files", "survey_rows", "quarantine")


def file_key(path: Path, mapping: Mapping, sha: str | None = None) -> str | None:
    """What a loaded file's raw rows are a function of: its name, its bytes (sha256, given or
    read), the year's mapping and the code (frame_memo.key). None for a file that is always
    read again (a symbolic link, a file that cannot be hashed)."""
    from pipeline.core import frame_memo

    sha = sha or _sha256(path)
    if sha is None or path.is_symlink():
        return None
    return frame_memo.key("raw file", path.name, sha, repr(mapping))


def read_file_kept(path: Path, mapping: Mapping, loaded_at: datetime,
                   others: OtherYears, landing_root: Path, rows_kept: bool = False,
                   sha: str | None = None) -> RawYear:
    """`read_file`, with a loaded file's frames kept (frame_memo, kind raw_file) under its
    `file_key`: a refresh that adds one export reads only that one. What is kept is restamped
    with this read's `loaded_at`. A file the check against other years refuses, a symbolic
    link, or a file that did not load is always read. `rows_kept`: the warehouse holds this
    file's rows already (core/warehouse/file_rows.py), so a kept file's rows are not loaded
    (its survey_rows frame comes back empty); a file read again has them. `sha`: the file's
    sha256, when the caller has just computed it (`file_sha256s`)."""
    from pipeline.core import frame_memo

    sha = sha or _sha256(path)
    key = file_key(path, mapping, sha)
    if key is None or sha in others.files:
        return read_file(path, mapping, loaded_at, others, landing_root)
    parts = [p for p in KEPT_PARTS if not (rows_kept and p == "survey_rows")]
    kept = {p: frame_memo.load(KEPT_KIND, f"{key}-{p}") for p in parts}
    if all(frame is not None for frame in kept.values()):
        files, rows, quarantine = (
            frame.reindex(columns=columns) if frame is not None and len(frame)
            else pd.DataFrame(columns=columns)
            for frame, columns in zip((kept.get(p) for p in KEPT_PARTS),
                                      (EXPORT_FILE_COLUMNS, SURVEY_ROW_COLUMNS,
                                       QUARANTINE_COLUMNS), strict=True))
        # the stamps with the dtypes read_file's constructors give them (a list: ns; a
        # scalar: us), so that kept and read parts concatenate as read ones do
        files["loaded_at"] = [loaded_at] * len(files)
        rows["loaded_at"] = loaded_at
        if len(quarantine):
            quarantine["quarantined_at"] = [loaded_at] * len(quarantine)
        return RawYear(files, rows, quarantine)
    part = read_file(path, mapping, loaded_at, others, landing_root)
    if (part.export_files["status"] == "loaded").all():
        for name in KEPT_PARTS:
            frame_memo.store(KEPT_KIND, f"{key}-{name}", getattr(part, name))
    return part


def file_sha256s(paths: list[Path]) -> dict[str, str | None]:
    """File name -> sha256 (None for a file that cannot be read)."""
    return {p.name: _sha256(p) for p in paths}


def read_year(year_dir: str | Path, loaded_at: datetime | None = None,
              others: OtherYears | None = None, rows_kept: set[str] | None = None,
              shas: dict[str, str | None] | None = None) -> RawYear:
    """Read every export of one school-year folder; one bad file does not stop the others.
    A file already loaded for another year (`others`), or twice in this one, is refused.
    `rows_kept`: names of files whose rows the warehouse holds already (`read_file_kept`);
    `shas`: the files' sha256 just computed (`file_sha256s`)."""
    loaded_at = loaded_at or datetime.now().replace(microsecond=0)
    year_dir = Path(year_dir)
    mapping, files = year_exports(year_dir)
    seen = OtherYears(files=dict((others or OtherYears()).files),
                      response_ids=(others or OtherYears()).response_ids)
    parts = []
    for path in files:
        part = read_file_kept(path, mapping, loaded_at, seen, year_dir.parent,
                              rows_kept=path.name in (rows_kept or ()),
                              sha=(shas or {}).get(path.name))
        loaded = part.export_files[part.export_files["status"] == "loaded"]
        for sha in loaded["file_sha256"]:
            seen.files.setdefault(sha, (mapping.school_year, path.name))
        parts.append(part)
    parts += [skipped_file(path, mapping, loaded_at) for path in unmatched_files(year_dir, mapping)]
    return RawYear(*(_concat([getattr(p, f) for p in parts], cols) for f, cols in (
        ("export_files", EXPORT_FILE_COLUMNS), ("survey_rows", SURVEY_ROW_COLUMNS),
        ("quarantine", QUARANTINE_COLUMNS))))


def skipped_file(path: Path, mapping: Mapping, loaded_at: datetime) -> RawYear:
    """A file the mapping does not cover is reported, not silently left behind."""
    reason = (f"{path.name}: not read: the mapping's files pattern {mapping.files!r} does not "
              "cover it (rename it, or widen `files` in mapping.yaml)")
    entry = {c: None for c in EXPORT_FILE_COLUMNS}
    entry.update(school_year=mapping.school_year, file_name=path.name,
                 file_sha256=file_sha256(path), status="skipped", error=reason, n_records=0,
                 n_rows=0, n_problems=0, loaded_at=loaded_at)
    return RawYear(
        export_files=pd.DataFrame([entry], columns=EXPORT_FILE_COLUMNS),
        survey_rows=pd.DataFrame(columns=SURVEY_ROW_COLUMNS),
        quarantine=pd.DataFrame([_quarantine(mapping.school_year, path.name, None, None, "read",
                                             "file", reason, loaded_at)],
                                columns=QUARANTINE_COLUMNS),
    )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _file_entry(table: ExportTable) -> dict:
    return {
        "file_sha256": table.sha256, "reader": table.kind, "detected": table.detected,
        "encoding": table.encoding, "n_columns": len(table.columns),
        "columns": json.dumps(table.columns, ensure_ascii=False),
        "labels": json.dumps(table.labels, ensure_ascii=False),
        "n_records": len(table.rows) + len(table.problems), "n_rows": len(table.rows),
        "n_problems": len(table.problems),
    }


def read_record(text: str) -> dict:
    """A raw.survey_rows record (`record_text`) as `json.loads` reads it.
    orjson reads one about twice as fast (1M records: ~4.7 s with json); where the two could
    differ, json reads it: what orjson refuses (NaN, a number past a double's range, a lone
    surrogate) and any record holding a float, since orjson reads a whole number past 64 bits
    as one. Text cells, all CSV exports give, are read the same by both."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    if any(type(v) is float for v in record.values()):
        return json.loads(text)
    return record


def record_text(columns: list[str], row) -> str:
    """A row as its raw.survey_rows record: compact JSON `{column: cell}`, by orjson when every
    cell is text (the same text json.dumps gives with these separators, about three times
    faster), else by json, which also takes what orjson refuses (a lone surrogate)."""
    record = dict(zip(columns, row, strict=True))
    if all(type(v) is str for v in record.values()):
        try:
            return orjson.dumps(record).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _survey_rows(table: ExportTable, year: str, loaded_at: datetime) -> pd.DataFrame:
    records = [record_text(table.columns, row) for row in table.rows]
    return pd.DataFrame({
        "school_year": year, "file_name": table.path.name, "file_sha256": table.sha256,
        "row_number": pd.array(table.row_numbers, dtype="int64"), "reader": table.kind,
        "record": records, "loaded_at": loaded_at,
    }, columns=SURVEY_ROW_COLUMNS)
