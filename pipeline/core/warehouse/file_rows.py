"""A school year's rows of the ingestion tables written export file by export file: a refresh
after one new session's export writes that export's rows only, and leaves the others' in place.

raw.survey_rows holds each loaded export's records; staging.answers, raw.redactions and the
staging entries of raw.quarantine hold what staging made of them. Each file's rows there depend
only on the file and on what the run knew before it (the files before it in the year, the
mapping, the roster, the code): a digest of all of that is the file's **key**
(`raw.file_key`, `staged_files.chain_keys`). A refresh used to rewrite the whole year of each
table: at 600,000 answers a year, most of those steps' time went on rows that did not change.

Here each file has a record in the result cache: its key -> the fingerprint (DuckDB's count and
sum of row hashes, `Slice.columns` only) of each table's rows for it. A file is **current** when
its record's key is its key now *and* every table still holds exactly the recorded rows for it
(rows written by anything else, an older code version or a hand edit, are never trusted).
Every other file is **stale**: `write` replaces its rows in each table and deletes the rows of
files that are not in the year any more, in one transaction, then records the stale files. The
tables then equal what writing the whole year at once gives, up to row order and the time
stamps of rows that were kept.

A table may name a file by a label rather than its name (staging.answers shows the name with
any roster name replaced, `Slice` says which); files with one label share their rows there, so
when one of them is stale all are, and a record also holds which files shared its label: a
file whose label-mates changed (one removed, one added) is stale too. A missing or damaged
record only means the file is written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import SQL_NAME, fingerprint

log = logging.getLogger(__name__)

FORMAT = "file-rows/2"
MAX_FILES = 4000   # result-cache entries: one per export file and step


@dataclass(frozen=True)
class Slice:
    """The rows of one table that a step writes per export file."""

    table: str
    column: str = "file_name"           # the table's column naming the file (or its label)
    where: tuple[tuple[str, str], ...] = ()   # more equalities: (("stage", "stage"),)
    columns: tuple[str, ...] = ()       # the columns fingerprinted (default: the whole row)


@dataclass
class FilePlan:
    """One school year of one step: which export files hold current rows, which need work."""

    kind: str                       # the step ("raw", "staging"): the records' slot prefix
    year: str
    slices: tuple[Slice, ...]
    keys: dict[str, str]            # file name -> its key, in the files' order
    values: dict[str, dict[str, str]]   # file name -> table -> how that table names it
    current: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    def only(self, files: list[str] | set[str]) -> FilePlan:
        """The plan for these of its files (the ones that loaded): rows of any other file go.
        A file sharing a table's name for its rows with one that left is written again."""
        keep = set(files)
        out = FilePlan(self.kind, self.year, self.slices,
                       {f: k for f, k in self.keys.items() if f in keep},
                       {f: v for f, v in self.values.items() if f in keep})
        gone = set(self.keys) - keep
        shared = {f for f in keep for s in self.slices
                  if any(self.value(f, s) == self.value(g, s) for g in gone)}
        out.current = [f for f in self.current if f in keep and f not in shared]
        out.stale = [f for f in out.keys if f not in out.current]
        return out

    def all_stale(self) -> FilePlan:
        """The plan with every file to be written again."""
        return FilePlan(self.kind, self.year, self.slices, self.keys, self.values, [],
                        list(self.keys))

    def value(self, file: str, s: Slice) -> str:
        return self.values.get(file, {}).get(s.table, file)

    def members(self, file: str, s: Slice) -> list[str]:
        """The plan's files whose rows the slice's table names as it names `file`'s."""
        return sorted(f for f in self.keys if self.value(f, s) == self.value(file, s))


def _where(s: Slice) -> tuple[str, list]:
    for name in (s.table, s.column, *(k for k, _ in s.where), *s.columns):
        if not SQL_NAME.fullmatch(name):
            raise ValueError(f"not a table or column name: {name!r}")
    return "".join(f' and "{k}" = ?' for k, _ in s.where), [v for _, v in s.where]


def prints(con, s: Slice, year: str) -> dict[str, tuple[int, int]]:
    """How the table names a file -> (rows, sum of hashes of `s.columns`) of the year's rows."""
    clause, params = _where(s)
    row = f"({', '.join(s.columns)})" if s.columns else "t"
    rows = con.execute(f'select "{s.column}", count(*), coalesce(sum(hash({row})), 0) '
                       f"from {s.table} t where school_year = ?{clause} group by all",
                       [year, *params]).fetchall()
    return {str(v): (int(n), int(h)) for v, n, h in rows}


