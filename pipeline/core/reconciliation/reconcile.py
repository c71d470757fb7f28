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
from pipeline.core.frames import CODE_KEY
from pipeline.core.ingest.ids import QUESTION_IDS

DISCREPANCY_COLUMNS = [
    "discrepancy_id", "answer_id", "school_year", "question_id", "framework", "dimension",
    "code_id", "answer_text", "coder_a", "decision_a", "coder_b", "decision_b",
    "keyword_applied", "keyword_evidence",
]
QUEUE_FILL_COLUMNS = ["decision", "reason", "adjudicator"]
# the code's label and category, beside its ids (read from the codebooks when the queue is
# written; the importer ignores them)
QUEUE_LABEL_COLUMNS = ["code_label", "category"]
_AT_CODE = DISCREPANCY_COLUMNS.index("code_id") + 1
QUEUE_COLUMNS = [*DISCREPANCY_COLUMNS[:_AT_CODE], *QUEUE_LABEL_COLUMNS,
                 *DISCREPANCY_COLUMNS[_AT_CODE:], "status", *QUEUE_FILL_COLUMNS]
QUEUE_STATUS_ORDER = ("open", "decided", "stale")   # open items first
QUEUE_SHEET, CODEBOOK_SHEET = "queue", "codebook"
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
    keys = ["answer_id", *CODE_KEY]
    apps = applications.loc[applications["coder"].isin([coder_a, coder_b]),
                            [*keys, "coder"]].drop_duplicates()
    # a code exactly one of the two applied (vectorised: one row per disputed (answer, code))
    single = apps[apps.groupby(keys, sort=False)["coder"].transform("size") == 1]
    info = answers[["answer_id", "school_year", "question_id", "answer_text"]] \
        .drop_duplicates("answer_id")
    out = single.merge(info, on="answer_id", how="left", indicator=True)
    if (out["_merge"] == "left_only").any():
        missing = out.loc[out["_merge"] == "left_only", "answer_id"].iloc[0]
        raise KeyError(f"answer {missing!r} of a coder's application is not in the answers")

    def decision(coder: str) -> pd.Series:
        coded = out["answer_id"].isin(set(units.loc[units["coder"] == coder, "answer_id"]))
        applied = out["coder"] == coder
        return pd.Series(
            ["applied" if a else "not applied" if c else "not coded"
             for a, c in zip(applied, coded, strict=True)], index=out.index, dtype=object)

    kw = _keyword_frame(keyword_applications)[["answer_id", "framework", "code_id", "evidence"]]
    kw = kw.drop_duplicates(["answer_id", "framework", "code_id"], keep="last")
    out = out.drop(columns="_merge").merge(kw, on=["answer_id", "framework", "code_id"],
                                           how="left", indicator=True)
    applied_kw = (out["_merge"] == "both").to_numpy()
    out = out.assign(
        discrepancy_id=[discrepancy_id(a, f, c) for a, f, c in
                        zip(out["answer_id"], out["framework"], out["code_id"], strict=True)],
        coder_a=coder_a, decision_a=decision(coder_a),
        coder_b=coder_b, decision_b=decision(coder_b),
        keyword_applied=applied_kw,
        keyword_evidence=[_matched_texts(e) if hit else "" for e, hit in
                          zip(out["evidence"], applied_kw, strict=True)],
    )
    out = out.reindex(columns=DISCREPANCY_COLUMNS).astype(object)
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
                codebooks: list | None = None) -> dict:
    """Write the adjudication queue as XLSX and/or CSV (None skips a format).

    Open rows first; each code's label and category beside its ids (from `codebooks`, loaded
    Codebook objects; default: the configured codebooks). The XLSX's first row says how many
    discrepancies are left to decide, the header is its second row (frozen, filtered), and a
    second tab ('codebook') holds every code's definition, when to use it and when not.
    Every cell is written as text: in the XLSX with write_string, strings_to_formulas off and
    Excel's quote-prefix ("text") flag on cells that start like a formula; in the CSV (header
    first, no count line) such cells get a leading '. The decision column offers 'apply' /
    'do not apply' in the XLSX. Files are written atomically (pipeline.core.files).
    Returns counts: n_rows, n_open, n_decided, n_stale.
    """
    if codebooks is None:
        codebooks = _default_codebooks()
    q = queue_frame(discrepancies, existing_adjudications, codebooks)
    status = q["status"]
    counts = {"n_rows": len(q), "n_open": int((status == "open").sum()),
              "n_decided": int((status == "decided").sum()),
              "n_stale": int(status.str.startswith("stale").sum())}
    if xlsx_path is not None:
        _write_xlsx(q, Path(xlsx_path), counts, codebooks)
    if csv_path is not None:
        write_queue_csv(q, Path(csv_path))
    return counts


