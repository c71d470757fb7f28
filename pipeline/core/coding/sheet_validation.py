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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from pipeline.core.coding.coder_sheets import norm_key

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

    rows: read_coder_sheets output (text cells, '' or None when blank). answers: staging.answers (answer_id, response_id,
    school_year, question_id, answer_text, non_substantive). codes: codebook_codes_frame or
    sheet_codes (the latter also accepts aliases and dimension / framework labels).

    Every sheet row ends up in exactly one of: applications (a valid code), the answers it lists
    (empty code), quarantine (one row per rejected sheet row; `reason` lists every problem,
    `column_name` is the column of the first). Units = per coder, every substantive answer of
    each session (school year and session number) the coder's sheet refers to (the study's
    coders coded every answer of a session) plus every answer the coder listed; basis 'listed'
    or 'session'. A session exported after the sheets were handed out is nobody's unit until a
    sheet refers to it.

    The rows are judged column by column: each distinct answer reference and each distinct
    code cell is resolved once (a sheet repeats the same few hundred codes on every row), and
    only the rows with a problem are looked at one by one, to word their reasons.
    tests/sheet_validation_reference.py is the row-by-row rule this gives the same frames as.
    """
    book = SheetCodes.from_frame(codes)
    ans = _AnswerIndex(answers)
    n = len(rows)
    cell = {c: _text(rows[c]) for c in rows.columns if c != "source_row"}
    cell["source_row"] = rows["source_row"].to_numpy()
    problems: dict[int, list[tuple[str, str]]] = {}   # row -> its problems, in rule order

    def flag(at: np.ndarray, found: Callable[[int], list[tuple[str, str]]]) -> None:
        for i in at.tolist():
            problems.setdefault(i, []).extend(found(i))

    # the answer each row refers to (its position in `answers`): its answer id, or its
    # response id and question
    pos = np.full(n, -1, dtype=np.int64)
    given = cell["answer_id"] != ""
    pos[given] = ans.ids.get_indexer(cell["answer_id"][given])
    flag(np.flatnonzero(given & (pos < 0)), lambda i: [(
        "answer_id", f"unknown answer id {cell['answer_id'][i]!r} (not in staging.answers)")])
    by_response = np.flatnonzero(~given)
    pos[by_response] = _each_distinct(
        cell, by_response, ("response_id", "question", "school_year"), problems,
        lambda r, found: ans.position(_resolve_by_response(r, ans, found)))
    has_answer = pos >= 0

    # the code of each row naming one
    code_id = np.full(n, None, dtype=object)
    named = np.flatnonzero((cell["code"] != "") | (cell["value"] != ""))
    code_id[named] = _each_distinct(
        cell, named, ("layout", "value", "source_column", "code", "framework", "category"),
        problems, lambda r, found: _resolve_code(r, book, found))
    has_code = np.not_equal(code_id, None)
    flag(np.flatnonzero((cell["code"] == "") & (cell["value"] == "") & (cell["category"] != "")),
         lambda i: [("category", f"category {cell['category'][i]!r} given without a code")])
    on_non_substantive = has_code & has_answer
    on_non_substantive[on_non_substantive] = ans.non_substantive[pos[on_non_substantive]]
    flag(np.flatnonzero(on_non_substantive), lambda i: [(
        "code", f"human code {code_id[i]} on a non-substantive answer "
                f"({ans.text[pos[i]]!r})")])

    # a code a coder already applied to the answer elsewhere (in an earlier row without a
    # problem) is a duplicate; the same code twice in one row is not
    clean = np.ones(n, dtype=bool)
    clean[list(problems)] = False
    applied = np.flatnonzero(clean & has_code)
    if len(applied):
        first, inverse = distinct_rows([cell["coder"][applied], pos[applied], code_id[applied]])
        earlier = applied[first][inverse]
        for i, j in zip(applied[earlier != applied].tolist(),
                        earlier[earlier != applied].tolist(), strict=True):
            here, there = _where(cell, i), _where(cell, j)
            if here != there:
                problems[i] = [("code", f"duplicate: {cell['coder'][i]} already applied "
                                        f"{code_id[i]} to {ans.ids[pos[i]]} ({there})")]
                clean[i] = False

    aid = np.full(n, None, dtype=object)
    aid[has_answer] = ans.ids.to_numpy(dtype=object)[pos[has_answer]]
    at_apps = np.flatnonzero(clean & has_code)
    applications = _applications(cell, aid, code_id, at_apps, book) if len(at_apps) \
        else pd.DataFrame([], columns=APPLICATION_COLUMNS)
    quarantine = _frame([{**{c: cell[c][i] for c in ("source_file", "source_sheet",
                                                     "source_row", "coder", "code")},
                          "source_column": cell["source_column"][i] or None,
                          "answer_id": aid[i] or cell["answer_id"][i] or None,
                          "column_name": cell["source_column"][i] or found[0][0],
                          "reason": "; ".join(p for _c, p in found)}
                         for i, found in sorted(problems.items())], QUARANTINE_COLUMNS)
    # listed: every row without a problem (a code applied, or an answer coded with none)
    listed = pd.DataFrame({"position": pos[clean], "coder": cell["coder"][clean]})
    referred = pd.DataFrame({"position": pos[has_answer], "coder": cell["coder"][has_answer]})
    return applications, _units(listed, referred, ans), quarantine


def _text(column: pd.Series) -> np.ndarray:
    """A sheet column's cells as an object array, missing (None, NaN) as ''."""
    return column.where(column.notna(), "").to_numpy(dtype=object)


