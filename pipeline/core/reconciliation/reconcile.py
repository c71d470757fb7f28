"""Reconciling two human coders: discrepancies, the adjudication queue, final codes.

- `discrepancies`: one row per (answer, code) the two coders decided differently.
- `write_queue` / `read_adjudications`: the queue as XLSX and CSV for the researchers, and the
  filled file read back with a problem report per row.
- `final_codes`: agreed + adjudicated codes, undecided discrepancies as 'unresolved', and a
  machine stand-in's codes for school years nobody coded by hand (the meaning-based
  suggestions, `suggestion_standin`, or the keyword coder's codes, `keyword_standin`); each row
  says who decided.

The workflow and the rules are in docs/reconciliation.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd

from pipeline.core.coding.coder_sheets import norm_key, read_tables
from pipeline.core.files import atomic_path
from pipeline.core.frames import CODE_KEY
from pipeline.core.ingest.ids import QUESTION_IDS

DISCREPANCY_COLUMNS = [
    "discrepancy_id", "answer_id", "school_year", "question_id", "framework", "dimension",
    "code_id", "answer_text", "coder_a", "decision_a", "coder_b", "decision_b",
    "keyword_applied", "keyword_evidence",
]
QUEUE_FILL_COLUMNS = ["decision", "reason", "adjudicator"]
QUEUE_COLUMNS = [*DISCREPANCY_COLUMNS, "status", *QUEUE_FILL_COLUMNS]
ADJUDICATION_COLUMNS = [
    "discrepancy_id", "decision", "decision_text", "reason", "adjudicator", "accepted",
    "source_file", "source_row",
]
PROBLEM_COLUMNS = ["source_file", "source_row", "column_name", "discrepancy_id", "reason"]
FINAL_COLUMNS = [
    "answer_id", "school_year", "question_id", "framework", "dimension", "code_id",
    "provenance", "decided_by", "discrepancy_id",
]
PROVENANCES = ("agreed", "adjudicated", "unresolved", "trained_suggestion",
               "zero_shot_suggestion", "keyword")
# provenance of a stand-in row, by coding.suggestions.source
SUGGESTION_PROVENANCE = {"trained": "trained_suggestion", "zero_shot": "zero_shot_suggestion"}
STANDIN_COLUMNS = ["answer_id", "framework", "dimension", "code_id", "provenance", "decided_by"]
KEYWORD_CODER = "keyword coder"
SUGGESTER = "suggester"
APPLY, DO_NOT_APPLY = "apply", "do not apply"
DECISIONS = {
    **dict.fromkeys(["apply", "applies", "applied", "yes", "y", "1", "true", "keep", "include",
                     "code", "agree"], APPLY),
    **dict.fromkeys(["do_not_apply", "don_t_apply", "dont_apply", "not_apply", "do_not",
                     "not_applied", "no", "n", "0", "false", "reject", "remove", "exclude",
                     "drop"], DO_NOT_APPLY),
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def discrepancy_id(answer_id: str, framework: str, code_id: str) -> str:
    """Stable id of one (answer, code): the same on every run and for either coder order."""
    raw = "\x1f".join((str(answer_id), str(framework), str(code_id)))
    return "D" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------------- discrepancies


def _keyword_frame(keyword_applications: pd.DataFrame) -> pd.DataFrame:
    """Keyword applications keyed by answer_id (matcher frames call the column 'id')."""
    kw = keyword_applications
    if "answer_id" not in kw.columns and "id" in kw.columns:
        kw = kw.rename(columns={"id": "answer_id"})
    if "evidence" not in kw.columns:
        kw = kw.assign(evidence="[]")
    return kw


def _matched_texts(evidence: object) -> str:
    items = json.loads(evidence) if isinstance(evidence, str) and evidence else []
    return " | ".join(dict.fromkeys(str(e.get("matched_text", "")) for e in items))


def discrepancies(applications: pd.DataFrame, units: pd.DataFrame, answers: pd.DataFrame,
                  keyword_applications: pd.DataFrame, coder_a: str, coder_b: str
                  ) -> pd.DataFrame:
    """One row per (answer, code) where coder_a and coder_b decided differently.

    Over the answers both coders coded, a code one applied and the other did not. A code
    applied on an answer only one of them coded is also listed (decision of the other coder:
    'not coded'), so nothing a single coder decided is taken as agreed. decision_a/decision_b
    are 'applied', 'not applied' or 'not coded'. Columns: DISCREPANCY_COLUMNS.
    """
    if coder_a == coder_b:
        raise ValueError(f"discrepancies compare two coders, got {coder_a!r} twice")
    coded = {c: set(units.loc[units["coder"] == c, "answer_id"]) for c in (coder_a, coder_b)}
    apps = applications[applications["coder"].isin([coder_a, coder_b])]
    by_key: dict[tuple, set[str]] = {}
    for row in apps[["answer_id", *CODE_KEY, "coder"]].itertuples(index=False):
        by_key.setdefault(tuple(row[:4]), set()).add(row.coder)

    kw = _keyword_frame(keyword_applications)
    kw_evidence = {(a, f, c): _matched_texts(e) for a, f, c, e in
                   zip(kw["answer_id"], kw["framework"], kw["code_id"], kw["evidence"],
                       strict=True)}
    info = answers.set_index("answer_id")

    def decision(coder: str, answer: str, appliers: set[str]) -> str:
        if coder in appliers:
            return "applied"
        return "not applied" if answer in coded[coder] else "not coded"

    rows = []
    for (answer, framework, dimension, code_id), appliers in by_key.items():
        if len(appliers) == 2:
            continue
        kw_key = (answer, framework, code_id)
        rows.append({
            "discrepancy_id": discrepancy_id(answer, framework, code_id), "answer_id": answer,
            "school_year": info.at[answer, "school_year"],
            "question_id": info.at[answer, "question_id"],
            "framework": framework, "dimension": dimension, "code_id": code_id,
            "answer_text": info.at[answer, "answer_text"],
            "coder_a": coder_a, "decision_a": decision(coder_a, answer, appliers),
            "coder_b": coder_b, "decision_b": decision(coder_b, answer, appliers),
            "keyword_applied": kw_key in kw_evidence,
            "keyword_evidence": kw_evidence.get(kw_key, ""),
        })
    out = pd.DataFrame(rows, columns=DISCREPANCY_COLUMNS)
    out["keyword_applied"] = out["keyword_applied"].astype(bool)
    return _in_order(out)


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """School year, then question ('worked' before 'improve'), answer, code."""
    rank = {q: i for i, q in enumerate(QUESTION_IDS)}
    return frame.sort_values(
        ["school_year", "question_id", "answer_id", *CODE_KEY], ignore_index=True,
        key=lambda col: col.map(rank) if col.name == "question_id" else col)


# --------------------------------------------------------------------------------- the queue


def neutralise(value: object) -> str:
    """Text a spreadsheet shows as text: a cell starting with = + - @ tab or CR gets a ' in
    front (OWASP CSV injection advice), so it is never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unneutralise(text: str) -> str:
    """Undo neutralise() on a cell read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def queue_frame(discrepancies: pd.DataFrame, existing_adjudications: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """The queue: discrepancies plus status, decision, reason, adjudicator, pre-filled from
    earlier adjudications (first row per id). Earlier decisions whose discrepancy no longer
    exists are kept as rows with status 'stale' at the end, so a re-export loses nothing."""
    q = discrepancies.reindex(columns=DISCREPANCY_COLUMNS).astype(object)
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
    return q[QUEUE_COLUMNS].fillna("")


def write_queue(discrepancies: pd.DataFrame, xlsx_path: str | Path | None,
                csv_path: str | Path | None,
                existing_adjudications: pd.DataFrame | None = None) -> dict:
    """Write the adjudication queue as XLSX and/or CSV (None skips a format).

    Every cell is written as text: in the XLSX with write_string, strings_to_formulas off and
    Excel's quote-prefix ("text") flag on cells that start like a formula; in the CSV such
    cells get a leading '. The decision column offers 'apply' / 'do not apply' in the XLSX.
    Returns counts: n_rows, n_open, n_decided, n_stale.
    """
    q = queue_frame(discrepancies, existing_adjudications)
    if xlsx_path is not None:
        with atomic_path(xlsx_path) as tmp:   # a crash leaves the previous file, never 0 bytes
            _write_xlsx(q, tmp)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            write_queue_csv(q, tmp)
    status = q["status"]
    return {"n_rows": len(q), "n_open": int((status == "open").sum()),
            "n_decided": int((status == "decided").sum()),
            "n_stale": int(status.str.startswith("stale").sum())}


def write_queue_csv(queue: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(QUEUE_COLUMNS)
        for row in queue[QUEUE_COLUMNS].itertuples(index=False):
            w.writerow([neutralise(v) for v in row])


def _write_xlsx(queue: pd.DataFrame, path: Path) -> None:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    try:
        ws = wb.add_worksheet("queue")
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
        text = wb.add_format({"text_wrap": True, "valign": "top"})
        quoted = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
        widths = {"answer_text": 60, "keyword_evidence": 30, "reason": 40, "decision": 14}
        for j, col in enumerate(QUEUE_COLUMNS):
            ws.write_string(0, j, col, head)
            ws.set_column(j, j, widths.get(col, 16))
        for i, row in enumerate(queue[QUEUE_COLUMNS].itertuples(index=False), start=1):
            for j, v in enumerate(row):
                v = "" if v is None else str(v)
                ws.write_string(i, j, v, quoted if v.startswith(FORMULA_START) else text)
        d = QUEUE_COLUMNS.index("decision")
        ws.data_validation(1, d, max(len(queue), 1), d, {
            "validate": "list", "source": [APPLY, DO_NOT_APPLY], "error_type": "warning"})
        ws.freeze_panes(1, 1)
        ws.autofilter(0, 0, max(len(queue), 1), len(QUEUE_COLUMNS) - 1)
    finally:
        wb.close()


# --------------------------------------------------------------------------------- re-import


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
    path = Path(path)
    tables = list(read_tables(path))
    sheet = next((t for t in tables if t[0] == "queue"), tables[0] if tables else None)
    if sheet is None:
        return (pd.DataFrame(columns=ADJUDICATION_COLUMNS), pd.DataFrame(columns=PROBLEM_COLUMNS))
    _name, header, rows = sheet
    col = {}
    for i, h in enumerate(header):
        col.setdefault(norm_key(h), i)
    known = set(discrepancies["discrepancy_id"])
    adjudications, problems = [], []

    def problem(row, column, did, reason):
        problems.append({"source_file": path.name, "source_row": row, "column_name": column,
                         "discrepancy_id": did or None, "reason": reason})

    if "discrepancy_id" not in col or "decision" not in col:
        problem(1, None, None, "the header needs 'discrepancy_id' and 'decision' columns")
        return (pd.DataFrame(columns=ADJUDICATION_COLUMNS), _problem_frame(problems))
    for n, cells in rows:
        get = {k: unneutralise(cells[i]) if i < len(cells) else "" for k, i in col.items()}.get
        did, text = get("discrepancy_id", ""), get("decision", "")
        reason, who = get("reason", ""), get("adjudicator", "")
        if not (text or reason or who):
            if did and did not in known:
                problem(n, "discrepancy_id", did, _unknown(did))
            continue
        if not did:
            problem(n, "discrepancy_id", None, "decision filled in but no discrepancy id")
            continue
        decision = normalise_decision(text) if text else None
        ok = True
        if did not in known:
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


# --------------------------------------------------------------------------------- final codes


def final_codes(applications: pd.DataFrame, units: pd.DataFrame, adjudications: pd.DataFrame,
                discrepancies: pd.DataFrame, standin: pd.DataFrame,
                answers: pd.DataFrame) -> pd.DataFrame:
    """The reconciled codes, one row per (answer, code), with provenance and who decided.

    - agreed: both human coders coded the answer and applied the code (decided_by 'a+b');
    - adjudicated: a discrepancy with an accepted 'apply' (decided_by = the adjudicator); an
      accepted 'do not apply' gives no row;
    - unresolved: a discrepancy with no accepted decision (decided_by empty) — never agreed;
    - in school years where nobody coded by hand (no row of `units` in that year), the rows of
      `standin` (columns STANDIN_COLUMNS), with their own provenance and decided_by: from
      `suggestion_standin` ('trained_suggestion' / 'zero_shot_suggestion', decided_by
      'suggester <model sha256 prefix>') or `keyword_standin` ('keyword', decided_by
      'keyword coder'). Stand-in rows of human-coded years are ignored.
    The two human coders are those named in `discrepancies` or, when it is empty, the coders in
    `units` (there must then be exactly two, or none). Columns: FINAL_COLUMNS.
    """
    coders = _human_coders(units, discrepancies)
    parts = []
    if coders:
        a, b = coders
        both = set(units.loc[units["coder"] == a, "answer_id"]) & set(
            units.loc[units["coder"] == b, "answer_id"])
        apps = applications[applications["answer_id"].isin(both)]
        keys = ["answer_id", *CODE_KEY]
        agreed = (apps[apps["coder"] == a][keys].drop_duplicates()
                  .merge(apps[apps["coder"] == b][keys].drop_duplicates(), on=keys))
        parts.append(agreed.assign(provenance="agreed", decided_by=f"{a}+{b}",
                                   discrepancy_id=None))
        disputed = set(zip(discrepancies["answer_id"], discrepancies["code_id"], strict=True))
        clash = [k for k in zip(agreed["answer_id"], agreed["code_id"], strict=True)
                 if k in disputed]
        if clash:
            raise ValueError(f"discrepancies are out of date: {len(clash)} agreed codes are "
                             f"also listed as discrepancies (e.g. {clash[0]})")
    parts.append(_decided(discrepancies, adjudications))
    parts.append(_standin_years(units, standin, answers))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=FINAL_COLUMNS)
    info = answers.set_index("answer_id")[["school_year", "question_id"]]
    out = out.drop(columns=["school_year", "question_id"], errors="ignore").join(
        info, on="answer_id")
    out = out.reindex(columns=FINAL_COLUMNS).astype(object).where(lambda f: f.notna(), None)
    return _in_order(out)


def keyword_standin(keyword_applications: pd.DataFrame) -> pd.DataFrame:
    """The keyword coder's codes as a stand-in for `final_codes`: provenance 'keyword',
    decided_by 'keyword coder'. Columns: STANDIN_COLUMNS."""
    kw = _keyword_frame(keyword_applications)
    return (kw[["answer_id", *CODE_KEY]].drop_duplicates()
            .assign(provenance="keyword", decided_by=KEYWORD_CODER)
            .reindex(columns=STANDIN_COLUMNS).reset_index(drop=True))


def suggestion_standin(suggestions: pd.DataFrame) -> pd.DataFrame:
    """coding.suggestions rows as a stand-in for `final_codes`: provenance 'trained_suggestion'
    or 'zero_shot_suggestion' (from `source`), decided_by 'suggester <model_sha256[:12]>'. One
    row per (answer, code): a code suggested twice keeps its trained row (then the higher
    probability). Columns: STANDIN_COLUMNS."""
    if suggestions is None or suggestions.empty:
        return pd.DataFrame(columns=STANDIN_COLUMNS)
    unknown = sorted(set(suggestions["source"].dropna()) - set(SUGGESTION_PROVENANCE))
    if unknown or suggestions["source"].isna().any():
        raise ValueError(f"coding.suggestions: unknown source(s) {unknown or [None]}; "
                         f"expected {sorted(SUGGESTION_PROVENANCE)}")
    s = suggestions.assign(
        provenance=suggestions["source"].map(SUGGESTION_PROVENANCE),
        decided_by=SUGGESTER + " " + suggestions["model_sha256"].fillna("").astype(str).str[:12],
        _trained=(suggestions["source"] == "trained").astype(int),
        _p=pd.to_numeric(suggestions.get("probability", 0.0), errors="coerce").fillna(0.0))
    s = s.sort_values(["_trained", "_p"], ascending=False, kind="mergesort")
    s = s.drop_duplicates(["answer_id", *CODE_KEY])
    return s.reindex(columns=STANDIN_COLUMNS).reset_index(drop=True)


def _human_coders(units: pd.DataFrame, discrepancies: pd.DataFrame) -> tuple[str, str] | None:
    if len(discrepancies):
        pairs = set(zip(discrepancies["coder_a"], discrepancies["coder_b"], strict=True))
        if len(pairs) != 1:
            raise ValueError(f"discrepancies name several coder pairs: {sorted(pairs)}")
        return pairs.pop()
    coders = sorted(units["coder"].unique())
    if not coders:
        return None
    if len(coders) != 2:
        raise ValueError(f"final codes need exactly two human coders, found {coders}")
    return coders[0], coders[1]


def _decided(discrepancies: pd.DataFrame, adjudications: pd.DataFrame) -> pd.DataFrame:
    ok = adjudications[adjudications["accepted"].astype(bool)] if len(adjudications) else \
        adjudications
    by_id = {d: (dec, who) for d, dec, who in
             zip(ok.get("discrepancy_id", []), ok.get("decision", []), ok.get("adjudicator", []),
                 strict=True)}
    rows = []
    for d in discrepancies.itertuples(index=False):
        decision, who = by_id.get(d.discrepancy_id, (None, None))
        if decision == DO_NOT_APPLY:
            continue
        rows.append({"answer_id": d.answer_id, "framework": d.framework,
                     "dimension": d.dimension, "code_id": d.code_id,
                     "provenance": "adjudicated" if decision == APPLY else "unresolved",
                     "decided_by": who if decision == APPLY else None,
                     "discrepancy_id": d.discrepancy_id})
    return pd.DataFrame(rows, columns=["answer_id", *CODE_KEY, "provenance", "decided_by",
                                       "discrepancy_id"])


def standin_by_year(suggestions: pd.DataFrame, keyword_applications: pd.DataFrame,
                    answers: pd.DataFrame) -> pd.DataFrame:
    """The stand-in `final_codes` takes: the suggestions in the school years coding.suggestions
    covers, the keyword coder's codes in the other years (so a warehouse without suggestions,
    or a year whose suggestions were not built yet, still gets codes). Each year has one kind
    of machine source. Columns: STANDIN_COLUMNS."""
    covered = set(suggestions["school_year"].dropna()) if len(suggestions) else set()
    years = answers.drop_duplicates("answer_id").set_index("answer_id")["school_year"]
    kw = keyword_standin(keyword_applications)
    kw = kw[~kw["answer_id"].map(years).isin(covered)]
    parts = [p for p in (suggestion_standin(suggestions), kw) if len(p)]
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame(columns=STANDIN_COLUMNS))


def _standin_years(units: pd.DataFrame, standin: pd.DataFrame,
                   answers: pd.DataFrame) -> pd.DataFrame:
    """The stand-in's rows on answers of school years without human coding."""
    missing = [c for c in STANDIN_COLUMNS if c not in standin.columns]
    if missing:
        raise ValueError(f"the stand-in codes lack column(s) {', '.join(missing)}: build them "
                         "with keyword_standin() or suggestion_standin()")
    unknown = sorted(set(standin["provenance"].dropna()) - set(PROVENANCES))
    if unknown:
        raise ValueError(f"stand-in provenance(s) {unknown} are not in {PROVENANCES}")
    human_years = set(units["school_year"])
    years = answers.set_index("answer_id")["school_year"]
    rows = standin[standin["answer_id"].map(years).isin(set(years) - human_years)]
    return rows[STANDIN_COLUMNS].drop_duplicates(["answer_id", *CODE_KEY]).assign(
        discrepancy_id=None)


def reconciliation_summary(discrepancies: pd.DataFrame, adjudications: pd.DataFrame,
                           final: pd.DataFrame) -> dict:
    """Counts for metadata and reports: discrepancies, accepted decisions, unresolved, and the
    final codes by provenance."""
    ok = adjudications[adjudications["accepted"].astype(bool)] if len(adjudications) else \
        adjudications
    ok = ok[ok["discrepancy_id"].isin(set(discrepancies["discrepancy_id"]))] if len(ok) else ok
    by_prov = final["provenance"].value_counts()
    return {
        "n_discrepancies": len(discrepancies),
        "n_decided_apply": int((ok.get("decision", pd.Series(dtype=object)) == APPLY).sum()),
        "n_decided_do_not_apply": int(
            (ok.get("decision", pd.Series(dtype=object)) == DO_NOT_APPLY).sum()),
        "n_unresolved": int(by_prov.get("unresolved", 0)),
        "n_final_codes": int(len(final) - by_prov.get("unresolved", 0)),
        "by_provenance": {p: int(by_prov.get(p, 0)) for p in PROVENANCES},
        "n_answers_coded": int(final.loc[final["provenance"] != "unresolved",
                                         "answer_id"].nunique()),
    }
