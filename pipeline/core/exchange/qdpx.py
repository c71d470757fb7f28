"""The coded project as a REFI-QDA project file (`.qdpx`: a zip of `project.qde` and
`Sources/`), to open in NVivo, ATLAS.ti, MAXQDA, QualCoder and other tools.

- the codebook: framework > category > code, as in the `.qdc` (`qdc.append_code_tree`);
- one text source per answer (`Sources/<guid>.txt`, the redacted text only), named
  `<school year> <question> <answer id>`, with the variables School year, Session, School
  (pseudonymous id), Role and Question;
- one case per pseudonymous school, listing its answers;
- every final code (agreed, adjudicated, or a machine stand-in's in a year nobody coded by
  hand; never an unresolved discrepancy) as a coded selection over the whole answer, coded by
  each person or program that decided it: both coders for an agreed code, the adjudicator for
  an adjudicated one, the suggester or keyword coder for a machine code (the users of the
  project). The selection's description says the provenance.

GUIDs are name-based on our ids (`guids`), and the zip's timestamps fixed, so the same warehouse
gives the same file.

How it is written (100,000 answers: a million elements): `plan` gathers what the document is
made of once (the answers sorted by school year, session, question and id; each answer's final
codes; the users; the small head and tail of the document rendered by ElementTree; the asset
plans only the sessions it has not kept, and puts the cases together from every session's
share, `Outline`);
`qde_chunks` renders the document from it as text chunks, each a run of whole lines, in the
exact bytes `xml.etree.ElementTree` (indented by `ET.indent`) writes for the same tree;
`write_qdpx` deflates them into the zip member in parts (one per session, `zip_parts`). No
tree; the asset streams each session's parts through the result cache (qdpx_sessions.py), so
the document is never in memory; without a cache (tests, small projects) each session's parts
are held in memory, deflated. tests/test_refi_qda.py checks the bytes against a tree built with ElementTree (the way
this module used to build it) and the file against the published schema.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.coding.codebook import Codebook
from pipeline.core.exchange import zip_parts
from pipeline.core.exchange.guids import code_guid, guid, guids
from pipeline.core.exchange.qdc import ORIGIN, append_code_tree, xml_bytes
from pipeline.core.exchange.spreadsheet import runs
from pipeline.core.exchange.zip_parts import Part, Records
from pipeline.core.files import atomic_path
from pipeline.core.ingest.ids import QUESTION_TEXT

PROJECT_NS = "urn:QDA-XML:project:1.0"
PROJECT_NAME = "Coaching feedback survey: coded answers"
# final_codes provenances exported as coded selections (unresolved ones are not final codes)
EXPORTED_PROVENANCES = ("agreed", "adjudicated", "trained_suggestion", "zero_shot_suggestion",
                        "keyword")
VARIABLES = (  # (name, answers column, REFI type)
    ("School year", "school_year", "Text"),
    ("Session", "session_number", "Integer"),
    ("School", "school_id", "Text"),
    ("Role", "role", "Text"),
    ("Question", "question_id", "Text"),
)
PROJECT_DESCRIPTION = (
    "Open-ended answers of the coaching-feedback survey (names redacted), with their final "
    "codes from survey-coding-pipeline. Each coded selection's description says how the "
    "code was decided (agreed, adjudicated, or a machine stand-in).")
CASE_DESCRIPTION = "a school (pseudonymous id) and its answers"
ANSWER_COLUMNS = ("answer_id", "school_year", "question_id", "answer_text",
                  *(col for _name, col, _kind in VARIABLES if col not in
                    ("school_year", "question_id")))
# the sources' order: by school year, then session, so each session is one run of the document
# that a refresh of another session leaves as it was (`session_spans`, qdpx_sessions.py)
DOCUMENT_ORDER = ("school_year", "session_number", "question_id", "answer_id")
FINAL_COLUMNS = ("answer_id", "framework", "code_id", "provenance", "decided_by")
_SOURCES_PER_CHUNK = 500
_CASES_PER_CHUNK = 1 << 20   # characters of <SourceRef> lines


def coders_of(provenance: str, decided_by: object) -> list[str]:
    """Who coded a final code: both coders of an agreed one ('a+b'), else `decided_by`."""
    who = "" if decided_by is None or pd.isna(decided_by) else str(decided_by).strip()
    if provenance == "agreed" and "+" in who:
        return [w for w in who.split("+") if w]
    return [who or "unknown"]


def text_value(value: object) -> str | None:
    """A value as the document writes it (None when missing; 3.0 as "3")."""
    return _text(value)


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


# ElementTree's escaping (xml.etree.ElementTree._escape_cdata / _escape_attrib, Python 3.11),
# so the rendered text is the bytes ElementTree writes.

def _cdata(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _attr(text: str) -> str:
    text = _cdata(text)
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#09;")
    return text


def _leaf(indent: str, tag: str, text: str) -> str:
    """One line (or more, when the text has line breaks): a leaf element with its text, as
    ElementTree writes it (`<Tag />` for an empty text)."""
    return f"{indent}<{tag}>{_cdata(text)}</{tag}>\n" if text else f"{indent}<{tag} />\n"


@dataclass
class Outline:
    """The document around its sources: the head (users, codebook, variables), the cases, the
    tail, and what it counts. A project's own (`Project.outline`), or put together from each
    session's cases (`session_cases`, kept with the session's sources) when only some
    sessions are planned (pipeline/core/exchange/qdpx_sessions.py)."""

    head: str
    tail: str
    cases: list[tuple[str, list[str]]]   # (school, its <SourceRef> lines in runs), sorted
    sources: int
    selections: int
    users: int


@dataclass
class Project:
    """What project.qde and Sources/ are made of (`plan`), to render twice without a tree:
    once for the name scan, once into the zip."""

    head: str                   # from <?xml ...?> to </Variables>, whole lines
    tail: str                   # the project's Description and </Project> (no final newline)
    answers: dict[str, list]    # the sorted answers, column -> values
    by_answer: dict[object, list[int]]   # answer id -> rows of `final`, in its order
    final: dict[str, list]      # the exported final codes, column -> values
    labels: dict[tuple[str, str], str]   # (framework, code_id) -> label
    users: list[str]

    @property
    def n_selections(self) -> int:
        """The coded selections the document holds (final codes of its answers only)."""
        by_answer = self.by_answer
        return sum(len(by_answer.get(aid, ())) for aid in self.answers["answer_id"])

    def outline(self) -> Outline:
        """The document around the sources of these answers, all of it."""
        n = len(self.answers["answer_id"])
        return Outline(self.head, self.tail, merged_cases([session_cases(self, 0, n)]),
                       sources=n, selections=self.n_selections, users=len(self.users))

    @property
    def files(self) -> dict[str, str]:
        """Sources/<guid>.txt -> text, in the order written (built when asked: the writer
        streams them per session, `source_members`)."""
        a = self.answers
        return {f"Sources/{g}.txt": t
                for g, t in zip(a["source_guid"], a["answer_text"], strict=True)}


Rows = list[tuple[int, int]]   # ranges start..stop-1 of the answers in document order


def read_answers(con, rows: Rows | None = None) -> pd.DataFrame:
    """staging.answers' columns the project shows, in document order (what `plan` sorts them
    into: the order is unique, answer_id last), read from the warehouse: all of them, or the
    answers at `rows` of that order (some sessions')."""
    from pipeline.core.warehouse.connection import read_columns

    columns = list(dict.fromkeys((*ANSWER_COLUMNS, *DOCUMENT_ORDER)))
    if rows is None:
        return read_columns(con, "staging.answers", columns, order_by=_ORDER)
    quoted = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"select {quoted} {_at_rows(rows)} order by doc_row",
                       [v for r in rows for v in r]).df()


