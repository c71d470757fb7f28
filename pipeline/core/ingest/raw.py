"""The raw layer: every exported record verbatim, with provenance, plus what could not be read.

Pure functions from files on disk to DataFrames shaped like the warehouse's raw tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.core.ingest.exports import ExportReadError, ExportTable, read_export
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.ingest.mapping import (
    MAPPING_FILE_NAME,
    Mapping,
    MappingError,
    load_mapping,
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
                    ".lock", "~")


def is_ignored(name: str) -> bool:
    """Temporary, hidden and lock files: never exports, never reported."""
    return name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES)


@dataclass
class RawYear:
    export_files: pd.DataFrame
    survey_rows: pd.DataFrame
    quarantine: pd.DataFrame


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
    files = sorted(p for p in year_dir.glob(mapping.files)
                   if p.is_file() and p.name != MAPPING_FILE_NAME and not is_ignored(p.name))
    return mapping, files


def unmatched_files(year_dir: str | Path, mapping: Mapping) -> list[Path]:
    """Files in a year folder that the mapping's `files` pattern does not cover."""
    year_dir = Path(year_dir)
    matched = set(year_dir.glob(mapping.files))
    return sorted(p for p in year_dir.iterdir() if p.is_file() and p not in matched
                  and p.name != MAPPING_FILE_NAME and not is_ignored(p.name))


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
    return sorted(p.name for p in landing_dir.iterdir() if (p / MAPPING_FILE_NAME).is_file())


def _quarantine(year, file_name, row, column, stage, level, reason, at) -> dict:
    return {"school_year": year, "file_name": file_name, "row_number": row, "column_name": column,
            "stage": stage, "level": level, "reason": reason, "quarantined_at": at}


def read_file(path: Path, mapping: Mapping, loaded_at: datetime | None = None) -> RawYear:
    """Read one export into raw-layer frames.

    A file that cannot be read at all, or that lacks a mapped column, is recorded with
    status 'unreadable' and a file-level quarantine row instead of raising.
    """
    loaded_at = loaded_at or datetime.now().replace(microsecond=0)
    year = mapping.school_year
    entry = {c: None for c in EXPORT_FILE_COLUMNS}
    entry.update(school_year=year, file_name=path.name, loaded_at=loaded_at)
    quarantine = []
    try:
        table = read_export(path, mapping.source)
        resolve_columns(mapping, table.columns, table.labels, path.name)
    except (ExportReadError, MappingError) as exc:
        error = str(exc).replace(str(path), path.name)   # the warehouse names files, not paths
        entry.update(file_sha256=file_sha256(path) if path.is_file() else None,
                     status="unreadable", error=error, n_records=0, n_rows=0, n_problems=0)
        quarantine.append(_quarantine(year, path.name, getattr(exc, "row", None),
                                      getattr(exc, "column", None), "read", "file", error,
                                      loaded_at))
        rows = pd.DataFrame(columns=SURVEY_ROW_COLUMNS)
    else:
        entry.update(_file_entry(table), status="loaded")
        rows = _survey_rows(table, year, loaded_at)
        quarantine += [_quarantine(year, path.name, p.row, p.column, "read", "row", p.reason,
                                   loaded_at) for p in table.problems]
    return RawYear(
        export_files=pd.DataFrame([entry], columns=EXPORT_FILE_COLUMNS),
        survey_rows=rows,
        quarantine=pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS),
    )


def read_year(year_dir: str | Path, loaded_at: datetime | None = None) -> RawYear:
    """Read every export of one school-year folder; one bad file does not stop the others."""
    loaded_at = loaded_at or datetime.now().replace(microsecond=0)
    mapping, files = year_exports(year_dir)
    parts = [read_file(path, mapping, loaded_at) for path in files]
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


def _survey_rows(table: ExportTable, year: str, loaded_at: datetime) -> pd.DataFrame:
    records = [json.dumps(dict(zip(table.columns, row, strict=True)), ensure_ascii=False)
               for row in table.rows]
    return pd.DataFrame({
        "school_year": year, "file_name": table.path.name, "file_sha256": table.sha256,
        "row_number": pd.array(table.row_numbers, dtype="int64"), "reader": table.kind,
        "record": records, "loaded_at": loaded_at,
    }, columns=SURVEY_ROW_COLUMNS)
