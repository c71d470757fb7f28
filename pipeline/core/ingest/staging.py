"""From raw exported records to one row per answered question: normalised, redacted, keyed.

Every raw record ends up either as a staged respondent (one or two answer rows) or as a
row-level quarantine entry with a reason: no answer, a repeated submission, a response id
seen before in this year or loaded for another year, a header row read as data, a name the
redactor missed. Problems in a single cell keep the row and add a cell-level quarantine entry
with that field left empty: an unreadable timestamp or one outside the school year's window,
a session number that is not a whole number from 1 to 99, a school or coach name that is not
known (core.ingest.aliases).

Nothing that leaves the raw layer carries a roster name: answers are redacted, and the file
name (staging.answers.file_name) and any id made from it pass through core.privacy.labels.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from pipeline.core.ingest import staged_files
from pipeline.core.ingest.aliases import Aliases, NameResolver, name_key
from pipeline.core.ingest.dates import DateResolution, resolve_dates
from pipeline.core.ingest.ids import QUESTION_IDS, answer_id, default_response_id, pseudonym
from pipeline.core.ingest.mapping import Mapping, norm_header, resolve_columns
from pipeline.core.ingest.raw import QUARANTINE_COLUMNS, OtherYears, read_record
from pipeline.core.parallel import map_forked
from pipeline.core.privacy.clean_memo import StagingCleanMemos
from pipeline.core.privacy.labels import IdentifierGuard, possible_response_ids
from pipeline.core.privacy.name_scan import AHEAD_MIN_TEXTS, FuzzyNameScan, NameScanner
from pipeline.core.privacy.redact import Redactor, RosterEntry, roster_fingerprint
from pipeline.core.result_cache import ResultCache

log = logging.getLogger(__name__)

ANSWER_COLUMNS = [
    "answer_id", "school_year", "session_number", "session_date", "submitted_at",
    "response_id", "school_id", "coach_id", "role", "question_id", "answer_text",
    "non_substantive", "n_redactions", "file_name", "row_number",
]
REDACTION_COLUMNS = [
    "school_year", "file_name", "row_number", "answer_id", "question_id", "start", "end",
    "original", "placeholder",
]

NON_SUBSTANTIVE = {
    "na", "n a", "n/a", "none", "nothing", "no", "nope", "nil", "null", "not applicable",
    "no comment", "no comments", "nothing to add", "nothing at this time", "not sure", "idk",
    "none at this time", "no suggestions", "none so far", "nothing really", "",
}
ROLES = {
    "teacher": "teacher",
    "principal": "administrator",
    "assistant principal": "administrator",
    "administrator": "administrator",
    "admin": "administrator",
    "instructional coach": "instructional coach",
    "coach": "instructional coach",
    "counselor": "counselor",
    "counsellor": "counselor",
    "social worker": "support staff",
    "paraprofessional": "support staff",
}
ROLE_VALUES = sorted({*ROLES.values(), "other"})   # what normalise_role can return
SESSION_FROM_NAME = re.compile(r"session[-_ ]?(\d+)", re.IGNORECASE)
# a session cell: a whole number, optionally "Session 3", "session-03", "3.0" (a spreadsheet
# number) or with a note in brackets ("Session 3 (January)"); nothing else
SESSION_CELL = re.compile(r"^(?:session[\s#_-]*)?0*(\d+)(?:\.0+)?(?:\s*\([^()]*\))?$",
                          re.IGNORECASE)
SESSION_RANGE = (1, 99)


@dataclass
class StagedYear:
    answers: pd.DataFrame
    quarantine: pd.DataFrame
    redactions: pd.DataFrame
    names: list[dict] = field(default_factory=list)   # aliases.suggested.csv rows
    files_replayed: list[str] = field(default_factory=list)   # from the kept parts
    files_kept: list[str] = field(default_factory=list)   # rows in the warehouse: not here


def is_non_substantive(text: str) -> bool:
    """'NA', 'n/a', 'none', '-', 'Nothing.' and the like: kept, but flagged."""
    norm = re.sub(r"[^\w/ ]+", " ", text.casefold()).strip()
    norm = " ".join(norm.split())
    return norm in NON_SUBSTANTIVE or not re.search(r"\w", text)


def clean_text(text: str) -> str:
    """Unicode NFC, unified line endings, trimmed. Quotes and emoji are kept as typed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def normalise_role(value: str) -> str | None:
    key = " ".join(value.casefold().replace("-", " ").split())
    if not key:
        return None
    return ROLES.get(key, "other")