def read_final_codes(con, rows: Rows | None = None) -> pd.DataFrame:
    """The final codes the project exports (FINAL_COLUMNS), sorted by them: each answer's
    codes by framework, code, provenance and who decided. Not in the table's order: where a
    write leaves rows differs between a full build and a refresh (a year's rows replaced),
    and the project, and each session's cache key, would follow it. `rows`: only the codes
    of the answers at those rows of the document order (`read_answers`)."""
    from pipeline.core.warehouse.connection import empty_frame, table_columns

    if not table_columns(con, "coding.final_codes"):
        return empty_frame("coding.final_codes")[list(FINAL_COLUMNS)]
    marks = ", ".join("?" for _ in EXPORTED_PROVENANCES)
    of_rows = "" if rows is None else f"and answer_id in (select answer_id {_at_rows(rows)})"
    return con.execute(f"select {', '.join(FINAL_COLUMNS)} from coding.final_codes "
                       f"where provenance in ({marks}) {of_rows} "
                       f"order by {', '.join(f'{c} nulls last' for c in FINAL_COLUMNS)}",
                       [*EXPORTED_PROVENANCES, *(v for r in rows or () for v in r)]).df()


def check_unique_answers(con) -> None:
    """ValueError naming answer ids staging.answers holds more than once (one source file
    each: `plan` checks the answers it plans, this the whole project's when it plans only
    some sessions)."""
    from pipeline.core.warehouse.connection import table_columns

    if not table_columns(con, "staging.answers"):
        return
    twice = [a for (a,) in con.execute(
        "select answer_id from staging.answers group by answer_id having count(*) > 1 "
        "order by answer_id limit 5").fetchall()]
    if twice:
        raise ValueError(f"answers with the same answer_id: {', '.join(map(str, twice))}")


