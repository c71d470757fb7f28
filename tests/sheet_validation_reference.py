"""REFERENCE ONLY (tests): the rule of pipeline/core/coding/sheet_validation.py written row by
row, as it was before the validator judged rows column by column (and, earlier, before its row
loop used dicts instead of pandas `.at`). tests/test_coder_sheets.py checks that the current
validator gives the very same frames as this one on text cells (what read_coder_sheets gives).
Do not import it from the pipeline.

Validating human coder sheets against the codebook and the answers.

In: sheet rows (core.coding.coder_sheets.read_coder_sheets), staging.answers and the codes
(`sheet_codes` of the loaded codebooks, or coding.codebook_codes). Out: applications, coder
units and coding.sheet_quarantine. `validate_coder_sheets` sends every sheet row to exactly one
place: an application (a code applied), a listed answer (empty code: the answer becomes a
unit), or the quarantine with a reason. Nothing is dropped or repaired silently.
docs/reconciliation.md has the rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz, process

from pipeline.core.coding.coder_sheets import norm_key
from pipeline.core.coding.sheet_validation import session_keys

APPLICATION_COLUMNS = [
    "answer_id", "coder", "framework", "dimension", "code_id", "note",
    "source_file", "source_sheet", "source_row", "source_column",
]
UNIT_COLUMNS = ["answer_id", "coder", "question_id", "school_year", "basis"]
QUARANTINE_COLUMNS = [
    "source_file", "source_sheet", "source_row", "source_column", "column_name", "coder",
    "answer_id", "code", "reason",
]
QUESTIONS = {"worked": "worked", "q1": "worked", "1": "worked", "what_worked": "worked",
             "improve": "improve", "q2": "improve", "2": "improve"}
QUESTION_TEXT = {"worked": "what worked", "improve": "can we improve"}


def sheet_codes(codebooks) -> pd.DataFrame:
    """The codes of loaded codebooks with what validation can use: framework, dimension,
    code_id, label, aliases (JSON list), dimension_label, framework_label."""
    rows = [{"framework": c.framework, "dimension": c.dimension, "code_id": c.code_id,
             "label": c.label, "aliases": json.dumps(list(c.aliases)),
             "dimension_label": book.dimension_labels.get(c.dimension, c.dimension),
             "framework_label": book.label}
            for book in codebooks for c in book.codes]
    return pd.DataFrame(rows, columns=["framework", "dimension", "code_id", "label", "aliases",
                                       "dimension_label", "framework_label"])


@dataclass
class SheetCodes:
    """Lookups built from a codes frame (codebook_codes_frame or sheet_codes)."""

    by_name: dict[str, set[str]]  # normalised id / label / alias -> code ids
    code: dict[str, dict]  # code id -> row
    choices: dict[str, str]  # normalised name -> code id, for suggestions

    @classmethod
    def from_frame(cls, codes: pd.DataFrame) -> SheetCodes:
        by_name: dict[str, set[str]] = {}
        code = {}
        for row in codes.to_dict("records"):
            code[row["code_id"]] = row
            aliases = row.get("aliases")
            aliases = json.loads(aliases) if isinstance(aliases, str) else (aliases or [])
            for name in (row["code_id"], row.get("label") or "", *aliases):
                if norm_key(name):
                    by_name.setdefault(norm_key(name), set()).add(row["code_id"])
        choices = {name: next(iter(ids)) for name, ids in by_name.items() if len(ids) == 1}
        return cls(by_name, code, choices)

    def suggest(self, text: str) -> str | None:
        hit = process.extractOne(norm_key(text), list(self.choices), scorer=fuzz.ratio,
                                 score_cutoff=70)
        return self.choices[hit[0]] if hit else None

    def dimension_ok(self, category: str, code_id: str) -> bool:
        """Category names the code's dimension: its id or label, or a leading part of either
        that is at least one whole word ('Competence' for competence_in_core_responsibilities)."""
        row, cat = self.code[code_id], norm_key(category)
        label = row.get("dimension_label") or row["dimension"]
        names = {norm_key(row["dimension"]), norm_key(label)}
        return any(cat == n or n.startswith(cat + "_") for n in names)

    def framework_ok(self, framework: str, code_id: str) -> bool:
        """Framework names the code's framework: its id or label, or contains the id's words
        ("Coburn's Scale Framework", "relational trust")."""
        row, fw = self.code[code_id], f"_{norm_key(framework)}_"
        names = {norm_key(row["framework"]), norm_key(row.get("framework_label") or row["framework"])}
        return any(f"_{n}_" in fw for n in names)


# --------------------------------------------------------------------------------- validation


def validate_coder_sheets(rows: pd.DataFrame, answers: pd.DataFrame, codes: pd.DataFrame
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split sheet rows into (applications, units, quarantine).

    rows: read_coder_sheets output. answers: staging.answers (answer_id, response_id,
    school_year, question_id, answer_text, non_substantive). codes: codebook_codes_frame or
    sheet_codes (the latter also accepts aliases and dimension / framework labels).

    Every sheet row ends up in exactly one of: applications (a valid code), the answers it lists
    (empty code), quarantine (one row per rejected sheet row; `reason` lists every problem,
    `column_name` is the column of the first). Units = per coder, every substantive answer of
    each school year the coder's sheet refers to (the study's coders coded every answer) plus
    every answer the coder listed; basis 'listed' or 'session'.
    """
    book = SheetCodes.from_frame(codes)
    ans = answers.set_index("answer_id", drop=False)
    # the units (which answers each coder saw): units_of below, the validator's own before it
    # was judged column by column
    session_of = dict(zip(answers["answer_id"], session_keys(answers), strict=True))
    by_response: dict[tuple[str, str], list[str]] = {}
    for aid, rid, q in zip(answers["answer_id"], answers["response_id"], answers["question_id"],
                           strict=True):
        by_response.setdefault((str(rid), q), []).append(aid)

    apps, quarantine, listed = [], [], []
    seen: dict[tuple[str, str, str], str] = {}
    sessions: dict[str, set[tuple]] = {}
    for r in rows.to_dict("records"):
        r = {k: ("" if v is None or (isinstance(v, float) and pd.isna(v)) else v)
             for k, v in r.items()}
        problems: list[tuple[str, str]] = []
        aid = _resolve_answer(r, ans, by_response, problems)
        if aid is not None:
            sessions.setdefault(r["coder"], set()).add(session_of[aid])
        code_id = _resolve_code(r, book, problems) if r["code"] or r["value"] else None
        if not r["code"] and not r["value"] and r["category"]:
            problems.append(("category", f"category {r['category']!r} given without a code"))
        if code_id is not None and aid is not None and bool(ans.at[aid, "non_substantive"]):
            problems.append(("code", f"human code {code_id} on a non-substantive answer "
                                     f"({ans.at[aid, 'answer_text']!r})"))
        here = _where(r)
        if not problems and code_id is not None:
            first = seen.setdefault((r["coder"], aid, code_id), here)
            if first != here:
                problems.append(("code", f"duplicate: {r['coder']} already applied {code_id} "
                                          f"to {aid} ({first})"))
        if problems:
            quarantine.append({**{c: r[c] for c in ("source_file", "source_sheet", "source_row",
                                                    "coder", "code")},
                               "source_column": r["source_column"] or None,
                               "answer_id": aid or r["answer_id"] or None,
                               "column_name": r["source_column"] or problems[0][0],
                               "reason": "; ".join(p for _c, p in problems)})
        elif code_id is not None:
            c = book.code[code_id]
            apps.append({"answer_id": aid, "coder": r["coder"], "framework": c["framework"],
                         "dimension": c["dimension"], "code_id": code_id, "note": r["note"],
                         **{k: r[k] for k in ("source_file", "source_sheet", "source_row")},
                         "source_column": r["source_column"] or None})
            listed.append((aid, r["coder"]))
        else:  # an answer listed with no code: coded, nothing applies
            listed.append((aid, r["coder"]))

    applications = pd.DataFrame(apps, columns=APPLICATION_COLUMNS)
    return applications, units_of(listed, sessions, answers), _frame(quarantine,
                                                                     QUARANTINE_COLUMNS)