def parse_timestamp(value: str, fmt: str | None) -> datetime | None:
    """One timestamp read alone (the CLI and tests): with `fmt`, that format or an
    unambiguous form; without, only an unambiguous form (ISO 8601, year first, a month name,
    an Excel serial) or a slash date whose numbers decide its order. Staging reads a whole
    file's timestamps together (core.ingest.dates) so that one order holds for all rows."""
    from pipeline.core.ingest.mapping import Mapping

    dates = resolve_dates([(0, value or "")], Mapping("unknown", None, timestamp_format=fmt))
    return None if dates.conflict else dates.values.get(0)


def session_number(value: str | None, file_name: str) -> int | None:
    """The session number of a cell ('3', 'Session 3', '3.0'), else of the file name
    (`session-NN`). None when there is none; see `session_problem` for a cell that holds
    something else."""
    if value is not None:
        m = SESSION_CELL.match(value.strip())
        if not m:
            return None
        number = int(m.group(1))
        return number if SESSION_RANGE[0] <= number <= SESSION_RANGE[1] else None
    m = SESSION_FROM_NAME.search(file_name)
    return int(m.group(1)) if m else None


def session_problem(value: str | None, file_name: str) -> str | None:
    """Why no session number could be read, or None when one was."""
    if session_number(value, file_name) is not None:
        return None
    if value is None:
        return "no session number found (no session column, and the file name has no " \
               "session-NN); session_number left empty"
    if not value.strip():
        return "blank session number; session_number left empty"
    m = SESSION_CELL.match(value.strip())
    if m:
        return (f"session number {value.strip()!r} is outside {SESSION_RANGE[0]}-"
                f"{SESSION_RANGE[1]}; session_number left empty")
    return (f"session number {value.strip()!r} is not a whole positive number; "
            "session_number left empty")


def _is_header_row(texts: dict[str, str], labels: dict[str, set[str]]) -> bool:
    """True when every answer given repeats its column's header (id or question text)."""
    given = {q: t for q, t in texts.items() if t}
    return bool(given) and all(norm_header(t) in labels[q] for q, t in given.items())


def stage_year(
    export_files: pd.DataFrame,
    survey_rows: pd.DataFrame | Callable[[str], pd.DataFrame | None],
    mapping: Mapping,
    roster: list[RosterEntry],
    salt: str = "",
    staged_at: datetime | None = None,
    others: OtherYears | None = None,
    aliases: Aliases | None = None,
    fuzzy: FuzzyNameScan | None = None,
    clean: StagingCleanMemos | None = None,
    kept: ResultCache | None = None,
    keys: dict[str, str] | None = None,
    in_warehouse: set[str] | frozenset[str] = frozenset(),
) -> StagedYear:
    """Stage one school year. `survey_rows`: the year's raw rows, or a function giving one
    file's rows (called only for the files staged); `others`: response ids other years loaded
    (a row repeating one is quarantined naming the year and file); `aliases`: the year's alias
    table; `fuzzy`: the independent name check to use for file names and ids (default: a new
    one for `roster`; pass the one the caller's own check uses so that each text is scanned
    once); `clean`: the texts earlier runs found no name in (privacy/clean_memo.py; the caller
    saves it); `kept`: what each export file added, kept and replayed while it and the files
    before it are the same (staged_files.py); `keys`: each loaded file's key there
    (`staged_files.chain_keys`; default: from the rows); `in_warehouse`: files whose staged
    rows the warehouse holds (core/warehouse/file_rows.py): only what later files need of them
    is replayed, and their rows are left out of the result (`files_kept` lists them)."""
    others, aliases = others or OtherYears(), aliases or Aliases()
    stager = _YearStager(mapping, roster, salt, staged_at or datetime.now().replace(microsecond=0),
                         others, aliases, fuzzy, clean)
    loaded = export_files[export_files["status"] == "loaded"].sort_values("file_name")
    if isinstance(survey_rows, pd.DataFrame):
        by_file = {name: grp for name, grp in survey_rows.groupby("file_name", sort=False)}
        rows_of = by_file.get
    else:
        rows_of = survey_rows
    key = staged_files.base_key(mapping, roster_fingerprint(roster), salt, aliases, others) \
        if kept is not None and keys is None else ""
    for f in loaded.itertuples(index=False):
        if kept is None:
            stager.stage_file(f, rows_of(f.file_name))
            continue
        key = keys[f.file_name] if keys is not None else staged_files.file_key(
            key, f, rows_of(f.file_name))
        year = mapping.school_year
        if f.file_name in in_warehouse and _replay(
                stager, kept, key, staged_files.state_slot(year, f.file_name),
                staged_files.decode_state, f.file_name):
            stager.files_kept.append(f.file_name)
            continue
        slot = staged_files.slot(year, f.file_name)
        if _replay(stager, kept, key, slot, staged_files.decode, f.file_name):
            stager.files_replayed.append(f.file_name)
            continue
        mark = stager.mark()
        stager.stage_file(f, rows_of(f.file_name))
        part = stager.added_since(mark)
        encoded = staged_files.encode(part)
        if encoded is not None:
            kept.store(key, encoded, slot=slot)
        # the state alone is plain text and counts: kept even when the rows cannot be
        kept.store(key, staged_files.encode_state(part),
                   slot=staged_files.state_slot(year, f.file_name))
    if (stager.files_replayed or stager.files_kept) and clean is not None:
        clean.keep_known()   # the replayed files' texts were not checked, and stay clean
    return stager.result()


