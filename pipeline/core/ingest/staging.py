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

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from pipeline.core.ingest.aliases import Aliases, NameResolver, name_key
from pipeline.core.ingest.dates import DateResolution, resolve_dates
from pipeline.core.ingest.ids import QUESTION_IDS, answer_id, default_response_id, pseudonym
from pipeline.core.ingest.mapping import Mapping, _norm, resolve_columns
from pipeline.core.ingest.raw import QUARANTINE_COLUMNS, OtherYears
from pipeline.core.privacy.labels import IdentifierGuard
from pipeline.core.privacy.name_scan import FuzzyNameScan, NameScanner
from pipeline.core.privacy.redact import Redactor, RosterEntry

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
    return bool(given) and all(_norm(t) in labels[q] for q, t in given.items())


def stage_year(
    export_files: pd.DataFrame,
    survey_rows: pd.DataFrame,
    mapping: Mapping,
    roster: list[RosterEntry],
    salt: str = "",
    staged_at: datetime | None = None,
    others: OtherYears | None = None,
    aliases: Aliases | None = None,
) -> StagedYear:
    """Stage one school year. `others`: response ids other years loaded (a row repeating one
    is quarantined naming the year and file); `aliases`: the year's alias table."""
    staged_at = staged_at or datetime.now().replace(microsecond=0)
    others = others or OtherYears()
    redactor = Redactor(roster)
    scanner = NameScanner(roster)
    guard = IdentifierGuard(redactor, scanner, FuzzyNameScan(roster))
    names = NameResolver(aliases or Aliases(), [e.full_name for e in roster if e.is_coach])
    answers, quarantine, redactions = [], [], []
    seen_content: dict[str, str] = {}
    seen_response: dict[str, str] = {}
    window_text = mapping.window_text()

    def quarantine_row(file_name, row, column, level, reason):
        quarantine.append({"school_year": mapping.school_year, "file_name": file_name,
                           "row_number": row, "column_name": column, "stage": "stage",
                           "level": level, "reason": reason, "quarantined_at": staged_at})

    loaded = export_files[export_files["status"] == "loaded"].sort_values("file_name")
    rows_by_file = {name: grp for name, grp in survey_rows.groupby("file_name", sort=False)}
    for f in loaded.itertuples(index=False):
        columns, labels = json.loads(f.columns), json.loads(f.labels)
        idx = resolve_columns(mapping, columns, labels, f.file_name)
        name_of = {k: (columns[i] if i is not None else None) for k, i in idx.items()}
        header_texts = {q: {_norm(columns[idx[q]]), _norm(labels[idx[q]])} for q in QUESTION_IDS}
        file_rows = rows_by_file.get(f.file_name)
        if file_rows is None:
            continue
        label = guard.file_label(f.file_name, f.file_sha256)
        stem = label.rsplit(".", 1)[0]
        records = [(int(n), json.loads(r)) for n, r in
                   zip(file_rows["row_number"], file_rows["record"], strict=True)]
        dates = (resolve_dates([(n, rec.get(name_of["submitted_at"], "")) for n, rec in records],
                               mapping) if name_of["submitted_at"] else DateResolution())
        outside = set(dates.outside)
        for row_number, rec in records:
            values = {k: (rec.get(c, "") if c is not None else None) for k, c in name_of.items()}
            cell = values.get
            texts = {q: clean_text(cell(q) or "") for q in QUESTION_IDS}
            here = f"{f.file_name} row {row_number}"
            if not any(texts.values()):
                cols = " and ".join(repr(name_of[q]) for q in QUESTION_IDS)
                quarantine_row(f.file_name, row_number, None, "row",
                               f"no answer to either question (columns {cols} are blank)")
                continue
            if _is_header_row(texts, header_texts):
                quarantine_row(f.file_name, row_number, None, "row",
                               "repeats the header (the question text): a header row, not an "
                               "answer")
                continue
            supplied = (cell("response_id") or "").strip()
            rid = guard.response_id(supplied) if supplied else default_response_id(
                stem, row_number)
            content = json.dumps([cell(k) for k in ("submitted_at", "school", "coach", "role",
                                                     "session", "worked", "improve")])
            if supplied and rid in others.response_ids:
                year, other_file, other_row = others.response_ids[rid]
                quarantine_row(f.file_name, row_number, name_of["response_id"], "row",
                               f"response id {supplied} was already loaded for {year} "
                               f"({other_file} row {other_row})")
                continue
            if rid in seen_response:
                quarantine_row(f.file_name, row_number, name_of["response_id"], "row",
                               f"duplicate response id {rid} (first seen in {seen_response[rid]})")
                continue
            if content in seen_content:
                quarantine_row(f.file_name, row_number, None, "row",
                               f"repeated submission: identical to {seen_content[content]}")
                continue
            seen_response[rid], seen_content[content] = here, here
            redacted = {q: redactor.redact(t) for q, t in texts.items() if t}
            leaky = [q for q, (t, _) in redacted.items() if scanner.find(t)]
            for q in leaky:   # the independent scanner still sees a name: never stage it
                del redacted[q]
                quarantine_row(f.file_name, row_number, name_of[q],
                               "cell" if redacted else "row",
                               "a roster name is left after redaction; answer withheld")
            if not redacted:
                continue

            submitted = None
            if name_of["submitted_at"]:
                submitted = dates.values.get(row_number)
                raw_ts = cell("submitted_at")
                if dates.conflict:
                    quarantine_row(f.file_name, row_number, name_of["submitted_at"], "cell",
                                   f"{dates.conflict}; submitted_at left empty")
                elif submitted is None:
                    why = dates.problems.get(row_number, f"unreadable timestamp {raw_ts!r}")
                    quarantine_row(f.file_name, row_number, name_of["submitted_at"], "cell",
                                   f"{why}; submitted_at left empty")
                elif row_number in outside:
                    quarantine_row(f.file_name, row_number, name_of["submitted_at"], "cell",
                                   f"submitted {submitted:%Y-%m-%d %H:%M}, outside the school "
                                   f"year {mapping.school_year} ({window_text}); submitted_at "
                                   "left empty")
                    submitted = None
            session = session_number(cell("session"), f.file_name)
            if session is None:
                where = name_of["session"] or "file name"
                quarantine_row(f.file_name, row_number, where, "cell",
                               session_problem(cell("session"), f.file_name))
            ids = {}
            for fld in ("school", "coach"):
                value = (cell(fld) or "").strip()
                ids[fld] = None
                if name_of[fld] and not value:
                    quarantine_row(f.file_name, row_number, name_of[fld], "cell",
                                   f"blank {fld}; {fld}_id left empty")
                if not value:
                    continue
                found = names.resolve(fld, value)
                if found.problem:
                    quarantine_row(f.file_name, row_number, name_of[fld], "cell", found.problem)
                if found.name is not None:
                    ids[fld] = pseudonym(fld, name_key(found.name), salt)
            base = {
                "school_year": mapping.school_year, "session_number": session,
                "submitted_at": submitted, "response_id": rid,
                "school_id": ids["school"], "coach_id": ids["coach"],
                "role": normalise_role(cell("role") or ""),
                "file_name": label, "row_number": row_number,
            }
            for q, (text, found) in redacted.items():
                aid = answer_id(mapping.school_year, rid, q)
                answers.append({**base, "answer_id": aid, "question_id": q,
                                "answer_text": text,
                                "non_substantive": is_non_substantive(text),
                                "n_redactions": len(found)})
                redactions.extend(
                    {"school_year": mapping.school_year, "file_name": f.file_name,
                     "row_number": row_number, "answer_id": aid, "question_id": q,
                     "start": r.start, "end": r.end, "original": r.original,
                     "placeholder": r.placeholder} for r in found)

    frame = pd.DataFrame(answers, columns=[c for c in ANSWER_COLUMNS if c != "session_date"])
    frame["session_number"] = frame["session_number"].astype("Int64")
    frame["session_date"] = _session_dates(frame)
    frame["row_number"] = frame["row_number"].astype("int64")
    frame["n_redactions"] = frame["n_redactions"].astype("int64")
    frame["non_substantive"] = frame["non_substantive"].astype(bool)
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"])
    return StagedYear(
        answers=frame[ANSWER_COLUMNS],
        quarantine=pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS),
        redactions=pd.DataFrame(redactions, columns=REDACTION_COLUMNS),
        names=names.suggestions(),
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