def _frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(records, columns=columns)
    out["source_row"] = out["source_row"].astype("int64")
    return out


def _where(r: dict) -> str:
    sheet = f" [{r['source_sheet']}]" if r["source_sheet"] else ""
    return f"{r['source_file']}{sheet} row {r['source_row']}"


def _resolve_answer(r, ans, by_response, problems) -> str | None:
    if r["answer_id"]:
        if r["answer_id"] in ans.index:
            return r["answer_id"]
        problems.append(("answer_id", f"unknown answer id {r['answer_id']!r} "
                                      "(not in staging.answers)"))
        return None
    if not r["response_id"]:
        problems.append(("answer_id", "no answer id (and no response id)"))
        return None
    q = QUESTIONS.get(norm_key(r["question"]))
    if q is None:
        text = norm_key(r["question"]).replace("_", " ")
        q = next((k for k, v in QUESTION_TEXT.items() if v in text), None)
    if q is None:
        problems.append(("question", f"question {r['question']!r} is not worked/improve "
                                     "(Q1/Q2)"))
        return None
    found = by_response.get((r["response_id"], q), [])
    if r["school_year"]:
        found = [a for a in found if ans.at[a, "school_year"] == r["school_year"]]
    if len(found) == 1:
        return found[0]
    if not found:
        problems.append(("response_id", f"unknown response id {r['response_id']!r} for "
                                        f"question {q} (not in staging.answers)"))
    else:
        yrs = ", ".join(sorted(ans.loc[found, "school_year"]))
        problems.append(("response_id", f"response id {r['response_id']!r} matches answers in "
                                        f"several school years ({yrs}); add a school_year column"))
    return None


