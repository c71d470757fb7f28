"""The coded answers for reading: reports/coded_answers.xlsx and .csv.

The rows are the view `marts.coded_answers` (warehouse/queries/13_coded_answers.sql): one per
answer with its school year, session, pseudonymous school, role, question, redacted text, final
codes as labels, the category of each, how each was decided (agreed, adjudicated, machine) and
the evidence. The workbook's first tab holds them (filters, frozen header); a second tab says
what each column means. Beyond a worksheet's 1,048,575 rows below the header, the rows go on in
tabs "coded answers (2)", "(3)"... (the CSV holds every row in one table).

The rows are in school-year, session, question order. The roster check and the rendering of
the rows run per session (`names_in_coded_answers`, `spreadsheet.RunsKept`): a session whose rows
are unchanged since the last run reuses its result from the result cache, so the refresh after a
new session's export checks and renders that session's rows. `ViewRows` digests what the view
reads for each session (DuckDB) and reads a session's rows only when they must be checked,
rendered or counted, by the view's SQL on that session's rows: the refresh reads the new
session's rows, not the million others, and does not run the view over them either.
"""

from __future__ import annotations

import bisect
import functools
import json
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.core.exchange.spreadsheet import (
    FrameRuns,
    RunsKept,
    add_table_sheet,
    open_workbook,
    run_name,
    write_csv,
)
from pipeline.core.files import atomic_path
from pipeline.core.privacy import name_scan
from pipeline.core.privacy.name_scan import FuzzyNameScan, frame_texts
from pipeline.core.privacy.redact import roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import (
    Joined,
    code_digest,
    fingerprint,
    rows_fingerprint,
    session_fingerprints,
)
from pipeline.core.warehouse.views import VIEWS, view_sql

VIEW = "marts.coded_answers"
RUNS = ("school_year", "session_number")   # the view's rows are sorted by these first
CACHE_FILES = 4000   # result-cache entries kept per folder: one or two per session
COLUMNS = {
    "answer_id": "the answer's stable id (`survey-pipeline explain ANSWER_ID` shows everything "
                 "about it)",
    "school_year": "school year",
    "session_number": "surveyed session within the year",
    "school_id": "pseudonymous school",
    "role": "the respondent's role",
    "question_id": "`worked` or `improve`",
    "question": "the question asked",
    "answer_text": "the answer, names redacted",
    "non_substantive": "yes for 'NA', 'nothing' and the like",
    "n_codes": "final codes on the answer",
    "codes": "the final codes' labels ('; ' between codes)",
    "categories": "the category of each code, in the same order",
    "provenance": "how each code was decided, in the same order: agreed (both coders), "
                  "adjudicated, or machine (a suggester or the keyword coder standing in for "
                  "the coders in a year nobody coded by hand)",
    "decided_by": "who decided each code, in the same order",
    "evidence": "per code, the words that support it: the keyword coder's matched text, else "
                "the suggester's sentence",
    "undecided": "codes the two coders disagree on, still waiting for an adjudicator",
}
WIDTHS = {"answer_text": 60, "codes": 36, "categories": 30, "provenance": 24, "evidence": 50,
          "question": 30, "decided_by": 18, "undecided": 24}


def read_coded_answers(con) -> pd.DataFrame:
    """The view's rows (the view is created with the marts: `views.create_views`)."""
    return con.execute(f"select * from {VIEW}").df()