def plan(con, cache: ResultCache | None, kind: str, year: str, keys: dict[str, str],
         slices: list[Slice], values: dict[str, dict[str, str]] | None = None,
         in_order: bool = False) -> FilePlan:
    """Which of the year's export files (`keys`: file name -> key, in the files' order) hold
    current rows in every slice's table (see the module's doc). `values`: file -> table ->
    the value its rows carry in the slice's column, where that is not the file name; a file is
    current only when the files sharing that value are the ones recorded with it.
    `in_order`: a stale file makes every file after it stale too, so the tables keep the year's
    rows in the files' order, as writing the whole year gives them."""
    from pipeline.core.warehouse.connection import ensure_tables

    ensure_tables(con, list(dict.fromkeys(s.table for s in slices)))
    out = FilePlan(kind, year, tuple(slices), dict(keys), dict(values or {}))
    written = {s: prints(con, s, year) for s in slices} if cache is not None else {}
    stale = set()
    for file, key in keys.items():
        record = _record(cache, kind, year, file, key) if cache is not None else None
        if record is None or not all(
                record["rows"].get(s.table) == written[s].get(out.value(file, s), (0, 0))
                and record["members"].get(s.table) == out.members(file, s) for s in slices):
            stale.add(file)
    order = list(keys)
    while True:
        before = set(stale)
        # files a table names alike share their rows there: one stale makes all of them stale
        for s in slices:
            values_stale = {out.value(f, s) for f in stale}
            stale |= {f for f in order if out.value(f, s) in values_stale}
        if in_order and stale:   # and every file after the first stale one
            stale |= set(order[min(order.index(f) for f in stale):])
        if stale == before:
            break
    out.current = [f for f in order if f not in stale]
    out.stale = [f for f in order if f in stale]
    return out


def _slot(kind: str, year: str, file: str) -> str:
    return f"{kind}-{year}-{hashlib.sha256(file.encode()).hexdigest()[:16]}"


def _record(cache: ResultCache, kind: str, year: str, file: str, key: str) -> dict | None:
    payload = cache.load(fingerprint(FORMAT, key), slot=_slot(kind, year, file))
    if payload is None:
        return None
    try:
        record = json.loads(payload)
        rows = {str(t): (int(n), int(h)) for t, (n, h) in record["rows"].items()}
        members = {str(t): [str(f) for f in m] for t, m in record["members"].items()}
        return {"rows": rows, "members": members}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s record of %s %s unusable (%s): writing its rows again", kind, year,
                    file, exc)
        return None


def write(con, plan: FilePlan, frames: dict[str, pd.DataFrame], cache: ResultCache | None,
          record: set[str] | None = None, after: Callable[[object], object] | None = None
          ) -> None:
    """Replace each slice's rows of the plan's stale files (and of files not in the plan)
    with `frames` (table -> the stale files' new rows) and run `after(con)`, in one
    transaction; once it is committed, record the stale files in `record` (default: all of
    them). A file left out of `record` (its rows failed a check) is written again on the next
    run; a record stored without its rows committed (a crash between the two) cannot match."""
    from pipeline.core.warehouse.connection import (
        ensure_tables,
        insert_frame,
        table_columns,
        transaction,
    )

    ensure_tables(con, list(dict.fromkeys(s.table for s in plan.slices)))
    with transaction(con):
        for s in plan.slices:
            clause, params = _where(s)
            keep = sorted({plan.value(f, s) for f in plan.current})
            gone = (f' and "{s.column}" not in ({", ".join("?" for _ in keep)})' if keep
                    else "")
            con.execute(f"delete from {s.table} where school_year = ?{clause}{gone}",
                        [plan.year, *params, *keep])
            frame = frames.get(s.table)
            if frame is not None:
                insert_frame(con, s.table, table_columns(con, s.table), frame)
        if after is not None:
            after(con)
    todo = [f for f in plan.stale if record is None or f in record]
    if cache is None or not todo:
        return
    written = {s: prints(con, s, plan.year) for s in plan.slices}
    for file in todo:
        entry = {"rows": {s.table: list(written[s].get(plan.value(file, s), (0, 0)))
                          for s in plan.slices},
                 "members": {s.table: plan.members(file, s) for s in plan.slices}}
        cache.store(fingerprint(FORMAT, plan.keys[file]), json.dumps(entry).encode(),
                    slot=_slot(plan.kind, plan.year, file))