def read_decisions(con) -> tuple[set[tuple[str, str]], set[tuple[str, object]]]:
    """(the distinct (framework, code id), the distinct (provenance, decided by)) of every
    final code the project exports: what `check_codes` and `users_of` need of the codes of
    sessions that are not planned."""
    from pipeline.core.warehouse.connection import table_columns

    if not table_columns(con, "coding.final_codes"):
        return set(), set()
    marks = ", ".join("?" for _ in EXPORTED_PROVENANCES)
    pairs = [set(con.execute(f"select distinct {cols} from coding.final_codes "
                             f"where provenance in ({marks})",
                             list(EXPORTED_PROVENANCES)).fetchall())
             for cols in ("framework, code_id", "provenance, decided_by")]
    return pairs[0], pairs[1]


_ORDER = ", ".join(f"{c} nulls last" for c in DOCUMENT_ORDER)


def _at_rows(rows: Rows) -> str:
    """`from` the answers with their place `doc_row` in document order, at those rows (the
    parameters: each range's start and stop)."""
    where = " or ".join("(doc_row >= ? and doc_row < ?)" for _ in rows) or "false"
    return (f"from (select *, row_number() over (order by {_ORDER}) - 1 as doc_row "
            f"from staging.answers) where {where}")


def plan(books: list[Codebook], answers: pd.DataFrame, final: pd.DataFrame,
         in_order: bool = False, users: list[str] | None = None) -> Project:
    """Check the final codes against the codebooks and gather what the document holds.
    `in_order`: the answers are in DOCUMENT_ORDER already (`read_answers` sorts them so, in
    DuckDB), so they are not sorted again. `users`: the project's users, when `answers` and
    `final` are some sessions' only (`users_of` the whole project's `read_decisions`)."""
    final = final[final["provenance"].isin(EXPORTED_PROVENANCES)]
    fw, cid = list(final["framework"]), list(final["code_id"])
    check_codes(books, set(zip(fw, cid, strict=True)))
    prov, decided = list(final["provenance"]), list(final["decided_by"])
    if users is None:
        users = users_of(set(zip(prov, decided, strict=True)))
    fin = {"answer_id": list(final["answer_id"]), "framework": fw, "code_id": cid,
           "provenance": prov, "decided_by": decided}
    by_answer: dict[object, list[int]] = {}
    for k, aid in enumerate(fin["answer_id"]):
        if aid is None or (not isinstance(aid, str) and pd.isna(aid)):
            continue   # groupby drops missing keys
        by_answer.setdefault(aid, []).append(k)

    if not in_order:
        answers = answers.sort_values([c for c in DOCUMENT_ORDER if c in answers.columns],
                                      kind="mergesort")
    # iterating a Series gives the values itertuples gave (Python scalars)
    cols = {c: (list(answers[c]) if c in answers.columns else [None] * len(answers))
            for c in ANSWER_COLUMNS}
    cols["source_guid"] = guids("source", cols["answer_id"])
    cols["answer_text"] = [str(t) for t in cols["answer_text"]]
    twice = pd.Series(cols["source_guid"]).duplicated().to_numpy()   # one source file each
    if twice.any():
        seen = pd.Series(cols["answer_id"])[twice]
        raise ValueError("answers with the same answer_id: "
                         f"{', '.join(map(str, seen.unique()[:5]))}")
    head, tail = head_and_tail(books, users)
    return Project(head=head, tail=tail, answers=cols, by_answer=by_answer, final=fin,
                   labels=code_labels(books), users=users)


