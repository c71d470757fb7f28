"""Replace roster names in free text with placeholders, keeping an audit of every replacement.

Coaches' names become "[External Coach name]", other staff "[Name]". A name matches as a whole
word in any case, as the full name, the first name or the last name, with or without accents,
and in the possessive ("Okafor's" -> "[Name]'s").
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

COACH_PLACEHOLDER = "[External Coach name]"
STAFF_PLACEHOLDER = "[Name]"
COACH_ROLES = {"external coach", "coach"}


class RosterError(ValueError):
    pass


@dataclass(frozen=True)
class RosterEntry:
    full_name: str
    role: str

    @property
    def is_coach(self) -> bool:
        return self.role.strip().casefold() in COACH_ROLES


@dataclass(frozen=True)
class Redaction:
    start: int          # span in the original text
    end: int
    original: str
    placeholder: str


def load_roster(path: str | Path) -> list[RosterEntry]:
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"full_name", "role"} - set(reader.fieldnames or [])
            if missing:
                raise RosterError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            entries = []
            for line, row in enumerate(reader, start=2):
                name = (row["full_name"] or "").strip()
                if not name:
                    raise RosterError(f"{path}: row {line}, column full_name: empty name")
                entries.append(RosterEntry(name, (row["role"] or "").strip()))
    except FileNotFoundError as exc:
        raise RosterError(f"{path}: roster file not found") from exc
    return entries


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_variants(full_name: str) -> set[str]:
    """Full name, first name, last name (all after the first word), each also accent-free."""
    words = full_name.split()
    variants = {" ".join(words)}
    if len(words) > 1:
        variants |= {words[0], " ".join(words[1:]), words[-1]}
    variants |= {_fold_accents(v) for v in variants}
    return {v for v in variants if len(v) >= 2}


class Redactor:
    def __init__(self, roster: list[RosterEntry]):
        placeholder_for: dict[str, str] = {}
        variants: set[str] = set()
        for entry in roster:
            ph = COACH_PLACEHOLDER if entry.is_coach else STAFF_PLACEHOLDER
            for variant in name_variants(entry.full_name):
                variants.add(variant)
                key = variant.casefold()
                # a name shared by a coach and a staff member is treated as a coach's
                if placeholder_for.get(key) != COACH_PLACEHOLDER:
                    placeholder_for[key] = ph
        self._placeholder_for = placeholder_for
        self._pattern = None
        if placeholder_for:
            # longest first so "Ana Okafor" wins over "Ana"; flexible whitespace inside names
            alts = sorted(variants, key=len, reverse=True)
            body = "|".join(r"\s+".join(map(re.escape, a.split())) for a in alts)
            self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)

    def find(self, text: str) -> list[Redaction]:
        if not text or self._pattern is None:
            return []
        out = []
        for m in self._pattern.finditer(text):
            key = " ".join(m.group(0).split()).casefold()
            ph = self._placeholder_for.get(key, COACH_PLACEHOLDER)
            out.append(Redaction(m.start(), m.end(), m.group(0), ph))
        return out

    def redact(self, text: str) -> tuple[str, list[Redaction]]:
        found = self.find(text)
        if not found:
            return text, []
        parts, pos = [], 0
        for r in found:
            parts += [text[pos:r.start], r.placeholder]
            pos = r.end
        parts.append(text[pos:])
        return "".join(parts), found
