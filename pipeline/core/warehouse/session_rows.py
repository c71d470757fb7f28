"""A school year's rows of a per-answer table written session by session: a refresh after one
new session's export reads, computes and writes that session's rows only.

A table like coding.keyword_applications holds rows derived from each answer on its own (the
keyword coder codes one answer's text at a time). A refresh of the year used to read every
answer of the year, code them all, delete the year's rows and insert them again; at 600,000
answers a year that is most of the step, for the ~1/10 of them the new export added.

Here the year is split into its sessions (staging.answers' school_year and session_number).
For each session the result cache holds a record: the fingerprint of the session's input rows
(DuckDB's count and sum of row hashes over the answer columns the work reads, with the code
version and settings) -> the fingerprint of the rows the work wrote to the table for them, and
what the step's checks found in them. A session is **current** when its record's key matches
its input rows now *and* the table's rows for its answers still have the recorded fingerprint
(so rows written by anything else, an older code version or a hand edit, are never trusted).
Every other session is **stale**: `write` replaces the table's rows of its answers with new
ones in one transaction, with rows whose answer left the year (an export withdrawn), and
records them. The table then equals what writing the whole year at once gives, up to row order.

Each step of the check is a grouped DuckDB query over the year's rows (no Python per row); a
missing or damaged record only means the session is computed again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pandas as pd

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import fingerprint

log = logging.getLogger(__name__)

ANSWERS = "staging.answers"
FORMAT = "session-rows/1"

Session = int | None   # a session number, None for answers without one


def slot_part(session: Session) -> str:
    return "none" if session is None else str(int(session))


def session_label(year: str, session: Session) -> str:
    return f"{year} session {'?' if session is None else int(session)}"


@dataclass
class SessionPlan:
    """One school year of one table: which sessions are current, which need work."""

    kind: str                      # what the rows are ("keyword"): the cache slots' prefix
    table: str
    year: str
    keys: dict[Session, str]       # session -> its record's key (its inputs, code, settings)
    current: dict[Session, dict]   # session -> its record's `extra` (what the checks found)
    stale: list[Session] = field(default_factory=list)

    @property
    def computed(self) -> list[str]:
        return [session_label(self.year, s) for s in self.stale]


def session_value(value) -> Session:
    return None if value is None or pd.isna(value) else int(value)


def input_prints(con, year: str, columns: list[str]) -> dict[Session, tuple[int, int]]:
    """Session -> (rows, sum of hashes of `columns`) of the year's answers."""
    row = ", ".join(columns)
    rows = con.execute(f"select session_number, count(*), coalesce(sum(hash({row})), 0) "
                       f"from {ANSWERS} where school_year = ? group by session_number",
                       [year]).fetchall()
    return {session_value(s): (int(n), int(h)) for s, n, h in rows}


def _filter(extra: dict | None) -> tuple[str, list]:
    """ and-clauses for more equalities on the table's rows (a slice of it)."""
    extra = extra or {}
    for name in extra:
        if not name.isidentifier():
            raise ValueError(f"not a column name: {name!r}")
    return "".join(f' and t."{k}" = ?' for k in extra), list(extra.values())


def table_prints(con, table: str, year: str, extra: dict | None = None
                 ) -> dict[Session, tuple[int, int]]:
    """Session -> (rows, sum of row hashes) of `table`'s rows of the year's answers, grouped by
    their answer's session (`extra`: more column = value conditions on the rows)."""
    clause, params = _filter(extra)
    rows = con.execute(
        f"select a.session_number, count(*), coalesce(sum(hash(t)), 0) from {table} t "
        f"join (select answer_id, session_number from {ANSWERS} where school_year = ?) a "
        f"on t.answer_id = a.answer_id where t.school_year = ?{clause} "
        "group by a.session_number", [year, year, *params]).fetchall()
    return {session_value(s): (int(n), int(h)) for s, n, h in rows}


_UNSTAGED = (" and (t.answer_id is null or t.answer_id not in "
             f"(select answer_id from {ANSWERS} where school_year = ?))")


def unstaged_rows(con, table: str, year: str, extra: dict | None = None) -> int:
    """The year's rows of `table` whose answer is not one of the year's staged answers."""
    clause, params = _filter(extra)
    return int(con.execute(f"select count(*) from {table} t where t.school_year = ?{clause}"
                           f"{_UNSTAGED}", [year, *params, year]).fetchone()[0])


