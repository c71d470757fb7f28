"""Validating human coder sheets against the codebook and the answers.

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
from operator import itemgetter

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from pipeline.core.coding.coder_sheets import norm_key
from pipeline.core.parallel import map_forked

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
    each session (school year and session number) the coder's sheet refers to (the study's
    coders coded every answer of a session) plus every answer the coder listed; basis 'listed'
    or 'session'. A session exported after the sheets were handed out is nobody's unit until a
    sheet refers to it.
    """
    book = SheetCodes.from_frame(codes)
    ans = _AnswerIndex(answers)
    # a sheet row's outcome depends on its coder's other rows only (duplicates, sessions):
    # each coder's rows are validated on their own, on every core for a large import
    coders = sorted(set(rows["coder"].tolist()))
    if len(coders) > 1 and len(rows) >= PARALLEL_MIN_ROWS:
        of_coder = rows["coder"].to_numpy()
        positions = [np.flatnonzero(of_coder == coder) for coder in coders]
        parts = map_forked(lambda at: _validate_rows(rows.iloc[at], at, ans, book, answers),
                           positions)
    else:
        parts = [_validate_rows(rows, np.arange(len(rows)), ans, book, answers)]

    def joined(i: int) -> pd.DataFrame:   # the parts' frames as one part gives them
        frames = [part[i] for part in parts if len(part[i])] or [parts[0][i]]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def in_row_order(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values("_at", kind="stable", ignore_index=True).drop(columns="_at")

    # each part's units are sorted (units_of) and the parts come by coder: they are in order
    return in_row_order(joined(0)), joined(1), in_row_order(joined(2))


# sheet rows from which validate_coder_sheets splits the coders over the cores: forking costs
# about half a second for a process holding a large import
PARALLEL_MIN_ROWS = 200_000


def _validate_rows(rows: pd.DataFrame, at: np.ndarray, ans: _AnswerIndex, book: SheetCodes,
                   answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """validate_coder_sheets of `rows`, all of the coders they hold (each coder's rows are
    all there); the applications and the quarantine carry each row's position `at` (`_at`)."""
    apps, quarantine, listed = [], [], []
    seen: dict[tuple[str, str, str], str] = {}
    sessions: dict[str, set[tuple]] = {}
    # a code cell's outcome depends only on these fields: each distinct combination is
    # resolved once (a sheet repeats the same few hundred codes on every row)
    code_fields = itemgetter("layout", "value", "source_column", "code", "framework", "category")
    answer_fields = itemgetter("answer_id", "response_id", "question", "school_year")
    resolved_codes: dict[tuple, tuple[str | None, list]] = {}
    resolved_answers: dict[tuple, tuple[str | None, list]] = {}
    for position, r in zip(at.tolist(), _records(rows), strict=True):
        problems: list[tuple[str, str]] = []
        key = answer_fields(r)
        if key not in resolved_answers:
            found: list[tuple[str, str]] = []
            resolved_answers[key] = (_resolve_answer(r, ans, ans.by_response, found), found)
        aid, found = resolved_answers[key]
        problems.extend(found)
        if aid is not None:
            sessions.setdefault(r["coder"], set()).add(ans.session[aid])
        code_id = None
        if r["code"] or r["value"]:
            key = code_fields(r)
            if key not in resolved_codes:
                found = []
                resolved_codes[key] = (_resolve_code(r, book, found), found)
            code_id, found = resolved_codes[key]
            problems.extend(found)
        if not r["code"] and not r["value"] and r["category"]:
            problems.append(("category", f"category {r['category']!r} given without a code"))
        if code_id is not None and aid is not None and ans.non_substantive[aid]:
            problems.append(("code", f"human code {code_id} on a non-substantive answer "
                                     f"({ans.text[aid]!r})"))
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
                               "reason": "; ".join(p for _c, p in problems),
                               "_at": position})
        elif code_id is not None:
            c = book.code[code_id]
            apps.append({"answer_id": aid, "coder": r["coder"], "framework": c["framework"],
                         "dimension": c["dimension"], "code_id": code_id, "note": r["note"],
                         **{k: r[k] for k in ("source_file", "source_sheet", "source_row")},
                         "source_column": r["source_column"] or None, "_at": position})
            listed.append((aid, r["coder"]))
        else:  # an answer listed with no code: coded, nothing applies
            listed.append((aid, r["coder"]))

    applications = pd.DataFrame(apps, columns=[*APPLICATION_COLUMNS, "_at"])
    return (applications, units_of(listed, sessions, answers),
            _frame(quarantine, [*QUARANTINE_COLUMNS, "_at"]))


class _AnswerIndex:
    """staging.answers as plain dicts keyed by answer id (a pandas lookup per sheet row is
    slow): membership, school year, session, non-substantive flag and text; and the answers of
    each (response id, question)."""

    def __init__(self, answers: pd.DataFrame):
        ids = answers["answer_id"].tolist()
        self.year = dict(zip(ids, answers["school_year"].tolist(), strict=True))
        self.session = dict(zip(ids, session_keys(answers), strict=True))
        self.non_substantive = dict(zip(ids, answers["non_substantive"].astype(bool).tolist(),
                                        strict=True))
        self.text = dict(zip(ids, answers["answer_text"].tolist(), strict=True))
        self.by_response: dict[tuple[str, str], list[str]] = {}
        for aid, rid, q in zip(ids, answers["response_id"], answers["question_id"], strict=True):
            self.by_response.setdefault((str(rid), q), []).append(aid)

    def __contains__(self, aid: str) -> bool:
        return aid in self.year


def _records(rows: pd.DataFrame):
    """Sheet rows as dicts with missing values (None, NaN) as ''."""
    columns = list(rows.columns)
    cleaned = [["" if v is None or (isinstance(v, float) and v != v) else v
                for v in rows[c].tolist()] for c in columns]
    for values in zip(*cleaned, strict=True):
        yield dict(zip(columns, values, strict=True))


def _frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(records, columns=columns)
    out["source_row"] = out["source_row"].astype("int64")
    return out


def _where(r: dict) -> str:
    sheet = f" [{r['source_sheet']}]" if r["source_sheet"] else ""
    return f"{r['source_file']}{sheet} row {r['source_row']}"


def _resolve_answer(r, ans, by_response, problems) -> str | None:
    if r["answer_id"]:
        if r["answer_id"] in ans:
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
        found = [a for a in found if ans.year[a] == r["school_year"]]
    if len(found) == 1:
        return found[0]
    if not found:
        problems.append(("response_id", f"unknown response id {r['response_id']!r} for "
                                        f"question {q} (not in staging.answers)"))
    else:
        yrs = ", ".join(sorted(ans.year[a] for a in found))
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


def session_keys(answers: pd.DataFrame) -> list[tuple]:
    """(school year, session number or None) per answer: the session a coder's sheet refers
    to. Answers without a session number (or a frame without the column) form one session per
    year."""
    numbers = answers["session_number"] if "session_number" in answers.columns \
        else pd.Series([None] * len(answers), index=answers.index)
    return [(y, None if pd.isna(n) else int(n))
            for y, n in zip(answers["school_year"], numbers, strict=True)]


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