class ViewRows:
    """The view's rows as runs of sessions, for a connection that stays open while they are
    written: what `spreadsheet.FrameRuns` offers (`columns`, length, `runs`, `digest`, `rows`),
    without running the view over every answer when few sessions are read.

    The view has one row per answer, in school-year and session order, so each session's run
    is its answers' count. Its digest is a DuckDB fingerprint of what the view reads for that
    session: the session's answers, the final codes, keyword applications and suggestions of
    those answers (count and sum of row hashes per session, one grouped query per table), the
    codebook's codes, those tables' column types and the view's SQL (the file's). Rows are
    read only when asked for (a session's check, rendering or counts not kept): the sessions
    the check needs in one go (`prefetch`), a rendering's session with every later one (`rows`).
    A few sessions are made by the view's SQL run on just their rows (copied into an
    in-memory database: at a million answers, a session in about a second where the view
    takes ten), more than half of the answers by the view's SQL over every row.

    `cache`: each session's counts (`counts`), kept under its digest."""

    SESSION_TABLES = ("coding.final_codes", "coding.keyword_applications", "coding.suggestions")
    SHARED_TABLES = ("coding.codebook_codes",)
    ANSWER_COLUMNS = ("answer_id", "school_year", "session_number", "school_id", "role",
                      "question_id", "answer_text", "non_substantive")

    def __init__(self, con, cache: ResultCache | None = None):
        self._con = con
        self._cache = cache
        self.columns = list(COLUMNS)
        self._sql = view_sql(VIEWS[VIEW])
        prints = session_fingerprints(con, self.ANSWER_COLUMNS,
                                      [Joined(table) for table in self.SESSION_TABLES])
        shared = [rows_fingerprint(con, table) for table in self.SHARED_TABLES]
        types = con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database() and schema_name || '.' || table_name "
            f"in ({', '.join('?' for _ in self._tables())}) "
            "order by schema_name, table_name, column_index", list(self._tables())).fetchall()
        self.runs: list[tuple[str, int, int]] = []
        self._sessions: list[tuple[str, int | None]] = []
        self._prints: list[str] = []
        start = 0
        for p in prints:
            session = (p.school_year, p.session_number)
            count = p.answers[0]
            self.runs.append((run_name(session), start, start + count))
            self._sessions.append(session)
            self._prints.append(fingerprint("coded answers session", _code(), self._sql, types,
                                            shared, p.answers, p.joined))
            start += count
        self._starts = [start for _, start, _ in self.runs]
        self._read: dict[int, pd.DataFrame] = {}
        self._counts: dict[int, dict] = {}
        for i, (slot, _start, _stop) in enumerate(self.runs):
            kept = cache.load(self._counts_key(i), slot=slot) if cache is not None else None
            try:
                counts = {k: int(json.loads(kept)[k]) for k in COUNTS}
            except (TypeError, ValueError, KeyError):
                continue
            self._counts[i] = counts

    def _counts_key(self, i: int) -> str:
        return fingerprint("coded answers counts/1", self._prints[i])

    def _tables(self) -> tuple[str, ...]:
        return ("staging.answers", *self.SESSION_TABLES, *self.SHARED_TABLES)

    def __len__(self) -> int:
        return self.runs[-1][2] if self.runs else 0

    def _run(self, start: int, stop: int) -> int:
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or stop > self.runs[i][2] or start >= stop:
            raise ValueError(f"rows {start}..{stop - 1} are not within one session")
        return i

    def digest(self, start: int, stop: int) -> str:
        i = self._run(start, stop)
        first = self.runs[i][1]
        return fingerprint(self._prints[i], start - first, stop - first)

    def rows(self, start: int, stop: int) -> pd.DataFrame:
        """The rows start..stop-1 of one session. A session not read yet is read with every
        later one not read yet: its check was kept, so its rows are asked for because its
        rendering was not (the rendering's cache lost, or its code changed), and then the
        later sessions' renderings are missed too (an XLSX row also carries its number)."""
        i = self._run(start, stop)
        first = self.runs[i][1]
        if i not in self._read:
            self.prefetch([self.runs[j][1] for j in range(i, len(self.runs))
                           if j not in self._read])
        return self._read[i].iloc[start - first:stop - first]

    def prefetch(self, starts: list[int]) -> None:
        """Read, in one go, the sessions of these rows that are not read yet, with every
        session whose counts are not kept."""
        wanted = {self._run(start, start + 1) for start in starts}
        wanted |= {i for i in range(len(self.runs)) if i not in self._counts}
        wanted = sorted(wanted - self._read.keys())
        if not wanted:
            return
        whole = sum(self.runs[i][2] - self.runs[i][1] for i in wanted) * 2 > len(self)
        frame = self._view() if whole else self._view_of(wanted)
        position = 0
        for i in (range(len(self.runs)) if whole else wanted):
            name, first, last = self.runs[i]
            part = frame.iloc[position:position + last - first]
            position += last - first
            if len(part) != last - first or any(
                    run_name((y, n)) != name for y, n in zip(
                        part["school_year"].iloc[[0, -1]], part["session_number"].iloc[[0, -1]],
                        strict=True)):
                raise ValueError(f"{VIEW}: the rows of session {name} are not one run "
                                 "(the view's order by is not school year, session first)")
            if i in self._read:
                continue
            self._read[i] = part.set_axis(pd.RangeIndex(first, last))
            if i not in self._counts:
                self._counts[i] = _counts(part)
                if self._cache is not None:
                    self._cache.store(self._counts_key(i),
                                      json.dumps(self._counts[i]).encode(), slot=name)
        if position != len(frame):
            raise ValueError(f"{VIEW}: {len(frame)} rows where the answers make {position}")

    def _view(self) -> pd.DataFrame:
        """Every row: the view's SQL (the file's, which the digests name, whether or not the
        view in the warehouse was made from this version of it)."""
        return self._con.execute(f"select {', '.join(self.columns)} from ({self._sql})").df()

    def _view_of(self, wanted: list[int]) -> pd.DataFrame:
        """The view's SQL on the rows it reads for these sessions only: their answers, the
        session tables' rows of those answers and the shared tables, copied through Parquet
        files (exact types) into an in-memory database."""
        sessions = [self._sessions[i] for i in wanted]
        where = " or ".join("(school_year is not distinct from ? "
                            "and session_number is not distinct from ?)" for _ in sessions)
        params = [v for session in sessions for v in session]
        ids = f"select answer_id from staging.answers where {where}"
        reads = {"staging.answers": (f"select * from staging.answers where {where}", params),
                 **{t: (f"select * from {t} where answer_id in ({ids})", params)
                    for t in self.SESSION_TABLES},
                 **{t: (f"select * from {t}", []) for t in self.SHARED_TABLES}}
        with tempfile.TemporaryDirectory(prefix="coded-answers-") as folder, \
                duckdb.connect() as part:
            for table, (sql, values) in reads.items():
                path = str(Path(folder) / f"{table}.parquet").replace("'", "''")
                self._con.execute(f"copy ({sql}) to '{path}' (format parquet)", values)
                schema = table.split(".")[0]
                part.execute(f"create schema if not exists {schema}")
                part.execute(f"create table {table} as select * from read_parquet('{path}')")
            return part.execute(f"select {', '.join(self.columns)} from ({self._sql})").df()

    def frame(self) -> pd.DataFrame:
        """Every row, in order."""
        return self._view()

    def counts(self) -> dict:
        """write_coded_answers' figures: each session's, kept or counted when read."""
        self.prefetch([])
        return {k: sum(c[k] for c in self._counts.values()) for k in COUNTS}

    def read_sessions(self) -> list[str]:
        """The sessions whose rows were read (the others' results were kept)."""
        return [self.runs[i][0] for i in sorted(self._read)]