def check_codes(books: list[Codebook], pairs: set[tuple[str, str]]) -> None:
    """ValueError naming the (framework, code id) pairs the codebooks do not hold."""
    codes = {(b.framework, c.code_id) for b in books for c in b.codes}
    unknown = sorted(f"{f}/{c}" for f, c in pairs if (f, c) not in codes)
    if unknown:
        raise ValueError(f"final codes not in the codebooks: {', '.join(unknown[:5])}")


def users_of(decisions: set[tuple[str, object]]) -> list[str]:
    """The project's users, sorted: whoever decided the (provenance, decided_by) pairs."""
    return sorted({u for p, d in decisions for u in coders_of(p, d)})


def code_labels(books: list[Codebook]) -> dict[tuple[str, str], str]:
    """(framework, code id) -> label: what a coded selection is named by."""
    return {(b.framework, c.code_id): c.label for b in books for c in b.codes}


def head_and_tail(books: list[Codebook], users: list[str]) -> tuple[str, str]:
    """The document without cases and sources, by ElementTree, cut where they go."""
    root = ET.Element("Project", xmlns=PROJECT_NS, name=PROJECT_NAME, origin=ORIGIN)
    users_el = ET.SubElement(root, "Users")
    for u in users or ["unknown"]:
        ET.SubElement(users_el, "User", guid=guid("user", u), name=u)
    append_code_tree(ET.SubElement(ET.SubElement(root, "CodeBook"), "Codes"), books)
    variables_el = ET.SubElement(root, "Variables")
    for name, _col, kind in VARIABLES:
        var = ET.SubElement(variables_el, "Variable", guid=guid("variable", name), name=name,
                            typeOfVariable=kind)
        ET.SubElement(var, "Description").text = f"the answer's {name.lower()}" + (
            " (pseudonymous id)" if name == "School" else "")
    ET.SubElement(root, "Description").text = PROJECT_DESCRIPTION
    text = xml_bytes(root).decode("utf-8")
    cut = text.rindex("\n  <Description>") + 1
    return text[:cut], text[cut:]


def qde_chunks(project: Project, sources: Iterable[str | bytes] | None = None
               ) -> Iterator[str | bytes]:
    """project.qde as text, in chunks of whole lines (each but the last ends with a line
    break); joined, the document ElementTree writes for the same project. `sources`: the
    `<TextSource>` elements rendered already (str, or bytes encoded by `encode`), in order,
    instead of rendering them here."""
    yield from head_chunks(project.outline())
    if project.answers["answer_id"]:
        yield "  <Sources>\n"
        yield from (source_chunks(project, 0, len(project.answers["answer_id"]))
                    if sources is None else sources)
        yield "  </Sources>\n"
    yield project.tail


def head_chunks(outline: Outline) -> Iterator[str]:
    """The document up to its sources: the head and the cases."""
    yield outline.head
    if outline.cases:
        yield from _cases(outline.cases)


def _cases(cases: list[tuple[str, list[str]]]) -> Iterator[str]:
    out, size = ["  <Cases>\n"], 0
    for school, refs in cases:
        out.append(f'    <Case guid="{guid("case", school)}" name="{_attr(school)}">\n'
                   f"      <Description>{CASE_DESCRIPTION}</Description>\n")
        out.extend(refs)
        out.append("    </Case>\n")
        size += sum(map(len, refs))
        if size > _CASES_PER_CHUNK:
            yield "".join(out)
            out, size = [], 0
    out.append("  </Cases>\n")
    yield "".join(out)


