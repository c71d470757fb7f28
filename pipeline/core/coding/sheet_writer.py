"""The next cycle's coder sheets: one XLSX per coder, in the wide layout the importer reads.

`write_coder_sheets` writes, for each coder, `coder_sheet_<year>_<coder>.xlsx` with

- a data tab named after the coder (the importer takes the tab name as the coder id): one row
  per substantive answer of the school year, the context columns `answer_id`, `school_year`,
  `question`, `session`, `role`, `answer_text` (names the importer reads as ids or context), then
  one column per code of every codebook headed by the code's label (its id when the label
  would not name exactly that code on import). Code cells are empty, with a 0/1 drop-down;
- `_codebook`: every code with its framework, category, definition, use / do-not-use rules and
  examples;
- `_instructions`: how to fill the sheet and hand it in.

Tabs starting with `_` are skipped by the importer, so only the coder's tab is read back.

Blind by default: no machine suggestion anywhere, rows ordered by question, session, answer id.
With `suggestions` (a single-coder review workflow) each suggested code cell gets a comment
"suggested (source) p=0.83" and a fill whose strength follows the probability, the cell value
stays empty (the human decides; nothing machine-made is read back as a human code), and the
answers the model is least sure of come first. The file is then named
`coder_sheet_<year>_<coder>_with_suggestions.xlsx` so it is never mistaken for a blind sheet.

Every text cell is written as a string (never a formula); text that starts like a formula
(queue.FORMULA_START) also carries Excel's quote-prefix flag, as in the adjudication queue.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from pipeline.core.coding.coder_sheets import CONTEXT_COLUMNS, FIELDS, norm_key
from pipeline.core.coding.sheet_validation import SheetCodes, sheet_codes
from pipeline.core.exchange.spreadsheet import RunsKept, rendered
from pipeline.core.exchange.xlsx_rows import (
    BlankRun,
    RowsWorksheet,
    number_cell,
    render_rows,
    string_cell,
)
from pipeline.core.files import atomic_path
from pipeline.core.reconciliation.queue import FORMULA_START
from pipeline.core.warehouse.fingerprint import code_digest

# Data tab: context columns, in this order, before the code columns (header -> answers column).
CONTEXT = [("answer_id", "answer_id"), ("school_year", "school_year"),
           ("question", "question_id"), ("session", "session_number"), ("role", "role"),
           ("answer_text", "answer_text")]
WIDTHS = {"answer_id": 15, "school_year": 9, "question": 9, "session": 8, "role": 13,
          "answer_text": 60}
CODE_WIDTH = 12
CODEBOOK_TAB = "_codebook"
INSTRUCTIONS_TAB = "_instructions"
CODEBOOK_COLUMNS = ["framework", "category", "category_definition", "code", "code_id",
                    "sheet_column", "definition", "use_when", "not_when", "examples"]
SUGGESTION_COLUMNS = ["answer_id", "code_id", "probability", "source"]
# result-cache entries for the blind data tab's kept runs (one per question and session)
RUNS_KEPT = 2000
QUESTION_ORDER = {"worked": 0, "improve": 1}  # the survey's order; others after, by name
_RESERVED = {n for names in FIELDS.values() for n in names} | CONTEXT_COLUMNS
_CODER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,30}")
_FILL_TO = (0xF4, 0xB1, 0x83)  # fill of a probability-1 suggestion (light orange); 0 = white


def sheet_file_name(school_year: str, coder: str, with_suggestions: bool = False) -> str:
    tail = "_with_suggestions" if with_suggestions else ""
    return f"coder_sheet_{school_year}_{coder}{tail}.xlsx"


def code_headers(codebooks: list) -> list[tuple[object, object, str]]:
    """(codebook, code, column header) for every code, in codebook order. The header is the
    label when the importer resolves it to exactly this code (unique among ids, labels and
    aliases, and not a name it reads as an id / context column), else the code id."""
    book = SheetCodes.from_frame(sheet_codes(codebooks))
    out = []
    for cb in codebooks:
        for code in cb.codes:
            header = next((h for h in (code.label, code.code_id)
                           if h and norm_key(h) not in _RESERVED
                           and book.by_name.get(norm_key(h)) == {code.code_id}), None)
            if header is None:
                raise ValueError(f"code {code.code_id!r}: neither its label nor its id names "
                                 "only this code (another code's alias?); fix the codebook")
            out.append((cb, code, header))
    return out


def answer_uncertainty(answer_ids: Iterable[str], suggestions: pd.DataFrame) -> pd.Series:
    """Per answer: max over its suggested codes of 1 - |2p - 1| (1 = a coin flip, 0 = sure).
    An answer with no suggestion at all gets 1: the model has said nothing about it."""
    ids = pd.Index(list(answer_ids), name="answer_id")
    if suggestions is None or not len(suggestions):
        return pd.Series(1.0, index=ids)
    u = 1 - (2 * suggestions["probability"].astype(float) - 1).abs()
    per = u.groupby(suggestions["answer_id"]).max()
    return per.reindex(ids).fillna(1.0)


def _check_coders(coders: list[str]) -> None:
    if not coders:
        raise ValueError("no coder given")
    for c in coders:
        if not isinstance(c, str) or not _CODER.fullmatch(c):
            raise ValueError(f"coder id {c!r}: use 1-31 letters, digits, space, '_', '.' or '-', "
                             "starting with a letter or digit (it becomes the tab name)")
    dup = sorted({c for c in coders if coders.count(c) > 1})
    if dup:
        raise ValueError(f"coder given twice: {', '.join(dup)}")


def _check_suggestions(suggestions: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in SUGGESTION_COLUMNS if c not in suggestions.columns]
    if missing:
        raise ValueError(f"suggestions lack column(s) {', '.join(missing)}")
    s = suggestions[SUGGESTION_COLUMNS].copy()
    p = pd.to_numeric(s["probability"], errors="coerce")
    bad = p.isna() | (p < 0) | (p > 1)
    if bad.any():
        row = s[bad].iloc[0]
        raise ValueError(f"suggestion probability must be in [0, 1]: {row['probability']!r} "
                         f"({row['answer_id']}, {row['code_id']})")
    s["probability"] = p.astype(float)
    s["source"] = s["source"].fillna("").astype(str)
    return s


def sheet_answers(answers: pd.DataFrame, school_year: str) -> pd.DataFrame:
    """The substantive answers of `school_year`, in the blind order: question (worked, then
    improve), session (unknown last), answer id."""
    if "non_substantive" in answers.columns:
        substantive = ~answers["non_substantive"].astype(bool)
    elif "is_substantive" in answers.columns:
        substantive = answers["is_substantive"].astype(bool)
    else:
        raise ValueError("answers need a non_substantive (or is_substantive) column")
    a = answers[substantive & (answers["school_year"] == school_year)].copy()
    for col in ("session_number", "role"):
        if col not in a.columns:
            a[col] = None
    # the question's place (others after, by name), as a number: sorting tuples is slow
    a["_q"] = a["question_id"].map(QUESTION_ORDER).fillna(len(QUESTION_ORDER))
    a["_s"] = pd.to_numeric(a["session_number"], errors="coerce")
    a = a.sort_values(["_q", "question_id", "_s", "answer_id"], na_position="last",
                      kind="stable")
    return a.drop(columns=["_q", "_s"]).reset_index(drop=True)


def write_coder_sheets(answers: pd.DataFrame, codebooks: list, coders: list[str], out_dir,
                       school_year: str, suggestions: pd.DataFrame | None = None,
                       kept: RunsKept | None = None) -> list[Path]:
    """Write one XLSX per coder for the substantive answers of `school_year`; return the paths.

    answers: staging.answers rows (answer_id, school_year, question_id, session_number, role,
    answer_text, non_substantive). codebooks: load_codebooks() output. suggestions (optional:
    answer_id, code_id, probability in [0, 1], source): shown as cell comments and fills, never
    as values; rows then ordered least-sure first (answer_uncertainty). Without suggestions the
    sheet is blind. kept (optional, blind sheets): the data tab's rows kept per run of question
    and session (`RunsKept` with columns question_id, session_number), deflated, and copied
    into every coder's workbook while unchanged. Raises ValueError for bad coder ids, no
    answers, bad suggestions.
    """
    _check_coders(list(coders))
    rows = sheet_answers(answers, school_year)
    if rows.empty:
        raise ValueError(f"no substantive answers for school year {school_year!r}")
    columns = code_headers(codebooks)
    by_answer: dict[str, dict[str, list[tuple[str, float]]]] = {}
    if suggestions is not None:
        s = _check_suggestions(suggestions)
        known = {code.code_id for _b, code, _h in columns}
        s = s[s["answer_id"].isin(set(rows["answer_id"])) & s["code_id"].isin(known)]
        for aid, cid, p, src in s.itertuples(index=False):
            by_answer.setdefault(aid, {}).setdefault(cid, []).append((src, p))
        u = answer_uncertainty(rows["answer_id"], s)
        rows = rows.assign(_u=-u.to_numpy()).sort_values("_u", kind="stable")
        rows = rows.drop(columns="_u").reset_index(drop=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    # blind sheets have the same answer rows for every coder: rendered once, then copied
    with _RowsOnce() as once:
        for coder in coders:
            path = out / sheet_file_name(school_year, coder, suggestions is not None)
            with atomic_path(path) as tmp:
                _write_workbook(tmp, coder, school_year, rows, codebooks, columns,
                                by_answer if suggestions is not None else None, once, kept)
            paths.append(path)
    return paths


# --------------------------------------------------------------------------------- workbook


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(f"• {v}" for v in value)
    return str(value)


class _Writer:
    """Formats shared by the tabs of one workbook; every string via write_string."""

    def __init__(self, wb):
        self.wb = wb
        base = {"text_wrap": True, "valign": "top"}
        self.head = wb.add_format({**base, "bold": True, "bg_color": "#DDEBF7", "border": 1})
        self.text = wb.add_format(base)
        self.quoted = wb.add_format({**base, "quote_prefix": True})
        self.dim_heads = [wb.add_format({**base, "bold": True, "bg_color": c, "border": 1,
                                         "align": "center"})
                          for c in ("#E2EFDA", "#FFF2CC")]
        cell = {"align": "center", "valign": "top", "border": 1, "border_color": "#D9D9D9"}
        self.code = wb.add_format(cell)
        self.fills = [wb.add_format({**cell, "bg_color": _fill(i / 10)}) for i in range(11)]

    def string(self, ws, r: int, c: int, value: object, fmt=None) -> None:
        v = _text(value)
        if v.startswith(FORMULA_START):
            fmt = self.quoted
        ws.write_string(r, c, v, fmt if fmt is not None else self.text)


@functools.cache
def _code() -> str:
    """The code rendering a data tab's rows (a key part of the kept runs)."""
    import pipeline.core.coding.sheet_writer as sheet_writer

    return code_digest(sheet_writer)