def queue_count_line(counts: dict) -> str:
    """The queue workbook's first row: what is left to decide."""
    total = counts["n_open"] + counts["n_decided"]
    line = (f"{counts['n_open']} of {total} discrepancies left to decide "
            f"({counts['n_decided']} decided")
    line += f", {counts['n_stale']} stale)" if counts["n_stale"] else ")"
    return line + (". Fill in decision (apply / do not apply), reason and adjudicator; "
                   "open rows are first.")


def write_queue_csv(queue: pd.DataFrame, path: Path) -> None:
    from pipeline.core.files import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(QUEUE_COLUMNS)
        for row in queue[QUEUE_COLUMNS].itertuples(index=False):
            w.writerow([neutralise(v) for v in row])


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
    import xlsxwriter

    from pipeline.core.files import atomic_path

    with atomic_path(path) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False,
                                            "strings_to_numbers": False,
                                            "strings_to_urls": False})
        try:
            head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
            text = wb.add_format({"text_wrap": True, "valign": "top"})
            quoted = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
            title = wb.add_format({"bold": True, "font_size": 12})

            def table(ws, frame, columns, widths, first):
                for j, col in enumerate(columns):
                    ws.write_string(first, j, col, head)
                    ws.set_column(j, j, widths.get(col, 16))
                for i, row in enumerate(frame[columns].itertuples(index=False), start=first + 1):
                    for j, v in enumerate(row):
                        v = "" if v is None else str(v)
                        ws.write_string(i, j, v, quoted if v.startswith(FORMULA_START) else text)
                ws.autofilter(first, 0, first + max(len(frame), 1), len(columns) - 1)

            ws = wb.add_worksheet(QUEUE_SHEET)
            ws.write_string(0, 0, queue_count_line(counts), title)
            table(ws, queue, QUEUE_COLUMNS, {"answer_text": 60, "keyword_evidence": 30,
                                             "reason": 40, "decision": 14, "code_label": 24,
                                             "category": 20}, first=1)
            d = QUEUE_COLUMNS.index("decision")
            ws.data_validation(2, d, max(len(queue), 1) + 1, d, {
                "validate": "list", "source": [APPLY, DO_NOT_APPLY], "error_type": "warning"})
            ws.freeze_panes(2, 1)
            cb = wb.add_worksheet(CODEBOOK_SHEET)
            table(cb, codebook_tab(codebooks), CODEBOOK_TAB_COLUMNS,
                  {"definition": 50, "use_when": 50, "not_when": 50, "description": 40,
                   "code_label": 24, "framework": 24}, first=0)
            cb.freeze_panes(1, 0)
        finally:
            wb.close()


# --------------------------------------------------------------------------------- re-import


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
    path = Path(path)
    tables = list(read_tables(path))
    sheet = next((t for t in tables if t[0] == "queue"), tables[0] if tables else None)
    if sheet is None:
        return (pd.DataFrame(columns=ADJUDICATION_COLUMNS), pd.DataFrame(columns=PROBLEM_COLUMNS))
    _name, header, rows = _header_row(*sheet[1:])
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
    columns = ["answer_id", *CODE_KEY, "provenance", "decided_by", "discrepancy_id"]
    if discrepancies.empty:
        return pd.DataFrame(columns=columns)
    # the last accepted row of an id decides (there is one: conflicting rows are not accepted)
    last = (ok.drop_duplicates("discrepancy_id", keep="last").set_index("discrepancy_id")
            if len(ok) else pd.DataFrame(columns=["decision", "adjudicator"]))
    ids = discrepancies["discrepancy_id"]
    decision = ids.map(last["decision"]) if len(last) else pd.Series(None, index=ids.index)
    who = ids.map(last["adjudicator"]) if len(last) else pd.Series(None, index=ids.index)
    keep = (decision != DO_NOT_APPLY).to_numpy()
    apply = (decision == APPLY).to_numpy()
    out = discrepancies.loc[keep, ["answer_id", *CODE_KEY, "discrepancy_id"]].copy()
    out["provenance"] = pd.Series(apply, index=discrepancies.index)[keep].map(
        {True: "adjudicated", False: "unresolved"}).astype(object)
    out["decided_by"] = who[keep].where(pd.Series(apply, index=discrepancies.index)[keep],
                                        None).astype(object)
    return out[columns].reset_index(drop=True)


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
