"""The adjudication queue: discrepancies written as XLSX and CSV for the researchers.

In: coding.discrepancies, earlier adjudications (to pre-fill decisions), the codebooks (each
code's label and category, and a codebook tab). Out: the queue workbook and CSV in reports/.
Every cell is written as text (`neutralise`: no cell is ever run as a formula).
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pandas as pd

from pipeline.core.parallel import map_forked
from pipeline.core.reconciliation.discrepancies import DISCREPANCY_COLUMNS
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import code_digest, fingerprint, frame_digest

QUEUE_FILL_COLUMNS = ["decision", "reason", "adjudicator"]
# the code's label and category, beside its ids (read from the codebooks when the queue is
# written; the importer ignores them)
QUEUE_LABEL_COLUMNS = ["code_label", "category"]
_AT_CODE = DISCREPANCY_COLUMNS.index("code_id") + 1
QUEUE_COLUMNS = [*DISCREPANCY_COLUMNS[:_AT_CODE], *QUEUE_LABEL_COLUMNS,
                 *DISCREPANCY_COLUMNS[_AT_CODE:], "status", *QUEUE_FILL_COLUMNS]
QUEUE_STATUS_ORDER = ("open", "decided", "stale")   # open items first
# queue rows from which its XLSX and CSV are written in two forked processes at once
# (core.parallel.map_forked): at a million answers, coding/adjudications 17.3 s -> 15.9 s
PARALLEL_MIN_ROWS = 100_000
QUEUE_SHEET, CODEBOOK_SHEET = "queue", "codebook"
APPLY, DO_NOT_APPLY = "apply", "do not apply"   # the decisions the queue offers
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """Text a spreadsheet shows as text: a cell starting with = + - @ tab or CR gets a ' in
    front (OWASP CSV injection advice), so it is never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unneutralise(text: str) -> str:
    """Undo neutralise() on a cell read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def queue_frame(discrepancies: pd.DataFrame, existing_adjudications: pd.DataFrame | None = None,
                codebooks: list | None = None) -> pd.DataFrame:
    """The queue: discrepancies plus the code's label and category, status, decision, reason,
    adjudicator, pre-filled from earlier adjudications (first row per id). Earlier decisions
    whose discrepancy no longer exists are kept as rows with status 'stale', so a re-export
    loses nothing. Open rows come first, then decided, then stale (each in discrepancy
    order)."""
    q = discrepancies.reindex(columns=DISCREPANCY_COLUMNS).astype(object)
    labels = _code_labels(codebooks or [])
    keys = list(zip(q["framework"], q["code_id"], strict=True))
    q["code_label"] = [labels.get(k, ("", ""))[0] for k in keys]
    q["category"] = [labels.get(k, ("", ""))[1] for k in keys]
    q["keyword_applied"] = q["keyword_applied"].map({True: "yes", False: "no"}).fillna("")
    for col in QUEUE_FILL_COLUMNS:
        q[col] = ""
    q["status"] = "open"
    if existing_adjudications is not None and len(existing_adjudications):
        prev = existing_adjudications.drop_duplicates("discrepancy_id").set_index(
            "discrepancy_id")
        prev = prev.assign(decision=prev["decision_text"].where(
            prev["decision_text"].fillna("") != "", prev["decision"]))
        known = q["discrepancy_id"].isin(prev.index)
        for col in QUEUE_FILL_COLUMNS:
            q.loc[known, col] = q.loc[known, "discrepancy_id"].map(prev[col]).fillna("")
        q.loc[known & (q["decision"] != ""), "status"] = "decided"
        stale = prev[~prev.index.isin(q["discrepancy_id"])].reset_index()
        if len(stale):
            stale = stale.reindex(columns=QUEUE_COLUMNS).fillna("")
            stale["status"] = "stale: no longer a discrepancy"
            q = pd.concat([q, stale], ignore_index=True)
    rank = q["status"].map(lambda s: next((i for i, p in enumerate(QUEUE_STATUS_ORDER)
                                           if str(s).startswith(p)), len(QUEUE_STATUS_ORDER)))
    q = q.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
    return q[QUEUE_COLUMNS].fillna("")


def _code_labels(codebooks: list) -> dict[tuple[str, str], tuple[str, str]]:
    """(framework, code_id) -> (label, category label) from loaded Codebooks."""
    return {(b.framework, c.code_id): (c.label, b.dimension_labels.get(c.dimension, c.dimension))
            for b in codebooks for c in b.codes}


def _default_codebooks() -> list:
    """The configured codebooks (SURVEY_CODEBOOKS or codebooks/), for the queue's labels and
    its codebook tab when the caller passes none; none when they cannot be read (the queue is
    then written without labels, never not written)."""
    from pipeline import settings
    from pipeline.core.coding.codebook import CodebookError, load_codebooks

    try:
        return load_codebooks([settings.codebook_dir()])
    except (CodebookError, OSError):
        return []


def write_queue(discrepancies: pd.DataFrame, xlsx_path: str | Path | None,
                csv_path: str | Path | None,
                existing_adjudications: pd.DataFrame | None = None,
                codebooks: list | None = None, kept: ResultCache | None = None,
                key: str | None = None) -> dict:
    """Write the adjudication queue as XLSX and/or CSV (None skips a format).

    Open rows first; each code's label and category beside its ids (from `codebooks`, loaded
    Codebook objects; default: the configured codebooks). The XLSX's first row says how many
    discrepancies are left to decide, the header is its second row (frozen, filtered), and a
    second tab ('codebook') holds every code's definition, when to use it and when not.
    Every cell is written as text: in the XLSX as a string (the bulk renderer of
    `exchange.spreadsheet`, strings_to_formulas off) with Excel's quote-prefix ("text") flag
    on cells that start like a formula; in the CSV (header first, no count line) such cells
    get a leading '. The decision column offers 'apply' / 'do not apply' in the XLSX. Files
    are written atomically (pipeline.core.files).
    `kept`: a result cache holding the files last written, keyed by the queue's rows, the
    codebook tab and the code writing them (or by `key`, a key of everything the queue is
    made of, for `kept_queue`); while those are the same (a refresh whose new session nobody
    has double-coded yet), the kept bytes are copied instead of writing the files again.
    Returns counts: n_rows, n_open, n_decided, n_stale.
    """
    if codebooks is None:
        codebooks = _default_codebooks()
    q = queue_frame(discrepancies, existing_adjudications, codebooks)
    status = q["status"]
    counts = {"n_rows": len(q), "n_open": int((status == "open").sum()),
              "n_decided": int((status == "decided").sum()),
              "n_stale": int(status.str.startswith("stale").sum())}
    if key is None and kept is not None:
        key = fingerprint("adjudication queue", _code(), frame_digest(q),
                          frame_digest(codebook_tab(codebooks)))
    text = _as_text(q[QUEUE_COLUMNS])

    def write(job: tuple[str, Path]) -> None:
        slot, path = job
        if slot == "xlsx":
            _write_xlsx(text, path, counts, codebooks)
        else:
            _write_csv(text, path)

    todo = []
    for path, slot in ((xlsx_path, "xlsx"), (csv_path, "csv")):
        if path is not None and (kept is None or not _copy_kept(kept, key, slot, Path(path))):
            todo.append((slot, Path(path)))
    # the two files are independent: a large queue's are written on two cores at once
    if len(q) >= PARALLEL_MIN_ROWS:
        map_forked(write, todo)
    else:
        for job in todo:
            write(job)
    if kept is not None:
        for slot, path in todo:
            with path.open("rb") as fh:
                kept.store(key, iter(lambda fh=fh: fh.read(1 << 20), b""), slot=slot)
        kept.store(key, json.dumps(counts).encode(), slot="counts")
    return counts


def inputs_key(*inputs: object) -> str:
    """A key for `write_queue(..., key=...)` and `kept_queue` from fingerprints of everything
    the queue is made of (the discrepancies, the earlier decisions, the codebooks)."""
    return fingerprint("adjudication queue/inputs", _code(), *inputs)


def kept_queue(kept: ResultCache, key: str, xlsx_path: str | Path | None,
               csv_path: str | Path | None) -> dict | None:
    """The queue's counts after copying its files kept under `key` (`write_queue(...,
    key=key)`) to the paths, without reading the discrepancies; None when anything is missing
    (a file may then be copied already: the caller writes both)."""
    data = kept.load(key, slot="counts")
    try:
        counts = {k: int(v) for k, v in json.loads(data).items()} if data is not None else None
    except (ValueError, AttributeError, TypeError):
        counts = None
    if counts is None:
        return None
    for path, slot in ((xlsx_path, "xlsx"), (csv_path, "csv")):
        if path is not None and not _copy_kept(kept, key, slot, Path(path)):
            return None
    return counts


def _copy_kept(kept: ResultCache, key: str, slot: str, path: Path) -> bool:
    from pipeline.core.files import atomic_path

    data = kept.open(key, slot=slot)
    if data is None:
        return False
    with data, atomic_path(path) as tmp, tmp.open("wb") as out:
        shutil.copyfileobj(data, out, 1 << 20)
    return True


@functools.cache
def _code() -> str:
    """The code writing the queue's files (a key part of the kept ones)."""
    import pipeline.core.reconciliation.queue as queue
    from pipeline.core.exchange import spreadsheet, xlsx_rows

    return code_digest(queue, spreadsheet, xlsx_rows)


def queue_count_line(counts: dict) -> str:
    """The queue workbook's first row: what is left to decide."""
    total = counts["n_open"] + counts["n_decided"]
    line = (f"{counts['n_open']} of {total} discrepancies left to decide "
            f"({counts['n_decided']} decided")
    line += f", {counts['n_stale']} stale)" if counts["n_stale"] else ")"
    return line + (". Fill in decision (apply / do not apply), reason and adjudicator; "
                   "open rows are first.")


def write_queue_csv(queue: pd.DataFrame, path: Path) -> None:
    """The queue's columns as CSV, the header first, each cell neutralised."""
    _write_csv(_as_text(queue[QUEUE_COLUMNS]), path)


def _write_csv(text: pd.DataFrame, path: Path) -> None:
    """write_queue_csv of the queue's cells as text already (`_as_text`)."""
    from pipeline.core.exchange.spreadsheet import write_csv

    write_csv(text, path)


CODEBOOK_TAB_COLUMNS = ["framework", "category", "code_id", "code_label", "definition",
                        "use_when", "not_when", "description"]


def codebook_tab(codebooks: list) -> pd.DataFrame:
    """The codebook tab of the queue: one row per code with its meaning."""
    rows = [{"framework": b.label, "category": b.dimension_labels.get(c.dimension, c.dimension),
             "code_id": c.code_id, "code_label": c.label, "definition": c.definition,
             "use_when": c.use_when, "not_when": c.not_when, "description": c.description}
            for b in codebooks for c in b.codes]
    return pd.DataFrame(rows, columns=CODEBOOK_TAB_COLUMNS)


def _write_xlsx(queue: pd.DataFrame, path: Path, counts: dict, codebooks: list) -> None:
    """The workbook, through the bulk renderer (`exchange.spreadsheet`: constant_memory,
    inline strings, the quote-prefix flag on a cell that starts like a formula): a count line
    above the header, the decision column offering the two decisions, the codebook tab
    after. `queue`: its cells as text already (`_as_text`)."""
    from pipeline.core.exchange.spreadsheet import add_table_sheet, open_workbook
    from pipeline.core.files import atomic_path

    with atomic_path(path) as tmp:
        wb = open_workbook(tmp)
        try:
            ws = add_table_sheet(wb, QUEUE_SHEET, queue,
                                 {"answer_text": 60, "keyword_evidence": 30, "reason": 40,
                                  "decision": 14, "code_label": 24, "category": 20},
                                 first_row=1, title=queue_count_line(counts))
            d = QUEUE_COLUMNS.index("decision")
            ws.data_validation(2, d, max(len(queue), 1) + 1, d, {
                "validate": "list", "source": [APPLY, DO_NOT_APPLY], "error_type": "warning"})
            ws.freeze_panes(2, 1)
            add_table_sheet(wb, CODEBOOK_SHEET, _as_text(codebook_tab(codebooks)),
                            {"definition": 50, "use_when": 50, "not_when": 50,
                             "description": 40, "code_label": 24, "framework": 24})
        finally:
            wb.close()


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the text the queue shows: '' for None, else str()."""
    return pd.DataFrame({c: [v if isinstance(v, str) else "" if v is None else str(v)
                             for v in frame[c]] for c in frame.columns},
                        index=frame.index, columns=frame.columns)