def _fill(p: float) -> str:
    return "#" + "".join(f"{round(255 + p * (t - 255)):02X}" for t in _FILL_TO)


class _RowsOnce:
    """The data tab's rendered answer rows, kept in a temporary file by the first workbook
    that renders them and read back by the next ones that would render the same XML (no
    suggestions, the same format indexes: the row XML names them)."""

    def __init__(self):
        self._file = None
        self._xfs: tuple | None = None
        self._complete = False   # every row written to the file (not cut short by an error)

    def __enter__(self) -> _RowsOnce:
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def chunks(self, xfs: tuple, render: Callable[[], Iterable[str]]) -> Iterator[str]:
        if self._complete and xfs == self._xfs:
            self._file.seek(0)
            yield from iter(lambda: self._file.read(1 << 20), "")
            return
        if self._file is not None:   # other formats: render, keep the first
            yield from render()
            return
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self._xfs = xfs
        for chunk in render():
            self._file.write(chunk)
            yield chunk
        self._complete = True


def _write_workbook(path: Path, coder: str, school_year: str, rows: pd.DataFrame,
                    codebooks: list, columns: list, by_answer: dict | None,
                    once: _RowsOnce | None = None, kept: RunsKept | None = None) -> None:
    from pipeline.core.exchange.spreadsheet import open_workbook

    wb = open_workbook(path)
    try:
        w = _Writer(wb)
        wb.set_properties({"title": f"Coder sheet {school_year}: {coder}"})
        _data_tab(w, wb.add_worksheet(coder, worksheet_class=RowsWorksheet), rows, columns,
                  by_answer, once, kept)
        _codebook_tab(w, wb.add_worksheet(CODEBOOK_TAB), codebooks, columns)
        _instructions_tab(w, wb.add_worksheet(INSTRUCTIONS_TAB), coder, school_year, len(rows),
                          by_answer is not None)
    finally:
        wb.close()


