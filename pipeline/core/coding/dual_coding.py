"""Glue between the coder-sheet import, the agreement statistics and reconciliation: the shapes
the warehouse stores, and the coder pairs compared."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.coding.coder_sheets import (  # noqa: F401 (the file names: re-exported)
    ADJUDICATION_NAMES,
    QUEUE_NAMES,
    SHEET_ROW_COLUMNS,
    candidate_files,
    coder_sheet_files,
    read_coder_sheets,
    reader_versions,
)
from pipeline.core.coding.keyword import HUMAN_COLUMNS
from pipeline.core.coding.sheet_validation import (
    distinct_rows,
    session_keys,
    sheet_codes,
    validate_coder_sheets,
)
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.privacy.redact import Redactor
from pipeline.core.warehouse.connection import empty_frame, table_columns
from pipeline.core.warehouse.fingerprint import fingerprint, query_fingerprint

KEYWORD = "keyword"


def redact_columns(frame: pd.DataFrame, redactor: Redactor, columns) -> pd.DataFrame:
    """Free text typed by coders and adjudicators (notes, reasons) can name people too. Each
    distinct text is redacted once (the redactor is a pure function of the text; notes and
    reasons repeat a lot)."""
    frame = frame.copy()
    for column in columns:
        if column in frame.columns:
            values = frame[column].tolist()
            distinct = list(dict.fromkeys(v for v in values if isinstance(v, str)))
            redacted = dict(zip(distinct, redactor.redact_all(distinct), strict=True))
            frame[column] = [redacted[v] if isinstance(v, str) else v for v in values]
    return frame


def import_sheets(sheet_dir: str | Path, answers: pd.DataFrame | Callable, codebooks,
                  redactor: Redactor, refs: tuple | None = None, key: str | None = None,
                  year: str | None = None):
    """Read and validate every coder sheet in `sheet_dir`; notes and quarantine texts are
    redacted (the sheets themselves are the raw record). `answers`: staging.answers' rows, or
    a function giving `sheet_answers` for the sheets' references (say, a query of the
    warehouse: `warehouse_sheet_answers`), so the import never holds every answer.

    Returns (applications in coding.human_applications' shape, units, quarantine, unaccounted):
    `unaccounted` lists sheet rows naming a code that became neither an application nor a
    quarantine row (always empty unless the validator has a bug: a check asserts it).
    `year`: only that school year's applications and units (the quarantine and the
    unaccounted rows are the whole import's, as ever).

    The result is kept (frame_memo) under a key of exactly what it depends on: the sheet files'
    bytes, the answers the sheets can refer to (sheet_answers), the codebooks and the
    redactor's roster; `key`, when the caller has such a key already (`import_key`: the
    answers as a DuckDB fingerprint), so a kept import is found without reading them. A
    refresh that adds a session nobody has coded yet reads it back instead of parsing and
    validating every sheet again. The applications and units are kept per school year, so a
    year's call reads its own. `refs`: what `sheet_refs` gave for the folder, when the caller
    has it already."""
    folder = Path(sheet_dir)
    found = refs if refs is not None else sheet_refs(folder)
    if found is None:
        return _no_sheets()
    files_key, refs, rows = found

    def relevant() -> pd.DataFrame:   # validation looks at no other answer (sheet_answers)
        return answers(refs) if callable(answers) else sheet_answers(answers, refs)

    read = None
    if key is None:
        read = relevant()
        key = frame_memo.key("coder sheet import", files_key, read,
                             sheet_codes(codebooks), redactor.roster_fingerprint)
    else:
        key = frame_memo.key("coder sheet import, keyed", key)
    stored = _kept_import(key, year)
    if stored is not None:
        return stored
    files = coder_sheet_files([folder])
    if not files:
        return _no_sheets()
    # the sheets parsed once per import (read above for the references, or now)
    rows = rows if rows is not None else read_coder_sheets(files)
    result = _import(rows, read if read is not None else relevant(), codebooks, redactor)
    _keep_import(key, result)
    return _of_year(result, year)


IMPORT_KIND = "coder_sheet_import"
IMPORT_FILES_KEPT = 400   # parquet files: per import, two per school year and five more


def _keep_import(key: str, result: tuple) -> None:
    """The import under `key`: its quarantine and unaccounted rows, each school year's
    applications and units, those without a school year, and the list of the years (written
    last: it says the rest is there)."""
    apps, units, quarantine, unaccounted = result
    # each frame split by year in one pass (a year without rows in one: its empty slice)
    by_year = [dict(tuple(frame.groupby("school_year", sort=False))) for frame in (apps, units)]
    years = sorted({*by_year[0], *by_year[1]})
    parts = [("quarantine", quarantine), ("unaccounted", unaccounted)]
    for kind, groups, frame in (("applications", by_year[0], apps), ("units", by_year[1], units)):
        parts += [(f"{year}-{kind}", groups.get(year, frame.iloc[:0])) for year in years]
        parts.append((f"no-year-{kind}", frame[frame["school_year"].isna()]))
    parts.append(("years", pd.DataFrame({"school_year": pd.Series(years, dtype=object)})))
    for part, frame in parts:
        frame_memo.store(IMPORT_KIND, f"{key}-{part}", frame.reset_index(drop=True),
                         max_files=IMPORT_FILES_KEPT)


def _kept_import(key: str, year: str | None) -> tuple | None:
    """What `_keep_import` kept under `key`, as `_of_year` gives it from the import; None when
    any of it is missing."""
    years = frame_memo.load(IMPORT_KIND, f"{key}-years")
    if years is None or list(years.columns) != ["school_year"]:
        return None
    every = list(years["school_year"])
    wanted = [y for y in every if year is None or y == year]
    # a year nobody coded: another year's slices give the columns, with no row
    read = [*(wanted or every[:1]), *(["no-year"] if year is None or not every else [])]
    frames = {part: frame_memo.load(IMPORT_KIND, f"{key}-{part}")
              for part in ("quarantine", "unaccounted",
                           *(f"{y}-{kind}" for y in read for kind in ("applications", "units")))}
    if any(frame is None for frame in frames.values()):
        return None

    def joined(kind: str) -> pd.DataFrame:
        pieces = [frames[f"{y}-{kind}"] for y in read]
        if year is not None and not wanted:
            return pieces[0].iloc[:0]
        # the slices with rows: an empty one adds none, and its column types, as parquet
        # gives them back, may not be those of the years with rows
        pieces = [p for p in pieces if len(p)] or pieces[:1]
        return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]

    return joined("applications"), joined("units"), frames["quarantine"], frames["unaccounted"]


def _of_year(result: tuple, year: str | None) -> tuple:
    """The import's applications and units of `year`; with no year, all of them, by school
    year (those without one last), as `_kept_import` reads them back."""
    apps, units, quarantine, unaccounted = result

    def of(frame: pd.DataFrame) -> pd.DataFrame:
        if year is None:
            return frame.sort_values("school_year", kind="stable", na_position="last",
                                     ignore_index=True)
        return frame[frame["school_year"] == year].reset_index(drop=True)

    return of(apps), of(units), quarantine, unaccounted


def sheet_refs(folder: Path) -> tuple[str, pd.DataFrame, pd.DataFrame | None] | None:
    """The coder sheets' files key (their names and bytes, the readers' versions), the answers
    they refer to (answer_id and response_id cells; kept in the frame memo under that key) and
    their parsed rows when they had to be parsed for that (else None; an empty frame when the
    folder holds queues only). None: no file at all."""
    candidates = candidate_files([folder]) if folder.is_dir() else []
    if not candidates:
        return None
    files_key = frame_memo.key("coder sheet files", pd.DataFrame({
        "name": [f.name for f in candidates], "sha256": [file_sha256(f) for f in candidates]}),
        reader_versions())
    refs, rows = frame_memo.load("coder_sheet_refs", files_key), None
    if refs is None:
        # the folder's sheets (not its adjudication queues), each parsed once
        rows = read_coder_sheets([folder])
        refs = rows[["answer_id", "response_id"]].drop_duplicates().reset_index(drop=True)
        frame_memo.store("coder_sheet_refs", files_key, refs)
    return files_key, refs, rows


def import_key(con, found: tuple | None, codebooks, redactor: Redactor) -> str:
    """What `import_sheets` with `warehouse_sheet_answers` returns is a function of: the sheet
    files, the answers they can refer to (a DuckDB fingerprint of those rows, not the rows),
    the codebooks' codes and the roster, and the code (frame_memo.key). `found`: the folder's
    `sheet_refs`. For a step that keeps the tables it wrote from the import while this is the
    same."""
    if found is None:
        return frame_memo.key("coder sheet import key", "no sheets")
    files_key, refs, _rows = found
    return frame_memo.key("coder sheet import key", files_key,
                          fingerprint(_sheet_answers_print(con, refs)), sheet_codes(codebooks),
                          redactor.roster_fingerprint)


SHEET_ANSWER_COLUMNS = ("answer_id", "response_id", "school_year", "session_number",
                        "question_id", "answer_text", "non_substantive")


def _no_sheets():
    return (empty_frame("coding.human_applications"), empty_frame("coding.coder_units"),
            empty_frame("coding.sheet_quarantine"), pd.DataFrame(columns=SHEET_ROW_COLUMNS))


def sheet_answers(answers: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """The staging.answers rows coder sheets with these references (their answer_id and
    response_id cells) can depend on: the answers they name (by id, or by response id, of any
    question), and every answer of the sessions those belong to (a coder's units), sorted by
    answer id. Validation looks at no other answer."""
    ids = set(refs["answer_id"].dropna().astype(str)) - {""}
    rids = set(refs["response_id"].dropna().astype(str)) - {""}
    named = (answers["answer_id"].isin(ids)
             | answers["response_id"].astype(str).isin(rids)).to_numpy()
    keys = pd.Series(session_keys(answers), index=answers.index, dtype=object)
    relevant = named | keys.isin(set(keys[named])).to_numpy()
    columns = [c for c in SHEET_ANSWER_COLUMNS if c in answers.columns]
    return answers.loc[relevant, columns].sort_values("answer_id", kind="mergesort")


def warehouse_sheet_answers(con, refs: pd.DataFrame) -> pd.DataFrame:
    """`sheet_answers(staging.answers, refs)` as one DuckDB query: only those rows are read."""
    if not table_columns(con, "staging.answers"):   # nothing staged yet
        return empty_frame("staging.answers")[list(SHEET_ANSWER_COLUMNS)]
    return _sheet_answers_query(con, refs, lambda sql: con.execute(sql).df())


def _sheet_answers_print(con, refs: pd.DataFrame) -> tuple[int, int]:
    """(rows, sum of row hashes) of what `warehouse_sheet_answers` reads, without reading it."""
    if not table_columns(con, "staging.answers"):
        return (0, 0)
    return _sheet_answers_query(con, refs, lambda sql: query_fingerprint(con, sql))


def _sheet_answers_query(con, refs: pd.DataFrame, run):
    """`run(sql)` of the query of the answers the sheets' references can depend on."""
    ids = sorted(set(refs["answer_id"].dropna().astype(str)) - {""})
    rids = sorted(set(refs["response_id"].dropna().astype(str)) - {""})
    have = set(table_columns(con, "staging.answers"))
    columns = [c for c in SHEET_ANSWER_COLUMNS if c in have]
    con.register("_ids", pd.DataFrame({"v": pd.Series(ids, dtype=object)}))
    con.register("_rids", pd.DataFrame({"v": pd.Series(rids, dtype=object)}))
    try:
        return run(
            f"select {', '.join(columns)} from staging.answers a where exists ("
            "select 1 from staging.answers n where (n.answer_id in (select v from _ids) or "
            "cast(n.response_id as varchar) in (select v from _rids)) and "
            "n.school_year = a.school_year and "
            "n.session_number is not distinct from a.session_number) "
            "order by answer_id")
    finally:
        con.unregister("_ids")
        con.unregister("_rids")


def _import(rows: pd.DataFrame, answers: pd.DataFrame, codebooks, redactor: Redactor):
    """import_sheets' work on the coder sheets' rows (read_coder_sheets)."""
    apps, units, quarantine = validate_coder_sheets(rows, answers, sheet_codes(codebooks))
    apps = redact_columns(apps, redactor, ["note"])
    quarantine = redact_columns(quarantine, redactor, ["code", "reason", "answer_id"])
    key = ["source_file", "source_sheet", "source_row", "source_column"]
    named = rows[rows["code"].fillna("").astype(str).str.strip() != ""]
    # each row's key numbered (equal keys, equal numbers) over the named rows then the others
    both = pd.concat([named[key], apps[key], quarantine[key]], ignore_index=True)
    _first, number = distinct_rows([both[c].to_numpy() for c in key])
    unaccounted = named[~np.isin(number[:len(named)], number[len(named):])]
    meta = answers.set_index("answer_id")[["school_year", "question_id"]]
    out = apps.join(meta, on="answer_id")
    out["coder_kind"] = "human"
    return out[HUMAN_COLUMNS], units, quarantine, unaccounted


def keyword_units(answers: pd.DataFrame) -> pd.DataFrame:
    """The keyword coder codes every substantive answer."""
    sub = answers.loc[~answers["non_substantive"].astype(bool),
                      ["answer_id", "question_id", "school_year"]].copy()
    sub["coder"] = KEYWORD
    sub["basis"] = "all substantive"
    return sub


def coder_pairs(human_coders: list[str]) -> list[tuple[str, str]]:
    """Human A vs B, then each human vs the keyword coder."""
    humans = sorted(human_coders)
    return [*combinations(humans, 2), *((h, KEYWORD) for h in humans)]


def first_existing(folder: str | Path, names: tuple[str, ...]) -> Path | None:
    return next((Path(folder) / n for n in names if (Path(folder) / n).is_file()), None)
