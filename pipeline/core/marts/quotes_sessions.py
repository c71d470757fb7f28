"""marts.exemplar_quotes from candidates kept per session, so a refresh reads and ranks the new
session's answers only.

The quotes are chosen across years (years take turns, a school not yet quoted first), but the
work before that choice is per answer: which final codes count, the answer's text and length,
its keyword evidence, its rank within its code, year and school. `quotes.contenders` does that
work for a set of answers and keeps only the candidates the choice can ever reach; made per
session and joined, they give the quotes made over every answer at once (`quotes.quotes_from`;
tests/test_marts.py compares both). Each session's contenders are kept in the result cache
(`<cache>/results/quote_contenders/<year>-session-<n>--<key>.bin`, JSON), keyed by:

- DuckDB fingerprints of the session's rows: its answers (the columns the rule reads), the
  final codes of those answers and the keyword coder's applications to them (every column);
- the rule's settings (quotes per code, text length bounds, the keyword coder's name);
- the code: quotes.py, the marts module whose provenances it counts, and this module.

Each school year's contenders, its sessions' joined and reduced to those the choice can reach
whatever the other years hold (`quotes.year_contenders`: tens of rows per code instead of ten
per school), are kept beside them (`<year>-year--<key>.bin`), keyed by its sessions' keys. A
refresh reads nine kept years whole, and in the changed year its kept sessions and the new
session's rows.

What is still done on every run: the fingerprints (three grouped queries), reading the missed
sessions' rows (one query per table for all of them), and the choice over the years'
contenders.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys

import pandas as pd

from pipeline.core.marts import marts, quotes
from pipeline.core.parallel import map_forked
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.connection import table_columns
from pipeline.core.warehouse.fingerprint import (
    Joined,
    code_digest,
    fingerprint,
    session_fingerprints,
)

log = logging.getLogger(__name__)

FORMAT = "quote-contenders/1"
YEAR_FORMAT = "quote-contenders-year/1"   # a year's entry: keyed by its sessions' keys
MAX_FILES = 4000   # result-cache entries: one per session, for years of sessions
PARALLEL_MIN_ANSWERS = 20_000   # fewer answers to read: made in this process (a fork costs more)
READ_BATCH_ANSWERS = 250_000    # the missed sessions' rows are read this many answers at a time
ANSWER_COLUMNS = ("answer_id", "school_year", "question_id", "session_number", "school_id",
                  "answer_text", "non_substantive")
APPLICATION_COLUMNS = ("answer_id", "coder", "framework", "dimension", "code_id", "evidence")
_TABLES = ("staging.answers", "coding.final_codes", "coding.keyword_applications")


@functools.cache
def _code() -> str:
    return code_digest(quotes, marts, sys.modules[__name__])


def kept_quotes(con, cache: ResultCache | None, codes: pd.DataFrame | None, *,
                per_code: int = 5, min_chars: int = 40, max_chars: int = 300,
                keyword_coder: str = "keyword") -> tuple[pd.DataFrame, list[str], list[str]]:
    """(marts.exemplar_quotes, sessions reused, sessions computed) from the warehouse behind
    `con`. A school year whose sessions' keys all match its kept year entry is read whole
    from `cache` (its sessions count as reused); in another year each session's contenders
    come from `cache` when its key matches, else from its rows."""
    settings = dict(per_code=per_code, min_chars=min_chars, max_chars=max_chars,
                    keyword_coder=keyword_coder)
    prints = session_rows(con, keyword_coder)
    keys = {session: fingerprint(FORMAT, _code(), sorted(settings.items()), *session, rows)
            for session, rows in prints.items()}
    by_year: dict[str, list[tuple]] = {}
    for session in prints:
        by_year.setdefault(session[0], []).append(session)
    years: dict[str, pd.DataFrame] = {}
    open_years: dict[str, str] = {}   # year -> its key, for the years not kept whole
    for year, sessions in by_year.items():
        key = fingerprint(YEAR_FORMAT, [keys[s] for s in sessions])
        kept = cache.load(key, slot=f"{year}-year") if cache is not None else None
        frame = _decoded(kept, f"{year} (year)") if kept is not None else None
        if frame is None:
            open_years[year] = key
        else:
            years[year] = frame
    parts: dict[tuple, pd.DataFrame] = {}
    missed: list[tuple] = []   # sessions of those years not kept either
    for session in (s for year in open_years for s in by_year[year]):
        kept = cache.load(keys[session], slot=_slot(session)) if cache is not None else None
        frame = _decoded(kept, _label(session)) if kept is not None else None
        if frame is None:
            missed.append(session)
        else:
            parts[session] = frame
    # the sessions' and then the years' contenders are independent of each other: made (and
    # kept) side by side in forked workers when there are many answers (core.parallel); the
    # sessions' rows are read a batch of sessions at a time (READ_BATCH_ANSWERS)
    for batch in _batches(missed, {s: prints[s][0][0] for s in missed}):
        parts.update(_contenders(_read_sessions(con, batch, keyword_coder), settings,
                                 cache, keys))

    def year_of(year: str) -> pd.DataFrame:
        frame = quotes.year_contenders([parts[s] for s in by_year[year]], per_code=per_code)
        _keep(cache, frame, open_years[year], f"{year}-year")
        return frame

    workers = None if sum(prints[s][0][0] for s in missed) >= PARALLEL_MIN_ANSWERS else 1
    years.update(zip(open_years, map_forked(year_of, list(open_years), workers=workers),
                     strict=True))
    reused = [_label(s) for s in prints if s not in missed]
    return (quotes.quotes_from([years[y] for y in by_year], codes, per_code=per_code), reused,
            [_label(s) for s in missed])


def _batches(sessions: list[tuple], answers: dict[tuple, int]) -> list[list[tuple]]:
    """The sessions in order, cut into runs of at most READ_BATCH_ANSWERS answers (a larger
    session alone). At a million answers, reading every session's rows at once held 2.7 GB in
    this process while the workers copied what they touched of it."""
    batches: list[list[tuple]] = []
    size = 0
    for session in sessions:
        if not batches or size + answers[session] > READ_BATCH_ANSWERS:
            batches.append([])
            size = 0
        batches[-1].append(session)
        size += answers[session]
    return batches


def _contenders(read: dict[tuple, tuple], settings: dict, cache: ResultCache | None,
                keys: dict[tuple, str]) -> dict[tuple, pd.DataFrame]:
    """session -> its contenders (`quotes.contenders` of its rows in `read`), each kept in
    `cache` under its key; in forked workers when there are many answers."""
    def session_contenders(session: tuple) -> pd.DataFrame:
        part = quotes.contenders(*read[session], **settings)
        _keep(cache, part, keys[session], _slot(session))
        return part

    workers = None if sum(len(f[1]) for f in read.values()) >= PARALLEL_MIN_ANSWERS else 1
    return dict(zip(read, map_forked(session_contenders, list(read), workers=workers),
                    strict=True))


def _label(session: tuple[str, int | None]) -> str:
    year, number = session
    return f"{year} session {'?' if number is None else number}"


def _slot(session: tuple[str, int | None]) -> str:
    year, number = session
    return f"{year}-session-{'none' if number is None else number}"


def _keep(cache: ResultCache | None, frame: pd.DataFrame, key: str, slot: str) -> None:
    data = _encoded(frame) if cache is not None else None
    if data is not None:
        cache.store(key, data, slot=slot)


def session_rows(con, keyword_coder: str) -> dict[tuple[str, int | None], tuple]:
    """(school year, session) -> the fingerprints of its answers, their final codes and the
    keyword coder's applications to them (`fingerprint.session_fingerprints`), in school-year
    and session order (a missing session last); empty when a table is missing."""
    if not all(table_columns(con, t) for t in _TABLES):
        return {}
    joined = [Joined("coding.final_codes"),
              Joined("coding.keyword_applications", where="t.coder = ?",
                     params=(keyword_coder,))]
    return {(p.school_year, p.session_number): (p.answers, *p.joined)
            for p in session_fingerprints(con, ANSWER_COLUMNS, joined)}


def _read_sessions(con, sessions: list[tuple[str, int | None]], keyword_coder: str
                   ) -> dict[tuple, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """session -> (final codes, answers, keyword applications) of those sessions, read with one
    query per table."""
    where = " or ".join("(school_year is not distinct from ? "
                        "and session_number is not distinct from ?)" for _ in sessions)
    params = [v for s in sessions for v in s]
    ids = f"select answer_id from staging.answers where {where}"
    answers = con.execute(f"select {', '.join(ANSWER_COLUMNS)} from staging.answers "
                          f"where {where}", params).df()
    final = con.execute(f"select * from coding.final_codes where answer_id in ({ids})",
                        params).df()
    apps = con.execute(f"select {', '.join(APPLICATION_COLUMNS)} from "
                       f"coding.keyword_applications where coder = ? and answer_id in ({ids})",
                       [keyword_coder, *params]).df()
    label = answers["school_year"].astype(str) + "\x1f" + answers["session_number"].map(
        lambda s: "" if pd.isna(s) else str(int(s)))
    session_of = pd.Series(label.to_numpy(), index=answers["answer_id"])
    parts = [{k: g for k, g in f.groupby(f["answer_id"].map(session_of), sort=False)}
             for f in (final, answers, apps)]
    out = {}
    for year, session in sessions:
        k = f"{year}\x1f{'' if session is None else session}"
        out[(year, session)] = tuple(p.get(k, f.iloc[:0]) for p, f in
                                     zip(parts, (final, answers, apps), strict=True))
    return out


# A frame as JSON: each column's dtype and values; None, NaN and pd.NA kept apart (the rule
# tells a missing school given as None from one given as NaN, as pandas' isin does).

def _encoded(frame: pd.DataFrame) -> bytes | None:
    try:
        return json.dumps({"columns": [[c, str(frame[c].dtype), [_value(v) for v in frame[c]]]
                                       for c in frame.columns]},
                          ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        log.warning("quote contenders not kept (%s)", exc)
        return None


def _value(v: object) -> object:
    if v is None or isinstance(v, str | bool | int):
        return v
    if v is pd.NA:
        return {"na": 1}
    if isinstance(v, float) and math.isnan(v):
        return {"nan": 1}
    if hasattr(v, "item"):   # a NumPy scalar
        return _value(v.item())
    if isinstance(v, float):
        return v
    raise TypeError(f"a {type(v).__name__} value")


def _decoded(data: bytes, label: str) -> pd.DataFrame | None:
    try:
        columns = json.loads(data.decode("utf-8"))["columns"]
        return pd.DataFrame({c: pd.Series([_back(v) for v in values], dtype=dtype)
                             for c, dtype, values in columns})
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("kept quote contenders of %s unusable (%s): computing again", label, exc)
        return None


def _back(v: object) -> object:
    if isinstance(v, dict):
        return pd.NA if "na" in v else float("nan")
    return v