def read_rows(con, table: str, year: str, sessions: list[Session], extra: dict | None = None,
              with_unstaged: bool = False) -> pd.DataFrame:
    """`table`'s rows of the answers of these sessions of the year (and, `with_unstaged`, its
    rows of the year whose answer is not staged in it)."""
    clause, params = _filter(extra)
    parts, args = [], []
    if sessions:
        parts.append(f"t.answer_id in (select answer_id from {ANSWERS} where school_year = ? "
                     f"and ({_where_sessions(sessions)}))")
        args += [year, *sessions]
    if with_unstaged:
        parts.append(_UNSTAGED.removeprefix(" and "))
        args.append(year)
    which = " or ".join(parts) or "false"
    return con.execute(f"select t.* from {table} t where t.school_year = ?{clause} "
                       f"and ({which})", [year, *params, *args]).df()


def plan(con, cache: ResultCache | None, kind: str, table: str, year: str,
         columns: list[str], settings: object, tables: tuple[str, ...] = ()) -> SessionPlan:
    """Which of the year's sessions hold current rows in `table` (see the module's doc).
    `columns`: the answer columns the work reads; `settings`: everything else its rows depend
    on (code version, codebook versions, ...), any value with a stable repr; `tables`: other
    per-answer tables the work reads the session's rows of (their rows are part of its key,
    as `table_prints` gives them)."""
    from pipeline.core.warehouse.connection import ensure_tables

    ensure_tables(con, [table])
    inputs = input_prints(con, year, columns)
    upstream = [table_prints(con, t, year) for t in tables]
    written = table_prints(con, table, year) if cache is not None else {}
    out = SessionPlan(kind, table, year, {}, {})
    for session in sorted(inputs, key=lambda s: (s is None, s or 0)):
        key = fingerprint(FORMAT, kind, table, year, session, columns, settings,
                          inputs[session],
                          *((t, rows.get(session, (0, 0))) for t, rows in zip(tables, upstream,
                                                                              strict=True)))
        out.keys[session] = key
        record = _record(cache, kind, year, session, key) if cache is not None else None
        if record is not None and tuple(record["rows"]) == written.get(session, (0, 0)):
            out.current[session] = record["extra"]
        else:
            out.stale.append(session)
    return out


def _slot(kind: str, year: str, session: Session) -> str:
    return f"{kind}-{year}-session-{slot_part(session)}"


def _record(cache: ResultCache, kind: str, year: str, session: Session, key: str
            ) -> dict | None:
    payload = cache.load(key, slot=_slot(kind, year, session))
    if payload is None:
        return None
    try:
        record = json.loads(payload)
        rows = [int(v) for v in record["rows"]]
        if len(rows) != 2 or not isinstance(record["extra"], dict):
            raise ValueError("not a (rows, hash) pair and a mapping")
        return {"rows": rows, "extra": record["extra"]}
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s record of %s unusable (%s): computing it again", kind,
                    session_label(year, session), exc)
        return None


def _where_sessions(sessions: list[Session]) -> str:
    return " or ".join("session_number is not distinct from ?" for _ in sessions)


def read_answers(con, year: str, sessions: list[Session], columns: list[str]) -> pd.DataFrame:
    """The answers of these sessions of the year (`columns`, plus session_number), in the
    table's order."""
    if not sessions:
        return con.execute(f"select {', '.join(columns)}, session_number from {ANSWERS} "
                           "where false").df()
    return con.execute(f"select {', '.join(columns)}, session_number from {ANSWERS} "
                       f"where school_year = ? and ({_where_sessions(sessions)})",
                       [year, *sessions]).df()


def write(con, plan: SessionPlan, rows: pd.DataFrame, extras: dict[Session, dict],
          cache: ResultCache | None, columns: list[str]) -> None:
    """Replace the table's rows of the stale sessions' answers (and of answers no longer in
    the year) with `rows`, in one transaction, then record each stale session: the rows it now
    has and its entry of `extras` (what the checks found in its rows). `columns`: the table's
    columns, in order."""
    from pipeline.core.warehouse.connection import ensure_tables, insert_frame, transaction

    ensure_tables(con, [plan.table])
    year, table = plan.year, plan.table
    with transaction(con):
        con.execute(f"delete from {table} where school_year = ? and answer_id not in "
                    f"(select answer_id from {ANSWERS} where school_year = ?)", [year, year])
        if plan.stale:
            con.execute(f"delete from {table} where school_year = ? and answer_id in "
                        f"(select answer_id from {ANSWERS} where school_year = ? and "
                        f"({_where_sessions(plan.stale)}))", [year, year, *plan.stale])
        insert_frame(con, table, columns, rows)
    if cache is None or not plan.stale:
        return
    written = table_prints(con, table, year)
    for session in plan.stale:
        record = {"rows": list(written.get(session, (0, 0))), "extra": extras.get(session, {})}
        cache.store(plan.keys[session], json.dumps(record).encode(),
                    slot=_slot(plan.kind, year, session))