def session_cases(project: Project, start: int, stop: int) -> dict[str, str]:
    """school -> the `<SourceRef>` lines of its answers among the sorted answers
    start..stop-1, in order: a session's share of the cases, which list each school's
    answers in document order (so a school's case is its shares in session order,
    `merged_cases`)."""
    a = project.answers
    out: dict[str, list[str]] = {}
    for school, g in zip(a["school_id"][start:stop], a["source_guid"][start:stop], strict=True):
        school = _text(school)
        if school:
            out.setdefault(school, []).append(source_ref(g))
    return {school: "".join(refs) for school, refs in out.items()}


def source_ref(source_guid: str) -> str:
    """A case's line naming one of its sources."""
    return f'      <SourceRef targetGUID="{source_guid}" />\n'


def merged_cases(shares: Iterable[dict[str, str]]) -> list[tuple[str, list[str]]]:
    """(school, its shares in order) sorted by school: the cases of the sessions whose
    `session_cases` are `shares`, in document order."""
    out: dict[str, list[str]] = {}
    for share in shares:
        for school, refs in share.items():
            out.setdefault(school, []).append(refs)
    return sorted(out.items())


def source_chunks(project: Project, start: int, stop: int) -> Iterator[str]:
    """The `<TextSource>` elements of the sorted answers start..stop-1, in chunks of whole
    lines: each depends on its own answer and final codes only, so a session's run of them
    (`session_spans`) can be rendered, scanned and kept apart
    (pipeline/core/exchange/qdpx_sessions.py)."""
    a, f = project.answers, project.final
    user_guids = {u: guid("user", u) for u in project.users}
    variable_refs = {name: f'        <VariableRef targetGUID="{guid("variable", name)}" />\n'
                     for name, _col, _kind in VARIABLES}
    variables = [(name, a[col], "IntegerValue" if name == "Session" else "TextValue")
                 for name, col, _kind in VARIABLES]
    label_attr = {k: _attr(v) for k, v in project.labels.items()}
    # the span's final codes (rows k of `f`, with the answer's id as the answer holds it, as
    # guid(kind, aid, ...) had it) and who decided each; their GUIDs made together
    ks, aids = [], []
    for aid in a["answer_id"][start:stop]:
        for k in project.by_answer.get(aid, ()):
            ks.append(k)
            aids.append(aid)
    who_of = {k: coders_of(f["provenance"][k], f["decided_by"][k]) for k in ks}
    frameworks = [f["framework"][k] for k in ks]
    code_ids = [f["code_id"][k] for k in ks]
    selection_guid = dict(zip(ks, guids("selection", aids, frameworks, code_ids), strict=True))
    pairs = [(i, u) for i, k in enumerate(ks) for u in who_of[k]]   # (code's place, coder)
    coding_guid = dict(zip(((ks[i], u) for i, u in pairs), guids(
        "coding", [aids[i] for i, _u in pairs], [frameworks[i] for i, _u in pairs],
        [code_ids[i] for i, _u in pairs], [u for _i, u in pairs]), strict=True))
    out: list[str] = []
    for i in range(start, stop):
        aid = a["answer_id"][i]
        g, text, q = a["source_guid"][i], a["answer_text"][i], a["question_id"][i]
        name = _attr(f"{a['school_year'][i]} {q} {aid}")
        description = _cdata(f'answer {aid} to "{QUESTION_TEXT.get(q, q)}"')
        out.append(f'    <TextSource guid="{g}" name="{name}" plainTextPath="internal://{g}.txt">'
                   f"\n      <Description>{description}</Description>\n")
        end = str(len(text))
        for k in project.by_answer.get(aid, ()):
            key = (f["framework"][k], f["code_id"][k])
            provenance, who = f["provenance"][k], who_of[k]
            out.append(
                f'      <PlainTextSelection guid="{selection_guid[k]}" '
                f'name="{label_attr[key]}" startPosition="0" endPosition="{end}" '
                f'creatingUser="{user_guids[who[0]]}">\n'
                f"        <Description>"
                f"{_cdata(provenance.replace('_', ' ') + ': decided by ' + ' and '.join(who))}"
                "</Description>\n")
            ref = f'          <CodeRef targetGUID="{code_guid(*key)}" />\n'
            for u in who:
                out.append(f'        <Coding guid="{coding_guid[k, u]}" '
                           f'creatingUser="{user_guids[u]}">\n{ref}        </Coding>\n')
            out.append("      </PlainTextSelection>\n")
        for name, values, tag in variables:
            value = _text(values[i])
            if value is None:
                continue
            out.append(f"      <VariableValue>\n{variable_refs[name]}"
                       f"{_leaf('        ', tag, value)}      </VariableValue>\n")
        out.append("    </TextSource>\n")
        if (i - start) % _SOURCES_PER_CHUNK == _SOURCES_PER_CHUNK - 1:
            yield "".join(out)
            out = []
    if out:
        yield "".join(out)