def _replay(stager: _YearStager, kept: ResultCache, key: str, slot: str, decode,
            file_name: str) -> bool:
    """Replay what `kept` holds for a file under `key` (its rows and state, or its state
    alone); False when there is nothing usable."""
    data = kept.load(key, slot=slot)
    if data is None:
        return False
    try:
        part = decode(data)
    except ValueError as exc:
        log.warning("kept staging of %s unusable (%s): staging it again", file_name, exc)
        return False
    stager.replay(part)
    return True


@dataclass
class _ExportFile:
    """One loaded export as staging reads it: its columns resolved to the mapping's fields."""

    file_name: str
    name_of: dict[str, str | None]          # field -> the export's column (None: not there)
    header_texts: dict[str, set[str]]       # question -> its column's header and label
    label: str                              # the file name as staging.answers shows it
    stem: str
    dates: DateResolution
    outside: set[int]                       # rows submitted outside the school year


class _YearStager:
    """The state of staging one year: what was seen, what is kept, what is quarantined."""

    def __init__(self, mapping: Mapping, roster: list[RosterEntry], salt: str,
                 staged_at: datetime, others: OtherYears, aliases: Aliases,
                 fuzzy: FuzzyNameScan | None = None, clean: StagingCleanMemos | None = None):
        self.mapping, self.salt, self.staged_at, self.others = mapping, salt, staged_at, others
        self.redactor = Redactor(roster)
        self.scanner = NameScanner(roster)
        self.guard = IdentifierGuard(self.redactor, self.scanner, fuzzy or FuzzyNameScan(roster),
                                     clean.identifier if clean is not None else None)
        self.clean = clean.redaction if clean is not None else None
        # answers repeat ("More time to plan."), as do school and coach names: the redaction
        # and the scan after it, and each pseudonym, are pure functions of the text, made once
        self._redaction: dict[str, tuple[tuple[str, list], bool]] = {}
        self._ahead: dict[str, tuple[tuple[str, list], bool]] = {}   # done by _check_ahead
        self._pseudonym: dict[tuple[str, str], str] = {}
        self.names = NameResolver(aliases, [e.full_name for e in roster if e.is_coach])
        self.answers: list[dict] = []
        self.quarantine: list[dict] = []
        self.redactions: list[dict] = []
        self.seen_content: dict[str, str] = {}
        self.seen_response: dict[str, str] = {}
        self.window_text = mapping.window_text()
        self.files_replayed: list[str] = []
        self.files_kept: list[str] = []

    # What staging a file adds, to keep and replay (staged_files.py). The rest of the state
    # is memos of pure functions: replaying a file need not fill them.
    _LISTS = ("answers", "quarantine", "redactions")
    _SEEN = ("seen_content", "seen_response")

    def mark(self) -> dict:
        return {"lengths": {n: len(getattr(self, n)) for n in (*self._LISTS, *self._SEEN)},
                "names_seen": {f: Counter(c) for f, c in self.names.seen.items()}}

    def added_since(self, mark: dict) -> dict:
        """What was added after `mark`: rows, seen ids and submissions, spellings counted."""
        n = mark["lengths"]
        part = {name: getattr(self, name)[n[name]:] for name in self._LISTS}
        for name in self._SEEN:
            seen = getattr(self, name)
            part[name] = dict(itertools.islice(seen.items(), n[name], None))
        part["names_seen"] = {f: dict(c - mark["names_seen"].get(f, Counter()))
                              for f, c in self.names.seen.items()}
        return part

    def replay(self, part: dict) -> None:
        """What a file added (`added_since`), or its state alone (no rows)."""
        for name in self._LISTS:
            getattr(self, name).extend(part.get(name, ()))
        for name in self._SEEN:
            getattr(self, name).update(part[name])
        for f, counts in part["names_seen"].items():
            self.names.seen[f].update(counts)

    def quarantine_row(self, file_name, row, column, level, reason):
        self.quarantine.append({"school_year": self.mapping.school_year, "file_name": file_name,
                                "row_number": row, "column_name": column, "stage": "stage",
                                "level": level, "reason": reason,
                                "quarantined_at": self.staged_at})

    def stage_file(self, f, file_rows: pd.DataFrame | None) -> None:
        """Every raw record of one loaded export (`f`: a raw.export_files row)."""
        columns, labels = json.loads(f.columns), json.loads(f.labels)
        idx = resolve_columns(self.mapping, columns, labels, f.file_name)
        name_of = {k: (columns[i] if i is not None else None) for k, i in idx.items()}
        header_texts = {q: {norm_header(columns[idx[q]]), norm_header(labels[idx[q]])}
                        for q in QUESTION_IDS}
        if file_rows is None:
            return
        label = self.guard.file_label(f.file_name, f.file_sha256)
        records = [(int(n), read_record(r)) for n, r in
                   zip(file_rows["row_number"], file_rows["record"], strict=True)]
        dates = (resolve_dates([(n, rec.get(name_of["submitted_at"], "")) for n, rec in records],
                               self.mapping) if name_of["submitted_at"] else DateResolution())
        export = _ExportFile(f.file_name, name_of, header_texts, label,
                             label.rsplit(".", 1)[0], dates, set(dates.outside))
        id_column = name_of["response_id"]
        if id_column is not None:   # what a row's id may repeat of other years' (_admitted)
            self.others.need(possible_response_ids(
                (rec.get(id_column, "") or "").strip() for _, rec in records))
        self._check_ahead(export, records)
        for row_number, rec in records:
            self.stage_row(export, row_number, rec)

    def stage_row(self, f: _ExportFile, row_number: int, rec: dict) -> None:
        """One raw record: quarantined as a whole, or staged as one or two answers."""
        values = {k: (rec.get(c, "") if c is not None else None) for k, c in f.name_of.items()}
        cell = values.get
        texts = {q: clean_text(cell(q) or "") for q in QUESTION_IDS}
        rid = self._admitted(f, row_number, cell, texts)
        if rid is None:
            return
        redacted = self._redacted(f, row_number, texts)
        if not redacted:
            return
        submitted = self._submitted_at(f, row_number, cell)
        session = session_number(cell("session"), f.file_name)
        if session is None:
            where = f.name_of["session"] or "file name"
            self.quarantine_row(f.file_name, row_number, where, "cell",
                                session_problem(cell("session"), f.file_name))
        ids = self._ids(f, row_number, cell)
        base = {
            "school_year": self.mapping.school_year, "session_number": session,
            "submitted_at": submitted, "response_id": rid,
            "school_id": ids["school"], "coach_id": ids["coach"],
            "role": normalise_role(cell("role") or ""),
            "file_name": f.label, "row_number": row_number,
        }
        self._add_answers(f, row_number, base, redacted)

    def _admitted(self, f: _ExportFile, row_number: int, cell, texts: dict[str, str]
                  ) -> str | None:
        """The row's response id, or None when the whole row is quarantined: no answer, a
        header row, a response id another year or this one already has, a repeated
        submission."""
        here = f"{f.file_name} row {row_number}"
        if not any(texts.values()):
            cols = " and ".join(repr(f.name_of[q]) for q in QUESTION_IDS)
            self.quarantine_row(f.file_name, row_number, None, "row",
                                f"no answer to either question (columns {cols} are blank)")
            return None
        if _is_header_row(texts, f.header_texts):
            self.quarantine_row(f.file_name, row_number, None, "row",
                                "repeats the header (the question text): a header row, not an "
                                "answer")
            return None
        supplied = (cell("response_id") or "").strip()
        rid = self.guard.response_id(supplied) if supplied else default_response_id(
            f.stem, row_number)
        # remembered by digest: the raw cells (names, unredacted text) stay in the raw layer
        content = hashlib.blake2b(json.dumps(
            [cell(k) for k in ("submitted_at", "school", "coach", "role", "session", "worked",
                               "improve")]).encode("utf-8", "surrogatepass"),
            digest_size=16).hexdigest()
        if supplied and rid in self.others.response_ids:
            year, other_file, other_row = self.others.response_ids[rid]
            self.quarantine_row(f.file_name, row_number, f.name_of["response_id"], "row",
                                f"response id {supplied} was already loaded for {year} "
                                f"({other_file} row {other_row})")
            return None
        if rid in self.seen_response:
            self.quarantine_row(f.file_name, row_number, f.name_of["response_id"], "row",
                                f"duplicate response id {rid} (first seen in "
                                f"{self.seen_response[rid]})")
            return None
        if content in self.seen_content:
            self.quarantine_row(f.file_name, row_number, None, "row",
                                f"repeated submission: identical to {self.seen_content[content]}")
            return None
        self.seen_response[rid], self.seen_content[content] = here, here
        return rid

    def _redacted(self, f: _ExportFile, row_number: int, texts: dict[str, str]) -> dict:
        """question -> (redacted text, redactions) of the answers given; an answer in which
        the scanner still sees a name is withheld (a cell, or the row when nothing is left)."""
        done = {q: self._redact(t) for q, t in texts.items() if t}
        redacted = {q: result for q, (result, _leaky) in done.items()}
        leaky = [q for q, (_result, is_leaky) in done.items() if is_leaky]
        for q in leaky:   # the independent scanner still sees a name: never stage it
            del redacted[q]
            self.quarantine_row(f.file_name, row_number, f.name_of[q],
                                "cell" if redacted else "row",
                                "a roster name is left after redaction; answer withheld")
        return redacted

    def _redact(self, text: str) -> tuple[tuple[str, list], bool]:
        """(redacted text, redactions) and whether the scanner still sees a name in it."""
        if text not in self._redaction:
            if self.clean is not None and self.clean.is_clean(text):
                self._redaction[text] = ((text, []), False)   # no name found in it before
            else:
                result, leaky = self._ahead.pop(text, None) or self._redact_and_scan(text)
                if not result[1] and not leaky and self.clean is not None:
                    self.clean.mark_clean(text)
                self._redaction[text] = (result, leaky)
        return self._redaction[text]

    def _redact_and_scan(self, text: str) -> tuple[tuple[str, list], bool]:
        result = self.redactor.redact(text)
        return result, bool(self.scanner.find(result[0]))

    def _check_ahead(self, f: _ExportFile, records: list[tuple[int, dict]]) -> None:
        """The name checks of a file's answers (redaction and the scan after it) and of its
        response ids (the identifier guard's), done on every core before its rows are staged
        one by one (core.parallel.map_forked): they are pure functions of the text and were
        two thirds of staging a row. Each result waits aside until the row asks for it
        (`_redact`, IdentifierGuard.has_name), which counts it in the memos as if it were
        computed then: the staged rows and the clean memos are the same either way. Fewer
        than AHEAD_MIN_TEXTS texts to check: each row checks its own."""
        columns = [f.name_of[q] for q in QUESTION_IDS if f.name_of[q] is not None]
        answers = [t for t in dict.fromkeys(clean_text(rec.get(c, "") or "")
                                            for _, rec in records for c in columns)
                   if t and t not in self._redaction and t not in self._ahead
                   and not (self.clean is not None and self.clean.knows(t))]
        id_column = f.name_of["response_id"]
        ids = [] if id_column is None else self.guard.unchecked(
            (rec.get(id_column, "") or "").strip() for _, rec in records)
        if len(answers) + len(ids) < AHEAD_MIN_TEXTS:
            return
        done = map_forked(self._check_one, [*((True, t) for t in answers),
                                            *((False, t) for t in ids)])
        self._ahead.update(zip(answers, done[:len(answers)], strict=True))
        self.guard.keep_ahead(ids, done[len(answers):])

    def _check_one(self, item: tuple[bool, str]):
        """An answer's redaction and scan, or an id's name checks (`_check_ahead`)."""
        is_answer, text = item
        return self._redact_and_scan(text) if is_answer else self.guard.check_uncached(text)

    def _submitted_at(self, f: _ExportFile, row_number: int, cell) -> datetime | None:
        """The submission time, or None (with a cell-level quarantine entry) when the year's
        dates conflict, the cell cannot be read or it falls outside the school year."""
        if not f.name_of["submitted_at"]:
            return None
        dates = f.dates
        submitted = dates.values.get(row_number)
        raw_ts = cell("submitted_at")
        column = f.name_of["submitted_at"]
        if dates.conflict:
            self.quarantine_row(f.file_name, row_number, column, "cell",
                                f"{dates.conflict}; submitted_at left empty")
        elif submitted is None:
            why = dates.problems.get(row_number, f"unreadable timestamp {raw_ts!r}")
            self.quarantine_row(f.file_name, row_number, column, "cell",
                                f"{why}; submitted_at left empty")
        elif row_number in f.outside:
            self.quarantine_row(f.file_name, row_number, column, "cell",
                                f"submitted {submitted:%Y-%m-%d %H:%M}, outside the school "
                                f"year {self.mapping.school_year} ({self.window_text}); "
                                "submitted_at left empty")
            submitted = None
        return submitted

    def _ids(self, f: _ExportFile, row_number: int, cell) -> dict[str, str | None]:
        """school_id and coach_id: pseudonyms of the resolved names (None when blank or
        unknown, with a cell-level quarantine entry)."""
        ids = {}
        for fld in ("school", "coach"):
            value = (cell(fld) or "").strip()
            ids[fld] = None
            if f.name_of[fld] and not value:
                self.quarantine_row(f.file_name, row_number, f.name_of[fld], "cell",
                                    f"blank {fld}; {fld}_id left empty")
            if not value:
                continue
            found = self.names.resolve(fld, value)
            if found.problem:
                self.quarantine_row(f.file_name, row_number, f.name_of[fld], "cell",
                                    found.problem)
            if found.name is not None:
                key = (fld, found.name)
                if key not in self._pseudonym:
                    self._pseudonym[key] = pseudonym(fld, name_key(found.name), self.salt)
                ids[fld] = self._pseudonym[key]
        return ids

    def _add_answers(self, f: _ExportFile, row_number: int, base: dict, redacted: dict) -> None:
        """An answer row per question answered, and the audit of its redactions."""
        year = self.mapping.school_year
        for q, (text, found) in redacted.items():
            aid = answer_id(year, base["response_id"], q)
            self.answers.append({**base, "answer_id": aid, "question_id": q,
                                 "answer_text": text,
                                 "non_substantive": is_non_substantive(text),
                                 "n_redactions": len(found)})
            self.redactions.extend(
                {"school_year": year, "file_name": f.file_name,
                 "row_number": row_number, "answer_id": aid, "question_id": q,
                 "start": r.start, "end": r.end, "original": r.original,
                 "placeholder": r.placeholder} for r in found)

    def result(self) -> StagedYear:
        frame = pd.DataFrame(self.answers,
                             columns=[c for c in ANSWER_COLUMNS if c != "session_date"])
        frame["session_number"] = frame["session_number"].astype("Int64")
        frame["session_date"] = _session_dates(frame)
        frame["row_number"] = frame["row_number"].astype("int64")
        frame["n_redactions"] = frame["n_redactions"].astype("int64")
        frame["non_substantive"] = frame["non_substantive"].astype(bool)
        frame["submitted_at"] = pd.to_datetime(frame["submitted_at"])
        return StagedYear(
            answers=frame[ANSWER_COLUMNS],
            quarantine=pd.DataFrame(self.quarantine, columns=QUARANTINE_COLUMNS),
            redactions=pd.DataFrame(self.redactions, columns=REDACTION_COLUMNS),
            names=self.names.suggestions(),
            files_replayed=list(self.files_replayed),
            files_kept=list(self.files_kept),
        )


def _session_dates(frame: pd.DataFrame) -> pd.Series:
    """A session's date: the most common submission date among its responses."""
    if frame.empty:
        return pd.Series([], dtype="object")
    dates = pd.to_datetime(frame["submitted_at"]).dt.date
    mode: dict = {}
    for key, grp in dates.groupby(frame["session_number"].fillna(-1)):
        counts = Counter(d for d in grp if pd.notna(d))
        mode[key] = min(counts, key=lambda d: (-counts[d], d)) if counts else None
    by_session = frame["session_number"].fillna(-1).map(mode)
    # rows without a session number keep their own submission date
    return by_session.where(frame["session_number"].notna(), dates)
