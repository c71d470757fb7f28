"""The keyword coder: applies codebooks to answers and explains every application.

How it works (see docs/codebooks.md for the pattern language):
1. Each answer is normalised twice, both times keeping offsets back to the original text:
   - the *regex text*: quotes, dashes and whitespace made uniform, one char for one char,
     so offsets are identical to the original;
   - the *phrase text*: the same, case-folded, with hyphens and slashes read as spaces and
     runs of spaces collapsed to one (an offset map is kept only when a run was collapsed).
2. One Aho-Corasick pass over the phrase text finds every phrase key and every stem anchor
   of every codebook at once. Only those candidates are verified (word boundaries, stems).
3. Regex patterns run on the regex text, and only when one combined alternation of all of
   them finds something in the answer.
4. Hits inside redaction placeholders ("[External Coach name]") are dropped; exclusion
   patterns veto overlapping hits (or the whole code); a code with a hit left is applied once
   and lists every hit as evidence.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass

import ahocorasick
import snowballstemmer

from pipeline.core.codebook import DEFAULT_PLACEHOLDERS, Codebook, Pattern

# --------------------------------------------------------------------------- normalisation

_QUOTES_1 = "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"
_QUOTES_2 = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SPACES = "".join(ch for ch in map(chr, range(0x3100)) if ch.isspace() and ch != " ")

_REGEX_TABLE = str.maketrans(
    {
        **dict.fromkeys(_QUOTES_1, "'"),
        **dict.fromkeys(_QUOTES_2, '"'),
        **dict.fromkeys(_DASHES, "-"),
        **dict.fromkeys(_SPACES, " "),
    }
)
# Phrase text: additionally hyphens and slashes separate words like spaces do, and 'İ' (the
# one character whose lower() is two characters long) is folded to 'i' first.
_PHRASE_TABLE = str.maketrans(
    {
        **dict.fromkeys(_QUOTES_1, "'"),
        **dict.fromkeys(_QUOTES_2, '"'),
        **dict.fromkeys(_DASHES + "-/", " "),
        **dict.fromkeys(_SPACES, " "),
        "\u0130": "i",
    }
)
_RUNS = re.compile(r"  +")


def regex_text(text: str) -> str:
    """Quotes, dashes and whitespace made uniform; same length as `text`."""
    return text.translate(_REGEX_TABLE)


def phrase_text(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """Case-folded text with single spaces between words, and a map back to `text`.

    Returns (normalised, starts, shifts): a position i in the normalised text is position
    i + shifts[k] in `text`, k = bisect_right(starts, i) - 1; starts is None when no shift.
    """
    t = text.translate(_PHRASE_TABLE).lower()
    if "  " not in t:
        return t, None, None
    starts, shifts, parts, pos, removed = [0], [0], [], 0, 0
    for m in _RUNS.finditer(t):
        parts.append(t[pos : m.start() + 1])
        removed += m.end() - m.start() - 1
        pos = m.end()
        starts.append(m.end() - removed)  # where the text after this run lands
        shifts.append(removed)
    parts.append(t[pos:])
    return "".join(parts), starts, shifts


def phrase_key(text: str) -> str:
    """A phrase or keyword as the matcher sees it (same normalisation as the answers)."""
    return phrase_text(text)[0].strip()


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Evidence:
    pattern: str  # the pattern text as written in the codebook
    matched_text: str  # == answer[start:end]
    start: int
    end: int

    def to_dict(self) -> dict:
        return {
            "pattern": self.pattern,
            "matched_text": self.matched_text,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Application:
    framework: str
    dimension: str
    code_id: str
    codebook_version: str
    evidence: list[Evidence]


# --------------------------------------------------------------------------- compiled patterns


class _Stemmer:
    def __init__(self):
        self._stem = snowballstemmer.stemmer("english").stemWord
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        s = self._cache.get(word)
        if s is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            s = self._cache[word] = self._stem(word)
        return s


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _bounded(regex: str, boundary: str) -> str:
    if boundary == "word":
        return rf"(?<!\w)(?:{regex})(?!\w)"
    if boundary == "start":
        return rf"(?<!\w)(?:{regex})"
    return regex


@dataclass
class _Entry:
    """One pattern (or exclusion) of one code, compiled."""

    code: int  # index into KeywordCoder.codes
    pattern: Pattern
    exclusion: bool
    key: str = ""  # phrase/stem: the Aho-Corasick key
    key_len: int = 0  # phrase/stem: length of the Aho-Corasick key
    verify: re.Pattern | None = None  # stem: words from the anchor on; regex: the search
    stems: tuple[str, ...] = ()


class KeywordCoder:
    """Codes answers with one or more codebooks. Build once, reuse for many answers."""

    def __init__(self, codebooks: list[Codebook] | Codebook):
        if isinstance(codebooks, Codebook):
            codebooks = [codebooks]
        self.codebooks = list(codebooks)
        self.codes = [(book, code) for book in self.codebooks for code in book.codes]
        self._stem = _Stemmer()
        self._automaton = ahocorasick.Automaton()
        self._regexes: list[_Entry] = []
        self._has_exclusions = set()
        keys: dict[str, list[_Entry]] = {}
        for i, (_book, code) in enumerate(self.codes):
            for excl, pats in ((False, code.patterns), (True, code.exclusions)):
                for p in pats:
                    entry = self._compile(i, p, excl)
                    if excl:
                        self._has_exclusions.add(i)
                    if p.kind == "regex":
                        self._regexes.append(entry)
                    else:
                        keys.setdefault(entry.key, []).append(entry)
        for key, entries in keys.items():
            self._automaton.add_word(key, tuple(entries))
        self._literal = bool(keys)
        if self._literal:
            self._automaton.make_automaton()
        self._any_regex = _combine([e.verify.pattern for e in self._regexes])
        self._placeholders = {
            i: re.compile(book.placeholders) if book.placeholders else None
            for i, (book, _c) in enumerate(self.codes)
        }
        self._placeholder_res = {r for r in self._placeholders.values() if r is not None}
        self._custom_placeholders = any(
            r.pattern != DEFAULT_PLACEHOLDERS for r in self._placeholder_res
        )

    def _compile(self, i: int, p: Pattern, exclusion: bool) -> _Entry:
        entry = _Entry(code=i, pattern=p, exclusion=exclusion)
        if p.kind == "regex":
            entry.verify = re.compile(_bounded(p.text, p.boundary), re.IGNORECASE)
            return entry
        words = phrase_key(p.text).split(" ")
        if p.kind == "phrase":
            entry.key = " ".join(words)
            entry.key_len = len(entry.key)
            return entry
        # stem: every word matches any word with the same Snowball stem
        stems = tuple(self._stem(w) for w in words)
        prefixes = [_common_prefix(w, s) or w[:1] for w, s in zip(words, stems, strict=True)]
        entry.key = prefixes[0]
        entry.key_len = len(prefixes[0])
        entry.stems = stems
        entry.verify = re.compile(" ".join(rf"({re.escape(x)}\w*)" for x in prefixes))
        return entry

    # ----------------------------------------------------------------------- matching

    def _hits(self, text: str) -> dict[int, list[tuple[Pattern, int, int]]]:
        """code index -> [(pattern, start, end)] in original offsets, after vetoes."""
        found: dict[int, list] = {}
        vetoes: dict[int, list] = {}
        if self._literal:
            self._literal_hits(text, found, vetoes)
        if self._any_regex is not None:
            rtext = regex_text(text)
            if self._any_regex.search(rtext):
                for e in self._regexes:
                    if e.exclusion and e.code not in found:
                        continue
                    for m in e.verify.finditer(rtext):
                        if m.end() > m.start():
                            target = vetoes if e.exclusion else found
                            target.setdefault(e.code, []).append((e.pattern, m.start(), m.end()))
        if not found:
            return found
        if self._placeholder_res and ("[" in text or self._custom_placeholders):
            self._drop_placeholders(text, found)
        for code in vetoes.keys() & found.keys():
            self._apply_vetoes(code, found, vetoes[code])
        return found

    def _literal_hits(self, text: str, found: dict, vetoes: dict) -> None:
        ptext, starts, shifts = phrase_text(text)
        n = len(ptext)
        for end, entries in self._automaton.iter(ptext):
            for e in entries:
                s = end - e.key_len + 1
                boundary = e.pattern.boundary
                if boundary != "none" and s > 0 and _is_word(ptext[s - 1]):
                    continue
                if e.verify is None:  # phrase
                    stop = end + 1
                    if boundary == "word" and stop < n and _is_word(ptext[stop]):
                        continue
                else:  # stem
                    m = e.verify.match(ptext, s)
                    if m is None:
                        continue
                    stem = self._stem
                    if any(stem(w) != st for w, st in zip(m.groups(), e.stems, strict=True)):
                        continue
                    stop = m.end()
                if starts is not None:
                    s = s + shifts[bisect_right(starts, s) - 1]
                    stop = stop - 1 + shifts[bisect_right(starts, stop - 1) - 1] + 1
                target = vetoes if e.exclusion else found
                target.setdefault(e.code, []).append((e.pattern, s, stop))

    def _drop_placeholders(self, text: str, found: dict) -> None:
        """Drop hits that cut into a placeholder; a hit may contain a whole one as context."""
        spans = {r: [m.span() for m in r.finditer(text)] for r in self._placeholder_res}
        for code in list(found):
            r = self._placeholders[code]
            if r is None or not spans[r]:
                continue
            kept = [h for h in found[code] if not _cuts_into(h[1], h[2], spans[r])]
            if kept:
                found[code] = kept
            else:
                del found[code]

    @staticmethod
    def _apply_vetoes(code: int, found: dict, vetoes: list) -> None:
        if any(p.scope == "answer" for p, _s, _e in vetoes):
            del found[code]
            return
        kept = [h for h in found[code] if not any(h[1] < ve and vs < h[2] for _p, vs, ve in vetoes)]
        if kept:
            found[code] = kept
        else:
            del found[code]

    # ----------------------------------------------------------------------- public API

    def code_text(self, text: str) -> list[Application]:
        """Every code that applies to `text`, in codebook order, each with all its evidence."""
        if not isinstance(text, str) or not text:
            return []
        found = self._hits(text)
        out = []
        for code_idx in sorted(found):
            book, code = self.codes[code_idx]
            hits = sorted(found[code_idx], key=lambda h: (h[1], h[2]))
            out.append(
                Application(
                    framework=code.framework,
                    dimension=code.dimension,
                    code_id=code.code_id,
                    codebook_version=book.version,
                    evidence=[Evidence(p.text, text[s:e], s, e) for p, s, e in hits],
                )
            )
        return out

    def code_frame(self, df, id_column: str, text_column: str):
        """One row per (id, code) with the evidence as JSON text; ids without codes give no row."""
        import pandas as pd

        rows = []
        for answer_id, text in zip(df[id_column], df[text_column], strict=True):
            for a in self.code_text(text):
                rows.append(
                    (
                        answer_id,
                        a.framework,
                        a.dimension,
                        a.code_id,
                        a.codebook_version,
                        len(a.evidence),
                        json.dumps([ev.to_dict() for ev in a.evidence], ensure_ascii=False),
                    )
                )
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)


FRAME_COLUMNS = [
    "id",
    "framework",
    "dimension",
    "code_id",
    "codebook_version",
    "n_evidence",
    "evidence",
]


def _cuts_into(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < pe and ps < end and not (start <= ps and pe <= end) for ps, pe in spans)


def _combine(regexes: list[str]) -> re.Pattern | None:
    """One alternation of all regexes as a pre-filter (None: no regexes; or an always-true)."""
    if not regexes:
        return None
    if any(re.search(r"\\\d|\(\?P=|\(\?[aiLmsux]+\)", r) for r in regexes):
        return re.compile("")  # back-references or global flags: no safe pre-filter
    try:
        return re.compile("|".join(f"(?:{r})" for r in regexes), re.IGNORECASE)
    except re.error:
        return re.compile("")
