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
new session's export checks and renders that session's rows. `ViewRows` runs the view once into
a temporary table, digests each session's rows there (DuckDB) and reads a session's rows only
when they must be checked or rendered: the refresh reads the new session's rows, not the
million others.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

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
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import code_digest, fingerprint

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
    written: what `spreadsheet.FrameRuns` offers (`columns`, length, `runs`, `digest`, `rows`).

    The view runs once, into a temporary table of the connection (in the view's order: row i
    is rowid i). Each session's row range and a DuckDB fingerprint of its rows come from one
    query there: the row count and the sum of the hashes of (rowid, row), so the rows' order
    counts, with the table's column names and types beside them (a row hash sees neither). A
    session's rows are read into pandas only when `rows` asks for them (its check or rendering
    is not kept), and held for the xlsx and csv.
    """

    TEMP = "coded_answers_rows"

    def __init__(self, con):
        self._con = con
        self.columns = list(COLUMNS)
        con.execute(f"create or replace temp table {self.TEMP} as "
                    f"select {', '.join(self.columns)} from {VIEW}")
        types = con.execute(f"select column_name, data_type from duckdb_columns() "
                            f"where database_name = 'temp' and table_name = '{self.TEMP}' "
                            f"order by column_index").fetchall()
        found = con.execute(
            f"select {', '.join(RUNS)}, min(rowid), max(rowid) + 1, count(*), "
            f"coalesce(sum(hash(rowid, t)), 0) from {self.TEMP} t group by all order by 3"
        ).fetchall()
        self.runs: list[tuple[str, int, int]] = []
        self._prints: list[str] = []
        for *values, start, stop, count, total in found:
            if stop - start != count or start != (self.runs[-1][2] if self.runs else 0):
                raise ValueError(f"{VIEW}: the rows of session {values} are not one run "
                                 "(the view's order by is not school year, session first)")
            self.runs.append((run_name(values), int(start), int(stop)))
            self._prints.append(fingerprint("coded answers session", types, int(count),
                                            int(total)))
        self._starts = [start for _, start, _ in self.runs]
        self._read: dict[int, pd.DataFrame] = {}

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
        i = self._run(start, stop)
        _, first, last = self.runs[i]
        if i not in self._read:
            part = self._con.execute(
                f"select * from {self.TEMP} where rowid >= ? and rowid < ? order by rowid",
                [first, last]).df()
            part.index = pd.RangeIndex(first, last)
            self._read[i] = part
        return self._read[i].iloc[start - first:stop - first]

    def frame(self) -> pd.DataFrame:
        """Every row, in order."""
        return self._con.execute(f"select * from {self.TEMP} order by rowid").df()

    def counts(self) -> dict:
        """write_coded_answers' figures, counted in DuckDB."""
        answers, coded, codes, undecided = self._con.execute(
            f"select count(*), count(*) filter (where n_codes > 0), "
            f"coalesce(sum(n_codes), 0), count(*) filter (where coalesce(undecided, '') <> '') "
            f"from {self.TEMP}").fetchone()
        return {"answers": int(answers), "coded_answers": int(coded), "codes": int(codes),
                "with_undecided": int(undecided)}

    def read_sessions(self) -> list[str]:
        """The sessions whose rows were read (the others' results were kept)."""
        return [self.runs[i][0] for i in sorted(self._read)]


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
    if isinstance(frame, ViewRows):
        return {**frame.counts(), **reuse}
    n_codes = pd.to_numeric(frame["n_codes"], errors="coerce").fillna(0)
    return {"answers": len(frame), "coded_answers": int((n_codes > 0).sum()),
            "codes": int(n_codes.sum()),
            "with_undecided": int((frame["undecided"].fillna("") != "").sum()), **reuse}


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
    hits: list[dict] = []
    for slot, start, stop in table.runs:
        key = fingerprint("coded_answers names", code, start, table.digest(start, stop),
                          roster_digest)
        kept = cache.load(key, slot=slot) if cache is not None else None
        if kept is not None:
            try:
                hits.extend(json.loads(kept))
                continue
            except ValueError:
                pass
        found = scan.scan_frames({"coded_answers": table.rows(start, stop)})
        if cache is not None:
            cache.store(key, json.dumps(found).encode(), slot=slot)
        hits.extend(found)
    order = {c: i for i, c in enumerate(table.columns)}
    return sorted(hits, key=lambda h: (order[h["column"]], int(h["row"])))