def _data_tab(w: _Writer, ws: RowsWorksheet, rows: pd.DataFrame, columns: list,
              by_answer: dict | None, once: _RowsOnce | None = None,
              kept: RunsKept | None = None) -> None:
    """The coder's tab: header by the API, the answer rows rendered in bulk (`xlsx_rows`:
    the cells xlsxwriter writes for write_string / write_number / write_blank, without its
    per-cell cost; 70,000 answers x 116 columns). Blind rows come from `kept` (runs kept
    between runs) or else from `once` when an earlier workbook of the same call rendered
    them."""
    n_ctx = len(CONTEXT)
    for j, (header, _col) in enumerate(CONTEXT):
        w.string(ws, 0, j, header, w.head)
        ws.set_column(j, j, WIDTHS[header])
    dims: list[tuple[str, str]] = []
    for k, (_book, code, header) in enumerate(columns):
        key = (code.framework, code.dimension)
        if key not in dims:
            dims.append(key)
        w.string(ws, 0, n_ctx + k, header, w.dim_heads[(len(dims) - 1) % 2])
    ws.set_column(n_ctx, n_ctx + len(columns) - 1, CODE_WIDTH)
    ws.set_row(0, 60)
    text_xf, quoted_xf = w.text._get_xf_index(), w.quoted._get_xf_index()

    def string(v: object) -> str:
        s = _text(v)
        return string_cell(s, quoted_xf if s.startswith(FORMULA_START) else text_xf)

    def session(v: object) -> str:
        if v is not None and not pd.isna(v):
            return number_cell(int(v), text_xf)
        return string(v)

    def context_cells(part: pd.DataFrame) -> list:
        return [rendered(part[col] if col in part.columns else [None] * len(part),
                         session if header == "session" else string)
                for header, col in CONTEXT]

    code_cells = BlankRun(n_ctx, n_ctx + len(columns) - 1)
    code_xf = w.code._get_xf_index()
    blank = code_cells.uniform(code_xf)
    last_row, last_col = len(rows), n_ctx + len(columns) - 1
    if by_answer is None and kept is not None:   # blind, kept per question and session
        # keyed by every column of `rows` (the same frame for every coder: hashed once)
        chunks = kept.chunks(
            rows, f"sheet-{rows['school_year'].iloc[0]}",
            repr((_code(), text_xf, quoted_xf, code_xf, n_ctx, len(columns))),
            lambda part, start: render_rows(1 + start, context_cells(part),
                                            [blank] * len(part)), deflated=True)
    elif by_answer is None and once is not None:   # blind: the same rows for every coder
        chunks = once.chunks((text_xf, quoted_xf, code_xf),
                             lambda: render_rows(1, context_cells(rows), [blank] * len(rows)))
    else:
        tails = [blank] * len(rows)
        for i, aid in enumerate(rows["answer_id"] if by_answer else ()):
            sugg = by_answer.get(aid)
            if not sugg:
                continue
            xfs = []
            for k, (_book, code, _header) in enumerate(columns):
                hits = sugg.get(code.code_id)
                if not hits:
                    xfs.append(code_xf)
                    continue
                p = max(pr for _s, pr in hits)
                xfs.append(w.fills[round(p * 10)]._get_xf_index())
                note = "\n".join(f"suggested ({src or 'model'}) p={pr:.2f}"
                                 for src, pr in sorted(hits))
                ws.write_comment(i + 1, n_ctx + k, note,
                                 {"author": "suggestion", "x_scale": 1.6})
            tails[i] = code_cells.varied(xfs)
        chunks = render_rows(1, context_cells(rows), tails)
    ws.write_rendered_rows(1, last_row, last_col, chunks)
    ws.data_validation(1, n_ctx, last_row, last_col, {
        "validate": "list", "source": ["0", "1"], "error_type": "stop",
        "error_title": "1, 0 or blank",
        "error_message": "1 = the code applies; 0 or blank = it does not."})
    ws.freeze_panes(1, n_ctx)
    ws.autofilter(0, 0, last_row, last_col)
    ws.activate()