COUNTS = ("answers", "coded_answers", "codes", "with_undecided")


@functools.cache
def _code() -> str:
    """This module's code: the digests' SQL and the counts (the rendering's and the check's
    code are in their own keys)."""
    return code_digest(sys.modules[__name__])


def _counts(frame: pd.DataFrame) -> dict:
    """write_coded_answers' figures of these rows."""
    n_codes = pd.to_numeric(frame["n_codes"], errors="coerce").fillna(0)
    return {"answers": len(frame), "coded_answers": int((n_codes > 0).sum()),
            "codes": int(n_codes.sum()),
            "with_undecided": int((frame["undecided"].fillna("") != "").sum())}


def write_coded_answers(frame: pd.DataFrame | ViewRows, xlsx_path: str | Path | None,
                        csv_path: str | Path | None, cache: ResultCache | None = None) -> dict:
    """Write the XLSX and/or CSV (None skips one); returns counts for the run's metadata.
    `frame`: the view's rows, or its `ViewRows`. `cache`: each session's rendered rows are
    kept there and reused while the session's rows (and where they start) are the same
    (`spreadsheet.RunsKept`)."""
    if isinstance(frame, ViewRows) and cache is None:
        frame = frame.frame()
    if isinstance(frame, pd.DataFrame):
        frame = frame.reindex(columns=list(COLUMNS))
    kept = RunsKept(cache, RUNS) if cache is not None else None
    if xlsx_path is not None:
        with atomic_path(xlsx_path) as tmp:
            wb = open_workbook(tmp)
            try:
                add_table_sheet(wb, "coded answers", frame, WIDTHS,
                                number_columns=("session_number", "n_codes"), kept=kept,
                                continued=True)
                about = pd.DataFrame({"column": list(COLUMNS), "meaning": list(COLUMNS.values())})
                add_table_sheet(wb, "columns", about, {"column": 18, "meaning": 100})
            finally:
                wb.close()
    if csv_path is not None:
        write_csv(frame, csv_path, kept)
    reuse = {"rows_reused": kept.reused, "rows_rendered": kept.rendered} if kept else {}
    return {**(frame.counts() if isinstance(frame, ViewRows) else _counts(frame)), **reuse}


