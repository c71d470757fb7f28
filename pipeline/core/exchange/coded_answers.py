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
new session's export checks and renders that session's rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from pipeline.core.exchange.spreadsheet import (
    RunsKept,
    add_table_sheet,
    open_workbook,
    runs,
    write_csv,
)
from pipeline.core.files import atomic_path
from pipeline.core.privacy import name_scan
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import code_digest, fingerprint, frame_digest

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


def write_coded_answers(frame: pd.DataFrame, xlsx_path: str | Path | None,
                        csv_path: str | Path | None, cache: ResultCache | None = None) -> dict:
    """Write the XLSX and/or CSV (None skips one); returns counts for the run's metadata.
    `cache`: each session's rendered rows are kept there and reused while the session's rows
    (and where they start) are the same (`spreadsheet.RunsKept`)."""
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
    n_codes = pd.to_numeric(frame["n_codes"], errors="coerce").fillna(0)
    return {"answers": len(frame), "coded_answers": int((n_codes > 0).sum()),
            "codes": int(n_codes.sum()),
            "with_undecided": int((frame["undecided"].fillna("") != "").sum()),
            **({"rows_reused": kept.reused, "rows_rendered": kept.rendered} if kept else {})}


def written_paths(reports_dir: str | Path) -> tuple[Path, Path]:
    out = Path(reports_dir)
    return out / "coded_answers.xlsx", out / "coded_answers.csv"


def names_in_coded_answers(frame: pd.DataFrame, roster: list, cache: ResultCache | None
                           ) -> list[dict]:
    """`names_in_frames(roster, {"coded_answers": frame})`, checked one session at a time:
    each session's hits are kept in `cache` under a digest of its rows (index, columns,
    dtypes, values in order), the roster and the check's code, so a refresh scans only the
    sessions whose rows changed. Same hits in the same order (by column, then row)."""
    scan = FuzzyNameScan(roster)
    roster_digest = hashlib.sha256(
        "\x1f".join(sorted(e.full_name for e in roster)).encode()).hexdigest()
    code = code_digest(name_scan)
    hits: list[dict] = []
    for slot, start, stop in runs(frame, RUNS):
        part = frame.iloc[start:stop]
        key = fingerprint("coded_answers names", code, frame_digest(part), roster_digest)
        kept = cache.load(key, slot=slot) if cache is not None else None
        if kept is not None:
            try:
                hits.extend(json.loads(kept))
                continue
            except ValueError:
                pass
        found = scan.scan_frames({"coded_answers": part})
        if cache is not None:
            cache.store(key, json.dumps(found).encode(), slot=slot)
        hits.extend(found)
    order = {c: i for i, c in enumerate(frame.columns)}
    return sorted(hits, key=lambda h: (order[h["column"]], int(h["row"])))