def _codebook_tab(w: _Writer, ws, codebooks: list, columns: list) -> None:
    widths = {"framework": 22, "category": 20, "category_definition": 40, "code": 22,
              "code_id": 22, "sheet_column": 22, "definition": 50, "use_when": 40,
              "not_when": 40, "examples": 50}
    for j, col in enumerate(CODEBOOK_COLUMNS):
        w.string(ws, 0, j, col, w.head)
        ws.set_column(j, j, widths[col])
    for i, (book, code, header) in enumerate(columns, start=1):
        definition = getattr(code, "definition", "") or getattr(code, "description", "")
        values = [book.label, book.dimension_labels.get(code.dimension, code.dimension),
                  book.dimensions.get(code.dimension, ""), code.label, code.code_id, header,
                  definition, getattr(code, "use_when", ""), getattr(code, "not_when", ""),
                  getattr(code, "examples", ())]
        for j, v in enumerate(values):
            w.string(ws, i, j, v)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(columns), len(CODEBOOK_COLUMNS) - 1)


def instructions(coder: str, school_year: str, n_answers: int, with_suggestions: bool
                 ) -> list[str]:
    lines = [
        f"Coder sheet for {coder}, school year {school_year}: {n_answers} answers.",
        "",
        f"1. Code in the tab '{coder}'. One row per answer; one column per code (its label; the "
        f"'{CODEBOOK_TAB}' tab gives each code's framework, category, definition, when to use it "
        "and when not, and examples).",
        "2. Put 1 in every code that applies to the answer; leave the others blank (or 0). A row "
        "with no 1 means 'coded, nothing applies': every row counts as coded, so code every row "
        "before you hand the sheet in.",
        f"3. Do not rename the tab '{coder}' (it is your coder id), and do not rename, move or "
        "delete the header row or the answer_id column. Other columns (question, session, role, "
        "answer_text) are context only; editing them changes nothing.",
        "4. Hand the file in by putting it in the coder-sheets folder (SURVEY_CODER_SHEETS) and "
        "re-running the pipeline. Rows it cannot use are listed in coding.sheet_quarantine with "
        "a reason: fix them here and re-run.",
        "",
    ]
    if with_suggestions:
        lines += [
            "This sheet shows machine suggestions (single-coder review workflow).",
            "- A suggested code has a cell comment 'suggested (source) p=0.83' and a fill: the "
            "stronger the colour, the higher the model's probability that the code applies.",
            "- The cells stay EMPTY: a suggestion is never read back as a code. Type 1 yourself "
            "where the code applies, whatever the suggestion says.",
            "- Rows are ordered so that the answers the model is least sure of come first: "
            "coding those teaches it most. (Least sure = a probability nearest 0.5 for any of "
            "its codes; answers the model has no suggestion for come first of all.)",
            "- Do not use this sheet for double coding (reliability): seeing the model's guess "
            "makes the codes no longer independent.",
        ]
    else:
        lines += [
            "This sheet is blind: it shows no keyword or model codes, and the rows are in a "
            "fixed order (question, session, answer id). Code independently: do not look at "
            "another coder's sheet, so that agreement between coders means something.",
        ]
    return lines


def _instructions_tab(w: _Writer, ws, coder: str, school_year: str, n_answers: int,
                      with_suggestions: bool) -> None:
    ws.set_column(0, 0, 110)
    for i, line in enumerate(instructions(coder, school_year, n_answers, with_suggestions)):
        w.string(ws, i, 0, line)
