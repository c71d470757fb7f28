"""Stable identifiers. Same input -> same id on every run, on every machine."""

from __future__ import annotations

import hashlib

QUESTION_IDS = ("worked", "improve")
QUESTION_TEXT = {
    "worked": "What worked from today's coaching session?",
    "improve": "In what ways can we improve today's coaching session?",
}


def _digest(*parts: object, n: int = 12) -> str:
    raw = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:n]


def answer_id(school_year: str, response_id: str, question_id: str) -> str:
    """Id of one answered question: stable across re-runs of the same export."""
    return "A" + _digest(school_year, response_id, question_id)


def pseudonym(prefix: str, value: str, salt: str = "") -> str:
    """Pseudonymous id for a school or a coach: a salted hash of the normalised name."""
    norm = " ".join(str(value).split()).casefold()
    return f"{prefix}_{_digest(salt, norm, n=8)}"


def default_response_id(file_stem: str, row_number: int) -> str:
    """Response id for exports without one (Google Forms): file stem plus spreadsheet row."""
    return f"{file_stem}-r{row_number}"
