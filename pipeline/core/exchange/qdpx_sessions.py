"""The REFI-QDA project's sources per session, rendered and name-checked once and kept.

Most of project.qde (and of the time to write and check it) is the `<TextSource>` elements: one
per answer, with its final codes as coded selections. The answers are sorted by school year,
then session, so each session's sources are one run of the document, and each source depends
only on its answer and that answer's final codes (`qdpx.source_chunks`). The sensor's refresh
after a new session's export leaves the other sessions' runs unchanged (and every other year's),
so each session's run is kept in the result cache as written into the zip, keyed by exactly
what it is rendered from (`<cache>/results/refi_qda/<year>-session-<n>--<key>.bin`: the run
deflated as one part of project.qde, `zip_parts`; `...-session-<n>.sources--<key>.bin`: the
session's source files as zip records; `...-session-<n>.names--<key>.bin`: what the roster check
found in both, and the parts' sizes and CRCs):

- the session's answers (the columns the document shows, in document order) and each answer's
  exported final codes (in the order they are rendered), as values;
- the codebooks' labels and the question texts;
- the roster (the check's findings depend on it);
- the code: the source files of the renderer, the GUIDs, the roster check and this module
  (`code_digest`).

The asset takes those keys from DuckDB (`warehouse_keys`: each session's row count and sum of
row hashes of its answers' shown columns and of its answers' exported final codes, which the
readers sort by their own values, so the sets decide the rendering); for frames given directly
(tests, small projects) `span_keys` hashes the values in Python. A changed row, label, roster
or line of that code gives another key, so the session is rendered again; a missing or damaged
entry too. A refresh copies the kept parts into the new
zip as they are, and reads and plans only the other sessions' answers and final codes
(`rows_to_plan`; the users and the codebook check come from distinct values in DuckDB). Each
session's share of the cases (the `<SourceRef>` lines of its answers, per school) and its
counts are kept with its findings, so the cases, which list every year's sources by school,
are put together from the pieces (`outline`) and deflated anew on every run, with the head
(users, the codebook, variables) and the zip's central directory.

The check stays the independent method's count over the whole document: the kept findings of
each session's run join with the rest by `project_names.joined`, which adds the pairs of tokens
across each boundary (tests/test_refi_qda.py compares it with the uncached count).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.exchange import guids, project_names, qdpx, zip_parts
from pipeline.core.exchange.project_names import (
    ChunkNames,
    joined,
    scan_chunk,
    scan_chunks,
    without_guids,
)
from pipeline.core.exchange.zip_parts import Part, Records
from pipeline.core.ingest import ids
from pipeline.core.ingest.ids import QUESTION_TEXT
from pipeline.core.parallel import map_forked
from pipeline.core.privacy import name_scan
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.connection import table_columns
from pipeline.core.warehouse.fingerprint import (
    Joined,
    code_digest,
    fingerprint,
    session_fingerprints,
)

log = logging.getLogger(__name__)

# result-cache entries kept: three per session (its run, its source files, its findings), for
# years of sessions
MAX_FILES = 6000


@dataclass
class SessionSources:
    """One session's run of `<TextSource>` elements deflated as one part of project.qde, its
    source files as zip records (in memory, or the kept files positioned at them), and what the
    roster check found in the run and in its source texts. `label`: "<school year> session <n>"
    ("<school year> session ?" for answers without a session)."""

    label: str
    names: ChunkNames
    source_names: int
    reused: bool
    document: Part
    records: Records
    cases: dict[str, str]   # the session's share of the cases (qdpx.session_cases)
    sources: int            # its answers
    selections: int         # their coded selections

    def parts(self) -> tuple[Part, Records]:
        return self.document, self.records

    def close(self) -> None:
        for fh in (self.document.file, self.records.file):
            if fh is not None:
                fh.close()


@functools.cache
def _code() -> str:
    return code_digest(qdpx, zip_parts, guids, project_names, name_scan, ids,
                       sys.modules[__name__])


def span_keys(project: qdpx.Project, spans: list[tuple[int, int]], roster: str) -> list[str]:
    """The cache key of each run of sorted answers start..stop-1: everything its sources are
    rendered from (the answers' columns; their final codes, in each answer's order, which
    `qdpx.read_final_codes` sorts, with the answer they belong to; the code labels, question
    texts and roster).

    The final codes are put in answer order once for all spans (a stable sort of their
    answers' positions), so each span's codes are one slice: no loop over answers."""
    a, f = project.answers, project.final
    position = pd.Index(a["answer_id"]).get_indexer(pd.Index(f["answer_id"], dtype=object))
    order = np.argsort(position, kind="stable")
    order = order[position[order] >= 0]   # codes of answers not exported: in no source
    at = position[order]
    columns = {c: np.asarray(f[c], dtype=object)[order] for c in qdpx.FINAL_COLUMNS}
    shared = (sorted(project.labels.items()), sorted(QUESTION_TEXT.items()), roster)
    keys = []
    for start, stop in spans:
        lo, hi = np.searchsorted(at, [start, stop])
        codes = [(at[lo:hi] - start).tolist(),
                 *(columns[c][lo:hi].tolist() for c in qdpx.FINAL_COLUMNS)]
        keys.append(fingerprint("refi_qda sources/2", _code(),
                                [a[c][start:stop] for c in qdpx.ANSWER_COLUMNS], codes, *shared))
    return keys


def warehouse_keys(con, labels: dict, roster: str
                   ) -> list[tuple[str, str | None, int, str]]:
    """(school year, session, answers, key) of each session in document order (the year and
    session as `qdpx.session_spans` gives them), from the warehouse
    behind `con`, for the project `read_answers` and `read_final_codes` read from it: instead
    of `span_keys` over every answer in Python (~6 s at a million answers), DuckDB
    fingerprints of what each session's sources are rendered from. Those readers sort the
    rows by their own values (the answers by DOCUMENT_ORDER, its answer id unique; the codes
    by every column), so a session's sources are a function of its answers' shown columns
    and of its answers' exported final codes as sets: the row count and sum of row hashes of
    each, with the columns' types, the code labels, question texts, roster and code."""
    marks = ", ".join("?" for _ in qdpx.EXPORTED_PROVENANCES)
    codes = Joined("coding.final_codes", ", ".join(f"t.{c}" for c in qdpx.FINAL_COLUMNS),
                   f"t.provenance in ({marks})", tuple(qdpx.EXPORTED_PROVENANCES))
    # no final codes table: read as none, as the codes are
    joined = [codes] if table_columns(con, "coding.final_codes") else []
    prints = session_fingerprints(con, qdpx.ANSWER_COLUMNS, joined)
    types = con.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where database_name = current_database() and ((schema_name = 'staging' and "
        "table_name = 'answers') or (schema_name = 'coding' and table_name = 'final_codes')) "
        "order by table_name, column_index").fetchall()
    shared = (sorted(labels.items()), sorted(QUESTION_TEXT.items()), roster, types)
    return [(str(p.school_year), qdpx.text_value(p.session_number), p.answers[0], fingerprint(
                "refi_qda sources/warehouse/1", _code(), p.answers, *(p.joined or [(0, 0)]),
                *shared))
            for p in prints]


@dataclass
class Session:
    """One session of the document: its label, its result-cache slot and key, its school
    year and session as `qdpx.session_spans` gives them, and its number of answers."""

    label: str
    slot: str
    key: str
    year: str
    session: str | None
    answers: int


def sessions_of(keys: list[tuple[str, str | None, int, str]]) -> list[Session]:
    """The sessions of `warehouse_keys` (or of `span_keys` with the spans), in order."""
    return [Session(f"{year} session {session or '?'}", f"{year}-session-{session or 'none'}",
                    key, year, session, n) for year, session, n, key in keys]


def open_kept(cache: ResultCache | None, sessions: list[Session]
              ) -> list[SessionSources | None]:
    """Each session's kept sources (None where there are none, or no cache), in order."""
    kept: list[SessionSources | None] = []
    try:
        for s in sessions:
            kept.append(_open(cache, s.key, s.label, s.slot) if cache is not None else None)
    except BaseException:
        for piece in kept:
            if piece is not None:
                piece.close()
        raise
    return kept


def rows_to_plan(sessions: list[Session], kept: list[SessionSources | None]
                 ) -> qdpx.Rows | None:
    """The ranges of the document's answers (`qdpx.read_answers(con, rows)`) of the sessions
    not kept, adjacent ones joined; None when none is kept (every answer, read in order
    without placing each)."""
    if all(piece is None for piece in kept):
        return None
    rows: qdpx.Rows = []
    start = 0
    for session, piece in zip(sessions, kept, strict=True):
        stop = start + session.answers
        if piece is None:
            if rows and rows[-1][1] == start:
                rows[-1] = (rows[-1][0], stop)
            else:
                rows.append((start, stop))
        start = stop
    return rows


def session_sources(project: qdpx.Project, scan: FuzzyNameScan, roster: str,
                    cache: ResultCache | None,
                    keys: list[tuple[str, str | None, int, str]] | None = None,
                    kept: list[SessionSources | None] | None = None) -> list[SessionSources]:
    """Each session's run of sources, in document order: from the cache when its key matches,
    else rendered and checked, streamed into the cache and read back from it (memory stays
    flat: a run is ~2 KB per answer), or held in memory without a cache. `keys`: the
    sessions' `warehouse_keys` when the project was read from the warehouse, else
    `span_keys` are made here. `kept`: `open_kept` of those keys, when `project` plans only
    the sessions not kept (the answers at `rows_to_plan`); else `project` holds every
    session. Sessions to render are rendered side by side in worker processes
    (`map_forked`) when they hold PARALLEL_MIN_ANSWERS answers or more."""
    spans = qdpx.session_spans(project)
    if keys is None:
        if kept is not None:
            raise ValueError("kept sessions need the keys they were kept under")
        keys = [(y, s, b - a, k) for (y, s, a, b), k in zip(spans, span_keys(
            project, [(a, b) for _y, _s, a, b in spans], roster), strict=True)]
    sessions = sessions_of(keys)
    planned = sessions if kept is None else [
        s for s, piece in zip(sessions, kept, strict=True) if piece is None]
    if [(s.year, s.session, s.answers) for s in planned] != \
            [(y, s, b - a) for y, s, a, b in spans]:
        raise ValueError("the warehouse's sessions are not the project's: read them from the "
                         "same connection")
    at = {s.slot: (a, b) for s, (_y, _s, a, b) in zip(planned, spans, strict=True)}
    if kept is None:
        kept = open_kept(cache, sessions)
    missing = [s for s, piece in zip(sessions, kept, strict=True) if piece is None]
    unstored = set()   # rendered by a worker, not stored: rendered again in memory
    if cache is not None and sum(s.answers for s in missing) >= PARALLEL_MIN_ANSWERS:
        # the sessions are independent: rendered side by side, each into the cache, then
        # opened from it below
        try:
            stored = map_forked(lambda s: _stored(cache, project, scan, s, *at[s.slot]),
                                missing)
        except BaseException:
            for piece in kept:
                if piece is not None:
                    piece.close()
            raise
        unstored = {s.slot for s, ok in zip(missing, stored, strict=True) if not ok}
    out = []
    for s, piece in zip(sessions, kept, strict=True):
        if piece is None and cache is not None and s.slot not in unstored:
            piece = _open(cache, s.key, s.label, s.slot) or _render_into(
                cache, project, scan, s, *at[s.slot])
            if piece is not None:
                piece.reused = False
        out.append(piece or _render(project, scan, s.label, *at[s.slot]))
    return out


def outline(books: list, users: list[str], pieces: list[SessionSources]) -> qdpx.Outline:
    """The whole document's outline from its sessions' pieces (`qdpx.Project.outline` of a
    project planned whole): its users (`qdpx.users_of` every exported code's decisions)."""
    head, tail = qdpx.head_and_tail(books, users)
    return qdpx.Outline(head, tail, qdpx.merged_cases(p.cases for p in pieces),
                        sources=sum(p.sources for p in pieces),
                        selections=sum(p.selections for p in pieces), users=len(users))


# below this many answers to render, the sessions are rendered in this process (forking the
# workers costs more than it saves)
PARALLEL_MIN_ANSWERS = 20_000


def _stored(cache: ResultCache, project: qdpx.Project, scan: FuzzyNameScan, session: Session,
            start: int, stop: int) -> bool:
    """Render a session into the cache (in a worker process); whether it was stored."""
    piece = _render_into(cache, project, scan, session, start, stop)
    if piece is None:
        return False
    piece.close()
    return True


def _render(project: qdpx.Project, scan: FuzzyNameScan, label: str, start: int, stop: int
            ) -> SessionSources:
    chunks = list(qdpx.source_chunks(project, start, stop))
    return SessionSources(label, scan_chunks(scan, chunks),
                          _source_names(project, scan, start, stop), reused=False,
                          document=zip_parts.deflate(qdpx.encode(c) for c in chunks),
                          records=zip_parts.records(qdpx.source_members(project, start, stop)),
                          cases=qdpx.session_cases(project, start, stop), sources=stop - start,
                          selections=_selections(project, start, stop))


def _selections(project: qdpx.Project, start: int, stop: int) -> int:
    by_answer = project.by_answer
    return sum(len(by_answer.get(aid, ())) for aid in project.answers["answer_id"][start:stop])


def _source_names(project: qdpx.Project, scan: FuzzyNameScan, start: int, stop: int) -> int:
    texts = Counter(project.answers["answer_text"][start:stop])
    return sum(n * len(scan.find(t)) for t, n in texts.items())


def _render_into(cache: ResultCache, project: qdpx.Project, scan: FuzzyNameScan,
                 session: Session, start: int, stop: int) -> SessionSources | None:
    """Render, check and deflate the session's run chunk by chunk into the cache, then its
    source files' records, then what the check found, the parts' sizes and the session's
    cases and counts (a third entry, written last); then open them. None if they could not
    be stored."""
    key, label, slot = session.key, session.label, session.slot
    names = ChunkNames()

    def encoded() -> Iterator[bytes]:
        for chunk in qdpx.source_chunks(project, start, stop):
            scan_chunk(scan, names, chunk)
            yield qdpx.encode(chunk)

    document, recs = zip_parts.Deflater(), Records()
    if not (cache.store(key, document.stream(encoded()), slot=slot)
            and cache.store(key, recs.stream(qdpx.source_members(project, start, stop)),
                            slot=f"{slot}.sources")):
        return None
    meta = {"names": names.to_json(),
            "source_names": _source_names(project, scan, start, stop),
            "document": [document.crc, document.size, document.compressed_size],
            "records": recs.to_json(),
            "cases": qdpx.session_cases(project, start, stop),
            "selections": _selections(project, start, stop)}
    if not cache.store(key, json.dumps(meta).encode(), slot=f"{slot}.names"):
        return None
    piece = _open(cache, key, label, slot)
    if piece is not None:
        piece.reused = False
    return piece


def _open(cache: ResultCache, key: str, label: str, slot: str) -> SessionSources | None:
    meta = cache.load(key, slot=f"{slot}.names")
    if meta is None:
        return None
    try:
        data = json.loads(meta)
        names, source_names = ChunkNames.from_json(data["names"]), int(data["source_names"])
        crc, size, compressed = (int(v) for v in data["document"])
        listed = Records.from_json(data["records"])
        cases, selections = dict(data["cases"]), int(data["selections"])
        if not all(isinstance(v, str) for v in (*cases, *cases.values())):
            raise ValueError("cases are not text")
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("refi_qda cache entry for %s unusable (%s): rendering again", label, exc)
        return None
    document = cache.open(key, slot=slot)
    records = cache.open(key, slot=f"{slot}.sources")
    expected = ((document, compressed), (records, listed.size))
    if any(fh is None or _left(fh) != n for fh, n in expected):   # the three entries disagree
        for fh, _n in expected:
            if fh is not None:
                fh.close()
        if document is not None and records is not None:
            log.warning("refi_qda cache entries for %s disagree: rendering again", label)
        return None
    return SessionSources(label, names, source_names, reused=True,
                          document=Part(crc, size, compressed, file=document),
                          records=Records(*listed.columns(), file=records),
                          cases=cases, sources=len(listed), selections=selections)


def _left(fh) -> int:
    """Bytes from the file's position to its end."""
    return os.fstat(fh.fileno()).st_size - fh.tell()


def names_in_project(scan: FuzzyNameScan, qdc_text: str,
                     project: qdpx.Project | qdpx.Outline, pieces: list[SessionSources]) -> int:
    """`project_names.names_in_project(scan, qdc, qde_chunks(project), sources)`, with each
    session's findings taken from its piece (`project`: the project planned whole, or the
    document's `outline`)."""
    whole = project.outline() if isinstance(project, qdpx.Project) else project
    parts = [scan_chunks(scan, _scanned_head(whole))]
    if whole.sources:
        parts.append(scan_chunks(scan, ["  <Sources>\n"]))
        parts.extend(p.names for p in pieces)
        parts.append(scan_chunks(scan, ["  </Sources>\n"]))
    parts.append(scan_chunks(scan, [whole.tail]))
    document = len(joined(scan, parts))
    return (len(scan.find(without_guids(qdc_text))) + document
            + sum(p.source_names for p in pieces))


def _scanned_head(outline: qdpx.Outline) -> Iterator[str]:
    """`qdpx.head_chunks(outline)` as the scan sees it, without masking a GUID per answer:
    each case lists its sources as `<SourceRef>` lines (`session_cases`, of the GUIDs
    `guids.guids` made), which are all one line once their GUIDs are masked, and the scan's
    windows are those of each distinct line and of each distinct pair of adjacent lines
    (`project_names.scan_chunk`). So each case's lines, collapsed to two of them (one when
    it has one), give the same findings; at a million answers the cases are 71 MB, and
    masking their GUIDs took most of a second on every run."""
    masked = without_guids(qdpx.source_ref(guids.guid("source", "")))
    cases = [(school, [masked * min(2, sum(share.count("\n") for share in shares))])
             for school, shares in outline.cases]
    return qdpx.head_chunks(dataclasses.replace(outline, cases=cases))
