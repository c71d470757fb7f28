"""Adjudications: the filled queue read back, one row per decision and one per problem.

In: the queue file as the researchers filled it (XLSX or CSV) and the current discrepancies.
Out: coding.adjudications (ADJUDICATION_COLUMNS, decisions normalised to 'apply' / 'do not
apply') and coding.adjudication_problems (PROBLEM_COLUMNS, a reason per row).

One school year's reconciliation needs only its discrepancies' decisions (`decisions_for`):
the file is parsed once per process for every id and each year takes its own ids' rows, where
reading it against each year's discrepancies parsed it again for every year (at a million
answers a 109 MB file, ~5 s a parse, about 30 parses in a full build: every year's
reconciliation and every year's suggester training set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.coding.coder_sheets import norm_key, read_tables
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.reconciliation.queue import APPLY, DO_NOT_APPLY, unneutralise

ADJUDICATION_COLUMNS = [
    "discrepancy_id", "decision", "decision_text", "reason", "adjudicator", "accepted",
    "source_file", "source_row",
]
PROBLEM_COLUMNS = ["source_file", "source_row", "column_name", "discrepancy_id", "reason"]
DECISIONS = {
    **dict.fromkeys(["apply", "applies", "applied", "yes", "y", "1", "true", "keep", "include",
                     "code", "agree"], APPLY),
    **dict.fromkeys(["do_not_apply", "don_t_apply", "dont_apply", "not_apply", "do_not",
                     "not_applied", "no", "n", "0", "false", "reject", "remove", "exclude",
                     "drop"], DO_NOT_APPLY),
}


def _header_row(header: list[str], rows: list) -> tuple[None, list[str], list]:
    """The header is the first row that names 'discrepancy_id' among the first few (the queue
    workbook puts a count line above it); else the first row."""
    candidates = [(1, header), *rows[:4]]
    for k, (_n, cells) in enumerate(candidates):
        if any(norm_key(c) == "discrepancy_id" for c in cells):
            rest = [(n, c) for n, c in candidates[k + 1:]] + list(rows[4:])
            return None, list(cells), rest
    return None, header, rows


def normalise_decision(text: str) -> str | None:
    """'apply' / 'do not apply' from what people type (yes/no, 1/0, Apply, DON'T APPLY...)."""
    return DECISIONS.get(norm_key(text))


def read_adjudications(path: str | Path, discrepancies: pd.DataFrame
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a filled queue (XLSX: tab 'queue' or the first tab; or CSV) -> (adjudications,
    problems).

    adjudications: every row with a discrepancy id and something filled in (decision, reason or
    adjudicator), with `decision` normalised ('apply' / 'do not apply' / None), the text as
    typed in `decision_text`, and `accepted` = the decision counts (valid, known id, an
    adjudicator, no conflicting row). problems: one row per problem (source_file, source_row,
    column_name, discrepancy_id, reason). Rows with nothing filled in are open, not problems.
    """
    return _read(Path(path), set(discrepancies["discrepancy_id"]))


# the last file `decisions_for` parsed: (path, sha256) -> its rows read with every id known
_PARSED: dict[tuple[str, str], tuple[pd.DataFrame, pd.Index]] = {}   # (rows, their ids)


def decisions_for(path: str | Path, discrepancies: pd.DataFrame) -> pd.DataFrame:
    """The adjudications of `read_adjudications(path, discrepancies)` whose id is one of these
    discrepancies (what one year's reconciliation applies), the same rows, values and index.
    The file is parsed once per process and content, with every id in it taken as known, and
    each call takes its ids' rows: an id's acceptance depends only on its own rows (a
    decision, an adjudicator, no conflicting row for the same id), so knowing other ids
    changes nothing for these. Only the last file is kept (at a million answers its 291,704
    filled rows, a 130 MB frame in memory). It is kept only when the file's bytes were the
    same before and after the parse (not rewritten meanwhile)."""
    path = Path(path)
    # the path as given, not resolved: the rows name the file (source_file) by it
    key = (str(path.absolute()), file_sha256(path))
    kept = _PARSED.get(key)
    if kept is None:
        parsed, _problems = _read(path, None)
        # the ids' hash table is built once per parsed file (pandas keeps it with the Index):
        # each call looks its own ids up instead of testing every row of the file against them
        kept = parsed, pd.Index(parsed["discrepancy_id"])
        _PARSED.clear()
        if file_sha256(path) == key[1]:
            _PARSED[key] = kept
    parsed, ids = kept
    wanted = pd.unique(discrepancies["discrepancy_id"].to_numpy(dtype=object))
    at = ids.get_indexer_non_unique(wanted)[0]
    return parsed.iloc[np.sort(at[at >= 0])].copy()


def _read(path: Path, known: set | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`read_adjudications` against the ids in `known` (None: every id is known)."""
    tables = list(read_tables(path))
    sheet = next((t for t in tables if t[0] == "queue"), tables[0] if tables else None)
    if sheet is None:
        return (pd.DataFrame(columns=ADJUDICATION_COLUMNS), pd.DataFrame(columns=PROBLEM_COLUMNS))
    _name, header, rows = _header_row(*sheet[1:])
    col = {}
    for i, h in enumerate(header):
        col.setdefault(norm_key(h), i)
    adjudications, problems = [], []

    def problem(row, column, did, reason):
        problems.append({"source_file": path.name, "source_row": row, "column_name": column,
                         "discrepancy_id": did or None, "reason": reason})

    if "discrepancy_id" not in col or "decision" not in col:
        problem(1, None, None, "the header needs 'discrepancy_id' and 'decision' columns")
        return (pd.DataFrame(columns=ADJUDICATION_COLUMNS), _problem_frame(problems))
    # only the four columns read (a queue row has some twenty); a missing one reads as ''
    used = [(k, col[k]) for k in ("discrepancy_id", "decision", "reason", "adjudicator")
            if k in col]
    for n, cells in rows:
        get = {k: unneutralise(cells[i]) if i < len(cells) else "" for k, i in used}.get
        did, text = get("discrepancy_id", ""), get("decision", "")
        reason, who = get("reason", ""), get("adjudicator", "")
        unknown = known is not None and did not in known
        if not (text or reason or who):
            if did and unknown:
                problem(n, "discrepancy_id", did, _unknown(did))
            continue
        if not did:
            problem(n, "discrepancy_id", None, "decision filled in but no discrepancy id")
            continue
        decision = normalise_decision(text) if text else None
        ok = True
        if unknown:
            problem(n, "discrepancy_id", did, _unknown(did))
            ok = False
        if text and decision is None:
            problem(n, "decision", did, f"bad decision {text!r} (use 'apply' or 'do not apply')")
            ok = False
        if decision is not None and not who:
            problem(n, "adjudicator", did, "decision without an adjudicator (who decided?)")
            ok = False
        adjudications.append({"discrepancy_id": did, "decision": decision, "decision_text": text,
                              "reason": reason, "adjudicator": who,
                              "accepted": ok and decision is not None,
                              "source_file": path.name, "source_row": n})
    adj = pd.DataFrame(adjudications, columns=ADJUDICATION_COLUMNS)
    _check_duplicates(adj, problem)
    adj["accepted"] = adj["accepted"].astype(bool)
    return adj, _problem_frame(problems)


def _unknown(did: str) -> str:
    return (f"unknown discrepancy id {did!r}: not in the current discrepancies (the coders "
            "may now agree, or the id was changed); decision ignored")


def _check_duplicates(adj: pd.DataFrame, problem) -> None:
    """Several decided rows for one id: identical ones after the first are ignored, conflicting
    ones all lose their acceptance (the discrepancy stays unresolved)."""
    decided = adj[adj["decision"].notna()]
    # only ids decided more than once (iterating every decided id's group was most of the cost)
    decided = decided[decided["discrepancy_id"].duplicated(keep=False)]
    for did, grp in decided.groupby("discrepancy_id", sort=False):
        if len(grp) < 2:
            continue
        first_row = int(grp["source_row"].iloc[0])
        if grp["decision"].nunique() > 1:
            rows = ", ".join(str(r) for r in grp["source_row"])
            for idx, row in zip(grp.index, grp["source_row"], strict=True):
                problem(int(row), "decision", did, f"conflicting decisions for {did} in rows "
                                                   f"{rows}; none is used")
                adj.at[idx, "accepted"] = False
        else:
            for idx, row in zip(grp.index[1:], grp["source_row"].iloc[1:], strict=True):
                problem(int(row), "discrepancy_id", did,
                        f"duplicate of row {first_row} (same decision); ignored")
                adj.at[idx, "accepted"] = False


def _problem_frame(problems: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    out["source_row"] = out["source_row"].astype("int64")
    return out
