"""Staging's rows in the warehouse, export file by export file (core/warehouse/file_rows.py):
the queries the staging step runs so that a refresh reads, stages and writes the new export
only, while the year's tables end up as staging the whole year gives them.

- `raw_prints`: each file's raw rows as DuckDB fingerprints, for the files' keys
  (`staged_files.chain_keys`), instead of reading every raw row;
- `file_rows_reader`: one file's raw rows, read when that file is staged;
- `SLICES`: the three tables staging writes per file (staging.answers names a file by its
  label, the others by its name); `session_date` is left out of the answers' fingerprint,
  since a session's date depends on all of its files' rows;
- `update_session_dates`: each session's date set again over the year's rows, as
  `staging._session_dates` computes it, after a write;
- `year_answers`: the year's answers' columns the checks and the step's figures need;
- `stage_new_files`: the plan and the staging of the files it finds stale.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from pipeline.core.ingest import staged_files, staging
from pipeline.core.ingest.staging import ANSWER_COLUMNS
from pipeline.core.privacy.labels import identifier_guard
from pipeline.core.privacy.redact import roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse import file_rows
from pipeline.core.warehouse.file_rows import Slice, prints

SLICES = (
    Slice("staging.answers", columns=tuple(c for c in ANSWER_COLUMNS if c != "session_date")),
    Slice("raw.redactions"),
    Slice("raw.quarantine", where=(("stage", "stage"),)),
)


RAW_RECORDS = Slice("raw.survey_rows", columns=("row_number", "record"))


def raw_prints(con, year: str) -> dict[str, tuple[int, int]]:
    """File name -> (rows, sum of hashes of (row_number, record)) of the year's raw rows."""
    return prints(con, RAW_RECORDS, year)


def file_rows_reader(con, year: str):
    """A function of a file name giving its raw rows (row_number, record) in row order."""
    def read(file_name: str) -> pd.DataFrame | None:
        frame = con.execute("select file_name, row_number, record from raw.survey_rows "
                            "where school_year = ? and file_name = ? order by row_number",
                            [year, file_name]).df()
        return frame if len(frame) else None
    return read


# a session's date: its most common submission date (the earliest of a tie); answers without a
# session keep their own submission date
_SESSION_DATES = """
update staging.answers a set session_date = w.d
from (
    select a.rowid as row_id,
           case when a.session_number is null then cast(a.submitted_at as date) else m.d end
               as d
    from staging.answers a left join (
        select session_number, first(d order by n desc, d) as d
        from (select session_number, cast(submitted_at as date) as d, count(*) as n
              from staging.answers
              where school_year = $year and session_number is not null
                and submitted_at is not null
              group by all)
        group by all
    ) m using (session_number)
    where a.school_year = $year
) w
where a.rowid = w.row_id and a.session_date is distinct from w.d
"""


def update_session_dates(con, year: str) -> int:
    """Set every answer's session_date over the year's rows (inside the write's transaction:
    `file_rows.write`'s `after`); returns the rows changed."""
    return int(con.execute(_SESSION_DATES, {"year": year}).fetchone()[0])


def key_duplicates(con, year: str) -> dict[str, int]:
    """Rows of the year's answers beyond the first of their key, per key (the rows staged in
    one run are checked by the pandera model; this covers them with the rows kept)."""
    n, ids, pairs = con.execute(
        "select count(*), count(distinct answer_id), "
        "count(distinct (response_id, question_id)) from staging.answers "
        "where school_year = ?", [year]).fetchone()
    return {"answer_id": int(n - ids), "response_id, question_id": int(n - pairs)}


YEAR_COLUMNS = ["answer_id", "session_number", "submitted_at", "response_id", "question_id",
                "non_substantive", "file_name", "row_number"]


def year_answers(con, year: str) -> pd.DataFrame:
    """The year's answers' YEAR_COLUMNS in one order, however the writes left them (by file
    label, row and question id; the checks' outcomes and their cache key do not depend on
    which rows were kept)."""
    return con.execute(f"select {', '.join(YEAR_COLUMNS)} from staging.answers "
                       "where school_year = ? order by file_name, row_number, question_id",
                       [year]).df()


def preview(con, year: str, n: int = 10) -> pd.DataFrame:
    return con.execute("select answer_id, session_number, question_id, non_substantive, "
                       "answer_text from staging.answers where school_year = ? "
                       "order by file_name, row_number, question_id limit ?", [year, n]).df()


def quarantine_counts(con, year: str) -> tuple[dict[str, int], dict[str, int]]:
    """(level -> entries, reason -> entries) of the year's staging quarantine."""
    rows = con.execute("select level, reason, count(*) from raw.quarantine "
                       "where school_year = ? and stage = 'stage' group by all",
                       [year]).fetchall()
    levels: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for level, reason, n in rows:
        levels[level] = levels.get(level, 0) + int(n)
        reasons[str(reason)] = reasons.get(str(reason), 0) + int(n)
    return levels, dict(sorted(reasons.items()))


def stage_new_files(con, year: str, files: pd.DataFrame, mapping, roster: list, salt: str,
                    others, aliases, fuzzy, clean, records: ResultCache | None,
                    kept: ResultCache | None) -> tuple[file_rows.FilePlan, staging.StagedYear]:
    """Which of the year's loaded exports (`files`: raw.export_files) hold current rows in
    staging's tables (`records`: file_rows' records), and the staging of the others
    (`staging.stage_year`, their raw rows read from the warehouse; the current ones' state
    replayed from `kept`). When a current file's state is gone, every file is staged again.
    The caller scans and writes the result (`file_rows.write`)."""
    loaded = files[files["status"] == "loaded"].sort_values("file_name")
    keys = staged_files.chain_keys(
        staged_files.base_key(mapping, roster_fingerprint(roster), salt, aliases, others),
        loaded, raw_prints(con, year))
    guard = identifier_guard(roster)
    labels = {f.file_name: {"staging.answers": guard.file_label(f.file_name, f.file_sha256)}
              for f in loaded.itertuples()}
    plan = file_rows.plan(con, records, "staging", year, keys, list(SLICES), labels,
                          in_order=True)
    staged_at = datetime.now().replace(microsecond=0)

    def stage(in_warehouse: set[str]) -> staging.StagedYear:
        return staging.stage_year(
            files, file_rows_reader(con, year), mapping, roster, salt=salt,
            staged_at=staged_at, others=others, aliases=aliases, fuzzy=fuzzy, clean=clean,
            kept=kept, keys=keys, in_warehouse=in_warehouse)

    staged = stage(set(plan.current))
    if set(staged.files_kept) != set(plan.current):   # a kept file's state is gone
        plan = plan.all_stale()
        staged = stage(set())
    return plan, staged