def session_spans(project: Project) -> list[tuple[str, str | None, int, int]]:
    """(school year, session or None, start, stop) of each session's run of the sorted answers
    (sorted by year, then session: each session of a year is one run), in document order."""
    a = project.answers
    return [(str(a["school_year"][start]), _text(a["session_number"][start]), start, stop)
            for _name, start, stop in runs(a, ("school_year", "session_number"))]


def project_document(books: list[Codebook], answers: pd.DataFrame, final: pd.DataFrame
                     ) -> tuple[bytes, dict[str, str]]:
    """(project.qde bytes, {zip path of a source: its text}): the whole document in memory,
    for tests and small projects (`write_qdpx` streams it)."""
    project = plan(books, answers, final)
    return encode("".join(qde_chunks(project))), project.files


def encode(text: str) -> bytes:
    return text.encode("utf-8", "xmlcharrefreplace")   # as ElementTree's writer


def source_members(project: Project, start: int, stop: int) -> Iterator[tuple[str, bytes]]:
    """(zip path, text) of the source files of the sorted answers start..stop-1."""
    a = project.answers
    for g, text in zip(a["source_guid"][start:stop], a["answer_text"][start:stop], strict=True):
        yield f"Sources/{g}.txt", text.encode("utf-8")


def session_parts(project: Project, start: int, stop: int) -> tuple[Part, Records]:
    """The `<TextSource>` elements of the sorted answers start..stop-1 deflated as one part of
    project.qde, and their source files as zip records, in memory."""
    return (zip_parts.deflate(encode(c) for c in source_chunks(project, start, stop)),
            zip_parts.records(source_members(project, start, stop)))


# zlib's fastest level for the head and cases, which are deflated anew on every run (the
# cases list every answer's source, so a new session changes them): at a million answers
# 71 MB in 0.7 s instead of 1.7 s at the default level, 24.7 MB instead of 23.1 MB
HEAD_LEVEL = 1


def write_qdpx(books: list[Codebook], answers: pd.DataFrame, final: pd.DataFrame,
               path: str | Path, project: Project | None = None,
               sessions: list[tuple[Part, Records]] | None = None,
               outline: Outline | None = None) -> dict:
    """Write the `.qdpx` atomically; returns counts (sources, selections, users). `project`:
    the `plan` of the same inputs, if made already; `sessions`: each session's `session_parts`
    in document order, if made already (kept ones, qdpx_sessions.py); `outline`: the whole
    document's, when `project` plans only some sessions (the others' parts are kept).

    project.qde is deflated in parts (zip_parts.py): the head and cases, each session's sources,
    the end; then come the source files, session by session. A session's parts depend on its
    rows only, so the same warehouse gives the same bytes however they were made."""
    project = project or plan(books, answers, final)
    if sessions is None:
        sessions = [session_parts(project, start, stop)
                    for _year, _session, start, stop in session_spans(project)]
    outline = outline or project.outline()
    opening, closing = (["  <Sources>\n"], ["  </Sources>\n"]) if outline.sources else ([], [])
    head = zip_parts.deflate((encode(c) for c in [*head_chunks(outline), *opening]),
                             level=HEAD_LEVEL)
    tail = zip_parts.deflate([encode(c) for c in [*closing, outline.tail]], last=True)
    with atomic_path(path) as tmp, zip_parts.PartsZip(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        zip_parts.write_member(z, "project.qde", [head, *(doc for doc, _recs in sessions), tail])
        for _doc, recs in sessions:
            zip_parts.append_records(z, recs)
    return {"sources": outline.sources, "selections": outline.selections,
            "users": outline.users}
