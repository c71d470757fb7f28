"""What staging one export file added, kept per file so a refresh stages only the new export.

Staging a school year goes through its loaded exports in file-name order, and each file's
rows depend on the files before it only through what they left behind: the response ids and
submissions seen (a later repeat is quarantined naming the first) and the school and coach
spellings counted (for the year's name suggestions). Everything else staging remembers is a
memo of a pure function (redaction, pseudonyms, name resolution). So what a file adds (its
answers, quarantine entries and redactions, and those three pieces of state) is a function of
the file, the state before it, and the year's settings; `stage_year` keeps it in the result
cache (`<cache>/results/staged_files/<year>-<file digest>--<key>.bin`) under a key chained
through the files before it:

    key(file k) = digest(key(file k-1), file k's name, sha256, columns, labels, raw rows)
    key(before the first file) = digest(the pipeline's code, the mapping, the roster, the
                                        salt, the alias table, the other years' ids and files)

When the sensor's refresh adds a session's export after the year's others, every earlier file
keeps its key and its part is replayed from the cache; the new file is staged. A file that
sorts before others, or any change to an earlier one, changes the keys of every file after it.
A replayed quarantine entry keeps its original `quarantined_at`.

Entries are JSON (datetimes tagged), written only when every value is one JSON holds exactly.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pandas as pd

from pipeline.core.warehouse.fingerprint import fingerprint, frame_digest, package_digest

FORMAT = "staged-file/1"
MAX_FILES = 4000   # result-cache entries: one per export file, for years of sessions
_DATETIME = "$datetime"


def base_key(mapping: object, roster_digest: str, salt: str, aliases: object,
             others: object) -> str:
    """The key before a year's first file: everything staging depends on besides the files."""
    ids = hashlib.sha256()
    for table in (getattr(others, "response_ids", {}), getattr(others, "files", {})):
        for k, v in sorted(table.items()):
            ids.update(repr((k, v)).encode())
        ids.update(b"\x1e")
    salt_digest = hashlib.sha256(salt.encode()).hexdigest()
    return fingerprint(FORMAT, package_digest(), repr(mapping), roster_digest, salt_digest,
                       repr(aliases), ids.hexdigest())


def file_key(previous: str, f: object, file_rows: pd.DataFrame | None) -> str:
    """The key of one export file (`f`: a raw.export_files row) after the key of the files
    before it."""
    rows = "none" if file_rows is None else frame_digest(
        file_rows[["row_number", "record"]].reset_index(drop=True))
    return fingerprint(previous, f.file_name, f.file_sha256, f.columns, f.labels, rows)


def slot(school_year: str, file_name: str) -> str:
    return f"{school_year}-{hashlib.sha256(file_name.encode()).hexdigest()[:16]}"


def encode(part: dict) -> bytes | None:
    """The part as JSON bytes, or None when a value is not one JSON holds exactly."""
    try:
        return json.dumps(part, default=_tagged, ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return None


def decode(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"), object_hook=_untagged)


def _tagged(value: object) -> dict:
    if type(value) is datetime:   # noqa: E721 - a subclass (pd.Timestamp) would come back as this
        return {_DATETIME: value.isoformat()}
    raise TypeError(f"not kept: {type(value).__name__}")


def _untagged(obj: dict) -> object:
    if len(obj) == 1 and _DATETIME in obj:
        return datetime.fromisoformat(obj[_DATETIME])
    return obj
