"""From raw exported records to one row per answered question: normalised, redacted, keyed.

Every raw record ends up either as a staged respondent (one or two answer rows) or as a
row-level quarantine entry with a reason. Problems in a single cell (an unreadable
timestamp, a missing session number) keep the row and add a cell-level quarantine entry.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pipeline.core.ingest.ids import QUESTION_IDS, answer_id, default_response_id, pseudonym
from pipeline.core.ingest.mapping import Mapping, resolve_columns
from pipeline.core.ingest.raw import QUARANTINE_COLUMNS
from pipeline.core.privacy.name_scan import NameScanner
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
FIRST_INT = re.compile(r"\d+")


@dataclass
class StagedYear:
    answers: pd.DataFrame
    quarantine: pd.DataFrame
    redactions: pd.DataFrame


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
    value = value.strip()
    if not value:
        return None
    if fmt:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    try:
        ts = pd.to_datetime(value)
    except (ValueError, OverflowError):
        return None
    if pd.isna(ts):
        return None
    return ts.tz_localize(None).to_pydatetime() if ts.tzinfo else ts.to_pydatetime()


def session_number(value: str | None, file_name: str) -> int | None:
    if value is not None:
        m = FIRST_INT.search(value)
        return int(m.group(0)) if m else None
    m = SESSION_FROM_NAME.search(file_name)
    return int(m.group(1)) if m else None


class CoachNames:
    """Resolves what respondents put in the coach column to a roster name before hashing."""

    def __init__(self, roster: list[RosterEntry]):
        self._by_key: dict[str, set[str]] = {}
        for e in roster:
            if not e.is_coach:
                continue
            words = e.full_name.split()
            for key in {e.full_name, words[0], words[-1]}:
                self._by_key.setdefault(key.casefold(), set()).add(e.full_name)

    def canonical(self, value: str) -> str:
        key = " ".join(value.split()).casefold()
        names = self._by_key.get(key, set())
        return next(iter(names)) if len(names) == 1 else value


def stage_year(
    export_files: pd.DataFrame,
    survey_rows: pd.DataFrame,
    mapping: Mapping,
    roster: list[RosterEntry],
    salt: str = "",
    staged_at: datetime | None = None,
) -> StagedYear:
    staged_at = staged_at or datetime.now().replace(microsecond=0)
    redactor = Redactor(roster)
    scanner = NameScanner(roster)
    coaches = CoachNames(roster)
    answers, quarantine, redactions = [], [], []
    seen_content: dict[str, str] = {}
    seen_response: dict[str, str] = {}

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
        file_rows = rows_by_file.get(f.file_name)
        if file_rows is None:
            continue
        stem = f.file_name.rsplit(".", 1)[0]
        for row_number, record_json in zip(file_rows["row_number"], file_rows["record"],
                                           strict=True):
            row_number = int(row_number)
            rec = json.loads(record_json)
            values = {k: (rec.get(c, "") if c is not None else None) for k, c in name_of.items()}
            cell = values.get
            texts = {q: clean_text(cell(q) or "") for q in QUESTION_IDS}
            here = f"{f.file_name} row {row_number}"
            if not any(texts.values()):
                cols = " and ".join(repr(name_of[q]) for q in QUESTION_IDS)
                quarantine_row(f.file_name, row_number, None, "row",
                               f"no answer to either question (columns {cols} are blank)")
                continue
            rid = (cell("response_id") or "").strip() or default_response_id(stem, row_number)
            content = json.dumps([cell(k) for k in ("submitted_at", "school", "coach", "role",
                                                     "session", "worked", "improve")])
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
                raw_ts = cell("submitted_at")
                submitted = parse_timestamp(raw_ts, mapping.timestamp_format)
                if submitted is None:
                    quarantine_row(f.file_name, row_number, name_of["submitted_at"], "cell",
                                   f"unreadable timestamp {raw_ts!r}; submitted_at left empty")
            session = session_number(cell("session"), f.file_name)
            if session is None:
                where = name_of["session"] or "file name"
                quarantine_row(f.file_name, row_number, where, "cell",
                               "no session number found; session_number left empty")
            school = (cell("school") or "").strip()
            coach = (cell("coach") or "").strip()
            for field, value in (("school", school), ("coach", coach)):
                if name_of[field] and not value:
                    quarantine_row(f.file_name, row_number, name_of[field], "cell",
                                   f"blank {field}; {field}_id left empty")
            base = {
                "school_year": mapping.school_year, "session_number": session,
                "submitted_at": submitted, "response_id": rid,
                "school_id": pseudonym("school", school, salt) if school else None,
                "coach_id": pseudonym("coach", coaches.canonical(coach), salt) if coach else None,
                "role": normalise_role(cell("role") or ""),
                "file_name": f.file_name, "row_number": row_number,
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
