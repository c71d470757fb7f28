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
                                        salt, the alias table, the other years' response ids)

When the sensor's refresh adds a session's export after the year's others, every earlier file
keeps its key and its part is replayed from the cache; the new file is staged. A file that
sorts before others, or any change to an earlier one, changes the keys of every file after it.
A replayed quarantine entry keeps its original `quarantined_at`.

Entries are JSON (the two datetime fields as ISO text), written only when every value is one
JSON holds exactly; an entry that cannot be read back means staging the file again. A part of
plain values (text, whole numbers, booleans, None, the two datetimes) is written by orjson,
about six times faster than `json` on a large export, its values' types checked included; anything else (a float, a nested
value) goes through `json`, which refuses NaN and infinities. They hold
raw-layer data (the redaction audit's originals, the spellings of school and coach names, the
export file names), as `raw.redactions` and the `raw_file/` memo do: the cache folder is as
private as the warehouse (docs/privacy.md). Submissions are remembered by digest, not text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from datetime import datetime

import orjson
import pandas as pd

from pipeline.core.warehouse.fingerprint import fingerprint, frame_digest, package_digest

FORMAT = "staged-file/1"
MAX_FILES = 8000   # result-cache entries: two per export file, for years of sessions


def base_key(mapping: object, roster_digest: str, salt: str, aliases: object,
             others: object) -> str:
    """The key before a year's first file: everything staging depends on besides the files."""
    # what staging reads of the other years: their response ids (the rows they were read
    # from as the caller fingerprinted them, or digested here one by one)
    ids_digest = getattr(others, "ids_digest", "")
    if not ids_digest:
        ids = hashlib.sha256()
        for k, v in sorted(getattr(others, "response_ids", {}).items()):
            ids.update(repr((k, v)).encode())
        ids_digest = ids.hexdigest()
    salt_digest = hashlib.sha256(salt.encode()).hexdigest()
    return fingerprint(FORMAT, package_digest(), repr(mapping), roster_digest, salt_digest,
                       repr(aliases), ids_digest)


def file_key(previous: str, f: object, file_rows: pd.DataFrame | None) -> str:
    """The key of one export file (`f`: a raw.export_files row) after the key of the files
    before it."""
    rows = "none" if file_rows is None else frame_digest(
        file_rows[["row_number", "record"]].reset_index(drop=True))
    return fingerprint(previous, f.file_name, f.file_sha256, f.columns, f.labels, rows)


def chain_keys(base: str, loaded: pd.DataFrame, prints: dict[str, object]) -> dict[str, str]:
    """Every loaded file's key (`loaded`: raw.export_files rows in staging's order), with each
    file's raw rows given by their DuckDB fingerprint (`prints`: file name -> (rows, sum of
    row hashes) of (row_number, record)) instead of read: the warehouse's way to the keys."""
    keys, key = {}, base
    for f in loaded.itertuples(index=False):
        key = fingerprint(key, f.file_name, f.file_sha256, f.columns, f.labels, "prints",
                          prints.get(f.file_name, "none"))
        keys[f.file_name] = key
    return keys


def slot(school_year: str, file_name: str) -> str:
    return f"{school_year}-{hashlib.sha256(file_name.encode()).hexdigest()[:16]}"


STATE = ("seen_content", "seen_response", "names_seen")


def state_slot(school_year: str, file_name: str) -> str:
    """The slot of a file's state alone (what a later file's staging needs of it), replayed
    when the warehouse holds the file's rows already."""
    return slot(school_year, file_name) + ".state"


def encode_state(part: dict) -> bytes:
    state = {k: part[k] for k in STATE}
    try:
        return orjson.dumps(state)
    except TypeError:   # a key that is not text: json writes it as text
        return json.dumps(state, ensure_ascii=False).encode("utf-8")


def decode_state(data: bytes) -> dict:
    """A state `encode_state` wrote; ValueError when it is not one."""
    try:
        state = json.loads(data.decode("utf-8"))
        if not all(isinstance(state[k], dict) for k in STATE) or not all(
                isinstance(v, dict) for v in state["names_seen"].values()):
            raise TypeError("not three mappings")
    except (UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a kept staging state ({exc!r})") from exc
    return state


# the fields of a kept part that hold datetimes, written as ISO text and read back by name
_DATETIMES = {"answers": "submitted_at", "quarantine": "quarantined_at"}


def encode(part: dict) -> bytes | None:
    """The part as JSON bytes, or None when a value is not one JSON holds exactly."""
    if _plain(part):
        try:
            return orjson.dumps(part)   # the datetimes as ISO text, as isoformat() writes them
        except TypeError:   # a key that is not text, a whole number past 64 bits
            pass
    try:
        out = dict(part)
        for rows, name in _DATETIMES.items():
            out[rows] = [{**row, name: _iso(row[name])} for row in part[rows]]
        return json.dumps(out, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, KeyError):
        return None


_PARTS = frozenset({"answers", "quarantine", "redactions", "seen_content", "seen_response",
                    "names_seen"})
_PLAIN = frozenset({str, int, bool, type(None)})


def _plain(part: dict) -> bool:
    """The part holds its six fields only, and every value of their rows and mappings is text,
    a whole number, a boolean or None, but for the datetime fields: datetimes (not a subclass,
    which would come back as a datetime) or None."""
    try:
        if part.keys() != _PARTS:
            return False
        datetimes = 0
        for rows, name in _DATETIMES.items():
            types = Counter(type(row[name]) for row in part[rows])
            if not types.keys() <= {datetime, type(None)}:
                return False
            datetimes += types[datetime]
        values = itertools.chain(
            *(itertools.chain.from_iterable(row.values() for row in part[rows])
              for rows in ("answers", "quarantine", "redactions")),
            part["seen_content"].values(), part["seen_response"].values(),
            itertools.chain.from_iterable(d.values() for d in part["names_seen"].values()))
        types = Counter(map(type, values))
        # a datetime anywhere else would come back as text
        return types.keys() <= _PLAIN | {datetime} and types[datetime] == datetimes
    except (KeyError, TypeError, AttributeError):
        return False


def decode(data: bytes) -> dict:
    """A part `encode` wrote; ValueError when it is not one (the file is staged again)."""
    try:
        part = json.loads(data.decode("utf-8"))   # not orjson: a whole number past 64 bits
        for rows, name in _DATETIMES.items():
            part[rows] = [{**row, name: _datetime(row[name])} for row in part[rows]]
        for key in ("redactions", "seen_content", "seen_response", "names_seen"):
            part[key]   # noqa: B018 - present, or KeyError
    except (UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a kept staging part ({exc!r})") from exc
    return part


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if type(value) is not datetime:   # a subclass (pd.Timestamp) would come back as this
        raise TypeError(f"not kept: {type(value).__name__}")
    return value.isoformat()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
