"""Replace roster names in free text with placeholders, keeping an audit of every replacement.

Coaches' names become "[External Coach name]", other staff "[Name]". A name matches as a whole
word in any case, as the full name, the first name or the last name, with or without accents,
and in the possessive ("Okafor's" -> "[Name]'s"). A capitalised word one typo away from a
roster name word of six letters or more ("Marisl", "Halvorsne") is taken for that name too.

Matching runs on a normalised copy of the text: compatibility forms folded (NFKD: a
non-breaking space is a space, "ﬁ" is "fi"), combining marks (accents) dropped, and invisible
format characters (Unicode category Cf: soft hyphen, zero-width space, joiner and non-joiner,
word joiner, BOM, bidi marks) removed, so "Mari\u00adsol" and "Mari\u200bsol" are "Marisol". A
full name's words may be joined ("MarisolQuintero"). Every span found is mapped back to the
original text, invisible characters and accents included, and replaced there.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import OSA

COACH_PLACEHOLDER = "[External Coach name]"
STAFF_PLACEHOLDER = "[Name]"
COACH_ROLES = {"external coach", "coach"}
# Near misses: a capitalised word of NEAR_MIN_WORD - 1 letters or more, one edit (a letter
# changed, added, dropped, or two neighbours swapped) from a roster name word of NEAR_MIN_WORD
# letters or more that starts with the same letter. Shorter names are too close to words.
NEAR_MIN_WORD = 6
_WORD = re.compile(r"[^\W\d_]+")
_PLACEHOLDER_WORDS = {w.casefold() for w in _WORD.findall(COACH_PLACEHOLDER + STAFF_PLACEHOLDER)}


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


def roster_fingerprint(roster: list[RosterEntry]) -> str:
    """sha256 of the roster's entries (names and roles, in any order): what every name check
    is built from."""
    body = "\n".join(sorted(f"{e.full_name}\t{e.role}" for e in roster))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


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


def fold(text: str) -> str:
    """Accents, compatibility forms and invisible format characters removed ("Giedrė" ->
    "Giedre", "ﬁ" -> "fi", "Mari\u00adsol" -> "Marisol", a non-breaking space -> " ")."""
    if text.isascii():  # no accents, compatibility forms or format characters to remove
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed
                   if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")


def _fold_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """The folded text and, per folded character, its index in `text` (None: identical)."""
    if text.isascii():
        return text, None
    chars, index = [], []
    for i, ch in enumerate(text):
        for c in fold(ch):
            chars.append(c)
            index.append(i)
    return "".join(chars), index


def _original_span(text: str, index: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """A span of the folded text as a span of `text` (with the combining accents after it)."""
    if index is None:
        return start, end
    start, end = index[start], index[end - 1] + 1
    while end < len(text) and (unicodedata.combining(text[end])
                               or unicodedata.category(text[end]) == "Cf"):
        end += 1
    return start, end


def name_variants(full_name: str) -> set[str]:
    """Full name, first name, last name (all after the first word), and the last word."""
    words = full_name.split()
    variants = {" ".join(words)}
    if len(words) > 1:
        variants |= {words[0], " ".join(words[1:]), words[-1]}
    return {v for v in variants if len(v) >= 2}


def _key(name: str) -> str:
    return " ".join(fold(name).split()).casefold()


class Redactor:
    """Finds roster names on accent-folded text (so "Marísol" and "Marisol" both match a
    roster "Marisol", and a roster "Giedrė" matches "Giedre"), in any case, as whole words,
    with an optional plural/possessive "s" ("the Okafors'")."""

    def __init__(self, roster: list[RosterEntry]):
        roster = list(roster)
        # what this redactor is built from, to key results it shaped (roster_fingerprint)
        self.roster_fingerprint = roster_fingerprint(roster)
        placeholder_for: dict[str, str] = {}
        for entry in roster:
            ph = COACH_PLACEHOLDER if entry.is_coach else STAFF_PLACEHOLDER
            for variant in name_variants(entry.full_name):
                key = _key(variant)
                # a name shared by a coach and a staff member is treated as a coach's
                if placeholder_for.get(key) != COACH_PLACEHOLDER:
                    placeholder_for[key] = ph
        self._placeholder_for = placeholder_for
        # name words for near misses, by first letter: word -> placeholder
        self._near: dict[str, dict[str, str]] = {}
        for key, ph in placeholder_for.items():
            for word in key.split():
                if len(word) >= NEAR_MIN_WORD and _WORD.fullmatch(word):
                    near = self._near.setdefault(word[0], {})
                    if near.get(word) != COACH_PLACEHOLDER:
                        near[word] = ph
        self._pattern = None
        if placeholder_for:
            # longest first so "Ana Okafor" wins over "Ana"; flexible (or no) whitespace
            # between a name's words ("Ana  Okafor", "AnaOkafor")
            alts = sorted(placeholder_for, key=len, reverse=True)
            body = "|".join(r"\s*".join(map(re.escape, a.split())) for a in alts)
            self._pattern = re.compile(rf"(?<!\w)({body})(s?)(?!\w)", re.IGNORECASE)

    def find(self, text: str) -> list[Redaction]:
        if not text or self._pattern is None:
            return []
        folded, index = _fold_with_offsets(text)
        out = []
        for m in self._pattern.finditer(folded):
            ph = self._placeholder_for.get(_key(m.group(1)), COACH_PLACEHOLDER)
            end = m.end(2) if m.group(2) else m.end(1)
            start, end = _original_span(text, index, m.start(), end)
            out.append(Redaction(start, end, text[start:end], ph))
        if self._near:
            out = sorted(out + self._near_misses(text, folded, index, out), key=lambda r: r.start)
        return out

    def _near_misses(self, text: str, folded: str, index: list[int] | None,
                     exact: list[Redaction]) -> list[Redaction]:
        """Capitalised words one typo away from a roster name word (see NEAR_MIN_WORD)."""
        out = []
        for m in _WORD.finditer(folded):
            word = m.group().casefold()
            names = self._near.get(word[0])
            if not names or len(word) < NEAR_MIN_WORD - 1 or word in _PLACEHOLDER_WORDS:
                continue
            start, end = _original_span(text, index, m.start(), m.end())
            if not text[start].isupper() or word in self._placeholder_for:
                continue
            if any(r.start < end and start < r.end for r in exact):
                continue
            for name, ph in names.items():
                if abs(len(name) - len(word)) <= 1 and OSA.distance(word, name, score_cutoff=1) <= 1:
                    out.append(Redaction(start, end, text[start:end], ph))
                    break
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

    def redact_all(self, values) -> list:
        """Redact every text in a sequence (None and non-text pass through)."""
        return [self.redact(v)[0] if isinstance(v, str) else v for v in values]
