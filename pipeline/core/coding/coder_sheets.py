"""Human coder sheets: read one sheet per coder, validate it against the codebook and the answers.

Reading (`read_coder_sheets`) turns workbooks (one tab per coder, tab name = coder id) and CSVs
(one per coder, file stem = coder id) into *sheet rows*, each with its source file, sheet and
spreadsheet row. Two layouts, detected per tab / file from the header (row 1):

- long (has a `code` column): `answer_id` (or `response_id` + `question`), `framework`,
  `category`, `code`, optional `note`; one row per code applied; an answer id with an empty code
  means "coded, nothing applies". One sheet row per spreadsheet row.
- wide (an `answer_id` / `response_id` column, no `code` column): one spreadsheet row per answer
  and one 0/1 column per code (code id or label). Each spreadsheet row gives one sheet row that
  lists the answer (code empty) plus one sheet row per cell that is neither blank nor 0.

Validation (`validate_coder_sheets`) sends every sheet row to exactly one place: an application
(a code applied), a listed answer (empty code: the answer becomes a unit), or the quarantine
with a reason. Nothing is dropped or repaired silently. docs/reconciliation.md has the rules.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rapidfuzz import fuzz, process

SHEET_ROW_COLUMNS = [
    "source_file", "source_sheet", "source_row", "source_column", "coder", "layout",
    "answer_id", "response_id", "question", "school_year", "framework", "category", "code",
    "value", "note",
]
APPLICATION_COLUMNS = [
    "answer_id", "coder", "framework", "dimension", "code_id", "note",
    "source_file", "source_sheet", "source_row", "source_column",
]
UNIT_COLUMNS = ["answer_id", "coder", "question_id", "school_year", "basis"]
QUARANTINE_COLUMNS = [
    "source_file", "source_sheet", "source_row", "source_column", "column_name", "coder",
    "answer_id", "code", "reason",
]
# Header spellings accepted for each field (compared after norm_key()).
FIELDS = {
    "answer_id": ("answer_id", "answerid", "answer_key"),
    "response_id": ("response_id", "responseid"),
    "question": ("question", "question_id", "q"),
    "school_year": ("school_year", "year"),
    "framework": ("framework",),
    "category": ("category", "dimension"),
    "code": ("code", "coded_term", "term", "code_id"),
    "note": ("note", "notes", "comment", "comments", "memo"),
}
# Wide layout: columns that give context and are neither ids nor codes.
CONTEXT_COLUMNS = {"answer", "answer_text", "text", "response", "question_text", "session",
                   "session_number", "school", "school_id", "role", "coder"}
QUESTIONS = {"worked": "worked", "q1": "worked", "1": "worked", "what_worked": "worked",
             "improve": "improve", "q2": "improve", "2": "improve"}
QUESTION_TEXT = {"worked": "what worked", "improve": "can we improve"}


class CoderSheetError(ValueError):
    """A coder sheet that cannot be read at all (unknown layout, unreadable file)."""


def norm_key(text: object) -> str:
    """Normalised header / code text: case-folded, runs of non-alphanumerics -> '_'."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).casefold()).strip("_")


def cell_text(value: object) -> str:
    """A spreadsheet cell as text: None -> '', True -> '1', 2.0 -> '2', dates ISO, stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


# --------------------------------------------------------------------------------- reading


def coder_sheet_files(paths) -> list[Path]:
    """Each path is a workbook, a CSV or a folder. In a folder: every *.xlsx and *.csv (sorted),
    except Office lock files (~$...), hidden files and files with a `discrepancy_id` column (an
    adjudication queue kept next to the sheets)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        for f in sorted([*p.glob("*.xlsx"), *p.glob("*.csv")]):
            if not f.name.startswith(("~$", ".")) and not _is_queue(f):
                out.append(f)
    return out


def _is_queue(path: Path) -> bool:
    for _sheet, header, _rows in read_tables(path):
        if "discrepancy_id" in {norm_key(h) for h in header}:
            return True
    return False