def written_paths(reports_dir: str | Path) -> tuple[Path, Path]:
    out = Path(reports_dir)
    return out / "coded_answers.xlsx", out / "coded_answers.csv"


def names_in_coded_answers(frame: pd.DataFrame | ViewRows, roster: list,
                           cache: ResultCache | None) -> list[dict]:
    """`names_in_frames(roster, {"coded_answers": frame})`, checked one session at a time:
    each session's hits are kept in `cache` under a digest of its rows (`FrameRuns` or
    `ViewRows`), where they start, the roster and the check's code, so a refresh scans only
    the sessions whose rows changed. Same hits in the same order (by column, then row)."""
    table = frame if isinstance(frame, ViewRows) else FrameRuns(frame, RUNS)
    scan = FuzzyNameScan(roster)
    roster_digest = roster_fingerprint(roster)
    code = code_digest(name_scan)
    found: dict[int, list[dict]] = {}
    missed: dict[int, tuple[str, str, int, int]] = {}
    for i, (slot, start, stop) in enumerate(table.runs):
        key = fingerprint("coded_answers names", code, start, table.digest(start, stop),
                          roster_digest)
        kept = cache.load(key, slot=slot) if cache is not None else None
        try:
            found[i] = json.loads(kept)
        except (TypeError, ValueError):
            missed[i] = (key, slot, start, stop)
    if missed and isinstance(table, ViewRows):
        table.prefetch([start for _key, _slot, start, _stop in missed.values()])
    # every missed session's texts scanned at once on every core (one fork, not one a session)
    scan.scan_ahead(frame_texts(table.rows(start, stop)
                                for _key, _slot, start, stop in missed.values()))
    for i, (key, slot, start, stop) in missed.items():
        found[i] = scan.scan_frames({"coded_answers": table.rows(start, stop)})
        if cache is not None:
            cache.store(key, json.dumps(found[i]).encode(), slot=slot)
    hits = [hit for i in sorted(found) for hit in found[i]]
    order = {c: i for i, c in enumerate(table.columns)}
    return sorted(hits, key=lambda h: (order[h["column"]], int(h["row"])))