def _resolve_code(r, book: SheetCodes, problems) -> str | None:
    if r["layout"] == "wide" and r["value"] != "1":
        problems.append((r["source_column"], f"bad value {r['value']!r} in column "
                                             f"{r['source_column']!r} (expected 1, 0 or blank)"))
        return None
    text = r["code"]
    ids = set(book.by_name.get(norm_key(text), set()))
    if len(ids) > 1:  # the same label in two codes: framework / category decide
        ids = {i for i in ids if (not r["framework"] or book.framework_ok(r["framework"], i))
               and (not r["category"] or book.dimension_ok(r["category"], i))} or ids
    if not ids:
        guess = book.suggest(text)
        hint = f"; did you mean {guess}?" if guess else "; no close match"
        problems.append(("code", f"code {text!r} is not in the codebook{hint}"))
        return None
    if len(ids) > 1:
        problems.append(("code", f"code {text!r} is ambiguous ({', '.join(sorted(ids))}); "
                                 "give its framework and category"))
        return None
    code_id = ids.pop()
    row = book.code[code_id]
    if r["category"] and not book.dimension_ok(r["category"], code_id):
        label = row.get("dimension_label") or row["dimension"]
        problems.append(("category", f"category {r['category']!r} does not match the dimension "
                                     f"of {code_id} ({label})"))
    if r["framework"] and not book.framework_ok(r["framework"], code_id):
        problems.append(("framework", f"framework {r['framework']!r} does not match the "
                                      f"framework of {code_id} ({row['framework']})"))
    return code_id


def units_of(listed: list[tuple[str, str]], sessions: dict[str, set[tuple]],
             answers: pd.DataFrame) -> pd.DataFrame:
    """coding.coder_units: each (answer, coder) listed, then every substantive answer of each
    session the coder's sheet refers to."""
    info = answers.set_index("answer_id")[["question_id", "school_year"]]
    out = {(aid, coder): "listed" for aid, coder in listed}
    substantive = answers[~answers["non_substantive"].astype(bool)]
    keys = pd.Series(session_keys(substantive), index=substantive.index, dtype=object)
    for coder, seen in sorted(sessions.items()):
        for aid in substantive.loc[keys.isin(seen), "answer_id"]:
            out.setdefault((aid, coder), "session")
    frame = pd.DataFrame([(a, c, b) for (a, c), b in out.items()],
                         columns=["answer_id", "coder", "basis"])
    frame = frame.join(info, on="answer_id")
    return frame[UNIT_COLUMNS].sort_values(["coder", "school_year", "answer_id"],
                                           ignore_index=True)