def _each_distinct(cell: dict, at: np.ndarray, fields: tuple[str, ...], problems: dict,
                   resolve: Callable[[dict, list], object]) -> np.ndarray:
    """`resolve(fields of a row, problems found)` of the rows `at`, called once per distinct
    combination of their `fields`: each row's value (an object array); the rows whose
    combination had problems get them in `problems`."""
    if not len(at):
        return np.array([], dtype=object)
    first, inverse = distinct_rows([cell[f][at] for f in fields])
    values, found = [], []
    for i in at[first].tolist():
        found.append([])
        values.append(resolve({f: cell[f][i] for f in fields}, found[-1]))
    bad = np.array([bool(f) for f in found])[inverse]
    for i, k in zip(at[bad].tolist(), inverse[bad].tolist(), strict=True):
        problems.setdefault(i, []).extend(found[k])
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out[inverse]


def distinct_rows(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The rows of equal-length columns by their values: (the position of each distinct row's
    first appearance, in that order; each row's number, an index into those). Missing values
    (None, NaN) are equal to each other."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:   # numbered in order of first appearance, one column at a time
        codes = pd.factorize(column, use_na_sentinel=False)[0].astype(np.int64)
        key = pd.factorize(key * (codes.max(initial=0) + 1) + codes)[0].astype(np.int64)
    _values, first = np.unique(key, return_index=True)
    return first, key


def _applications(cell: dict, aid: np.ndarray, code_id: np.ndarray, at: np.ndarray,
                  book: SheetCodes) -> pd.DataFrame:
    ids = code_id[at]
    which, distinct = pd.factorize(ids)

    def of_code(field: str) -> np.ndarray:
        return np.array([book.code[c][field] for c in distinct], dtype=object)[which]

    source_column = cell["source_column"][at].copy()
    source_column[source_column == ""] = None
    return pd.DataFrame({
        "answer_id": aid[at], "coder": cell["coder"][at], "framework": of_code("framework"),
        "dimension": of_code("dimension"), "code_id": ids, "note": cell["note"][at], "source_file": cell["source_file"][at],
        "source_sheet": cell["source_sheet"][at],
        "source_row": np.asarray(cell["source_row"][at], dtype=np.int64),
        "source_column": source_column}, columns=APPLICATION_COLUMNS)


class _AnswerIndex:
    """staging.answers for lookups by answer id (`ids`, an Index: an answer's position), with
    the school year, non-substantive flag and text by position, and the answers of each
    (response id, question)."""

    def __init__(self, answers: pd.DataFrame):
        answers = answers.drop_duplicates("answer_id", keep="last")   # as a dict by id keeps
        self.answers = answers
        self.ids = pd.Index(answers["answer_id"].to_numpy(dtype=object))
        self.year = answers["school_year"].to_numpy(dtype=object)
        self.non_substantive = answers["non_substantive"].astype(bool).to_numpy()
        self.text = answers["answer_text"].to_numpy(dtype=object)
        self._by_response: dict[tuple[str, str], list[str]] | None = None

    def position(self, aid: str | None) -> int:
        """The answer's position in `answers`; -1 for None."""
        return -1 if aid is None else int(self.ids.get_loc(aid))

    def year_of(self, aid: str) -> str:
        return self.year[self.position(aid)]

    @property
    def by_response(self) -> dict[tuple[str, str], list[str]]:
        if self._by_response is None:
            self._by_response = {}
            a = self.answers
            for aid, rid, q in zip(a["answer_id"], a["response_id"], a["question_id"],
                                   strict=True):
                self._by_response.setdefault((str(rid), q), []).append(aid)
        return self._by_response


def _frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(records, columns=columns)
    out["source_row"] = out["source_row"].astype("int64")
    return out


def _where(cell: dict, i: int) -> str:
    sheet = f" [{cell['source_sheet'][i]}]" if cell["source_sheet"][i] else ""
    return f"{cell['source_file'][i]}{sheet} row {cell['source_row'][i]}"


def _resolve_by_response(r: dict, ans: _AnswerIndex, problems: list) -> str | None:
    """The answer a row without an answer id names by its response id and question (and
    school year, when given)."""
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
    found = ans.by_response.get((r["response_id"], q), [])
    if r["school_year"]:
        found = [a for a in found if ans.year_of(a) == r["school_year"]]
    if len(found) == 1:
        return found[0]
    if not found:
        problems.append(("response_id", f"unknown response id {r['response_id']!r} for "
                                        f"question {q} (not in staging.answers)"))
    else:
        yrs = ", ".join(sorted(ans.year_of(a) for a in found))
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


def _units(listed: pd.DataFrame, referred: pd.DataFrame, ans: _AnswerIndex) -> pd.DataFrame:
    """coding.coder_units: each (answer, coder) listed (`listed`: rows of answer positions and
    coders), then every substantive answer of each session a coder's rows refer to (`referred`:
    every row's answer, problem or not):
    sessions are (school year, session number); answers without a session number (or a frame
    without the column) form one session per year."""
    a = ans.answers
    number = a["session_number"] if "session_number" in a.columns \
        else pd.Series(np.nan, index=a.index)
    missing = number.isna().to_numpy()
    _first, session = distinct_rows([ans.year, missing,
                                     number.where(~missing, 0).to_numpy().astype(np.int64)])
    sessions = pd.DataFrame({"coder": referred["coder"].to_numpy(),
                             "session": session[referred["position"].to_numpy()]}
                            ).drop_duplicates()
    substantive = np.flatnonzero(~ans.non_substantive)
    in_session = pd.DataFrame({"position": substantive, "session": session[substantive]}
                              ).merge(sessions, on="session")
    units = pd.concat([listed.assign(basis="listed"),
                       in_session[["position", "coder"]].assign(basis="session")],
                      ignore_index=True).drop_duplicates(["position", "coder"])
    at = units["position"].to_numpy()
    frame = pd.DataFrame({"answer_id": ans.ids.to_numpy(dtype=object)[at],
                          "coder": units["coder"].to_numpy(dtype=object),
                          "question_id": a["question_id"].to_numpy()[at],
                          "school_year": a["school_year"].to_numpy()[at],
                          "basis": units["basis"].to_numpy(dtype=object)})
    return frame.sort_values(["coder", "school_year", "answer_id"], ignore_index=True)