def read_tables(path: Path) -> Iterable[tuple[str | None, list[str], list[tuple[int, list[str]]]]]:
    """(sheet name or None for CSV, header, [(spreadsheet row, cells)]) per tab / file.
    Cells are text (cell_text); CSVs are UTF-8 (BOM or not), else cp1252."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise CoderSheetError(f"{path}: cannot read workbook: {exc}") from None
        try:
            for ws in wb.worksheets:
                rows = [[cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
                yield ws.title, rows[0] if rows else [], list(enumerate(rows[1:], start=2))
        finally:
            wb.close()
    elif path.suffix.lower() == ".csv":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CoderSheetError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text, newline=""))]
        yield None, rows[0] if rows else [], list(enumerate(rows[1:], start=2))
    else:
        raise CoderSheetError(f"{path}: not a coder sheet (expected .xlsx or .csv)")


def read_coder_sheets(paths) -> pd.DataFrame:
    """Sheet rows of every coder sheet under `paths` (files or folders, see coder_sheet_files).

    Workbook tabs whose name starts with '_' or '#' are skipped (notes, instructions). Fully
    blank spreadsheet rows are not data. Raises CoderSheetError for a tab or file whose layout
    cannot be recognised. Columns: SHEET_ROW_COLUMNS (all text; source_row int).
    """
    out: list[dict] = []
    for path in coder_sheet_files(paths):
        for sheet, header, rows in read_tables(path):
            if sheet is not None and sheet.startswith(("_", "#")):
                continue
            coder = (sheet if sheet is not None else path.stem).strip()
            out.extend(_sheet_rows(path, sheet, coder, header, rows))
    frame = pd.DataFrame(out, columns=SHEET_ROW_COLUMNS)
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame


def _sheet_rows(path: Path, sheet, coder, header, rows) -> list[dict]:
    where = f"{path.name}" + (f" [{sheet}]" if sheet is not None else "")
    keys = [norm_key(h) for h in header]
    field_of = {}
    for i, k in enumerate(keys):
        for field, names in FIELDS.items():
            if k in names and field not in field_of:
                field_of[field] = i
    rows = [(n, cells) for n, cells in rows if any(c for c in cells)]
    if not header and not rows:
        return []
    base = {"source_file": path.name, "source_sheet": sheet or "", "coder": coder}
    if "code" in field_of:
        if "answer_id" not in field_of and "response_id" not in field_of:
            raise CoderSheetError(f"{where}: long layout needs an 'answer_id' column "
                                  f"(or 'response_id' and 'question'); header: {header}")
        return [{**base, "source_row": n, "source_column": None, "layout": "long",
                 **_fields(cells, field_of), "value": None} for n, cells in rows]
    if "answer_id" not in field_of and "response_id" not in field_of:
        raise CoderSheetError(f"{where}: cannot tell the layout: no 'code' column (long layout) "
                              f"and no 'answer_id' column (wide layout); header: {header}")
    used = set(field_of.values())
    code_cols = [i for i, k in enumerate(keys) if i not in used and k not in CONTEXT_COLUMNS
                 and (k or any(i < len(c) and c[i] for _n, c in rows))]
    out = []
    for n, cells in rows:
        ids = _fields(cells, field_of)
        out.append({**base, "source_row": n, "source_column": None, "layout": "wide", **ids,
                    "code": "", "value": None})
        for i in code_cols:
            v = cells[i] if i < len(cells) else ""
            if v not in ("", "0"):
                out.append({**base, "source_row": n, "source_column": header[i] or f"#{i + 1}",
                            "layout": "wide", **ids, "framework": "", "category": "",
                            "code": header[i], "value": v, "note": ""})
    return out


def _fields(cells: list[str], field_of: dict[str, int]) -> dict[str, str]:
    return {f: (cells[field_of[f]] if f in field_of and field_of[f] < len(cells) else "")
            for f in FIELDS}


# --------------------------------------------------------------------------------- codebook


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
class _Book:
    """Lookups built from a codes frame (codebook_codes_frame or sheet_codes)."""

    by_name: dict[str, set[str]]  # normalised id / label / alias -> code ids
    code: dict[str, dict]  # code id -> row
    choices: dict[str, str]  # normalised name -> code id, for suggestions

    @classmethod
    def from_frame(cls, codes: pd.DataFrame) -> _Book:
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
    every answer the coder listed; basis 'listed' or 'school year'.
    """
    book = _Book.from_frame(codes)
    ans = answers.set_index("answer_id", drop=False)
    by_response: dict[tuple[str, str], list[str]] = {}
    for aid, rid, q in zip(answers["answer_id"], answers["response_id"], answers["question_id"],
                           strict=True):
        by_response.setdefault((str(rid), q), []).append(aid)

    apps, quarantine, listed = [], [], []
    seen: dict[tuple[str, str, str], str] = {}
    years: dict[str, set[str]] = {}
    for r in rows.to_dict("records"):
        r = {k: ("" if v is None or (isinstance(v, float) and pd.isna(v)) else v)
             for k, v in r.items()}
        problems: list[tuple[str, str]] = []
        aid = _resolve_answer(r, ans, by_response, problems)
        if aid is not None:
            years.setdefault(r["coder"], set()).add(ans.at[aid, "school_year"])
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
    return applications, _units(listed, years, answers), _frame(quarantine, QUARANTINE_COLUMNS)


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


def _resolve_code(r, book: _Book, problems) -> str | None:
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


def _units(listed: list[tuple[str, str]], years: dict[str, set[str]],
           answers: pd.DataFrame) -> pd.DataFrame:
    info = answers.set_index("answer_id")[["question_id", "school_year"]]
    out = {(aid, coder): "listed" for aid, coder in listed}
    substantive = answers[~answers["non_substantive"].astype(bool)]
    for coder, yrs in sorted(years.items()):
        for aid in substantive.loc[substantive["school_year"].isin(yrs), "answer_id"]:
            out.setdefault((aid, coder), "school year")
    frame = pd.DataFrame([(a, c, b) for (a, c), b in out.items()],
                         columns=["answer_id", "coder", "basis"])
    frame = frame.join(info, on="answer_id")
    return frame[UNIT_COLUMNS].sort_values(["coder", "school_year", "answer_id"],
                                           ignore_index=True)
