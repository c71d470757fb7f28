"""The keyword coder: applies codebooks to answers and explains every application.

How it works (see docs/codebooks.md for the pattern language):
1. Each answer is normalised twice, both times keeping offsets back to the original text:
   - the *regex text*: quotes, dashes and whitespace made uniform, one char for one char,
     so offsets are identical to the original;
   - the *phrase text*: the same, case-folded, with hyphens and slashes read as spaces and
     runs of spaces collapsed to one (an offset map is kept only when a run was collapsed).
2. One Aho-Corasick pass over the phrase text finds every phrase key and every word form of
   every stem pattern (generated when the coder is built) of every codebook at once, plus the
   literal *triggers* of the regexes; candidates only need a word-boundary check.
3. A regex pattern runs on the regex text only when one of its triggers (literal strings
   every match must contain, read off the parsed regex) occurs in the answer.
4. Hits inside redaction placeholders ("[External Coach name]") are dropped; exclusion
   patterns veto overlapping hits (or the whole code); a code with a hit left is applied once
   and lists every hit as evidence.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

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
        "\u0130": "i",
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
# Fast path for ASCII answers (most of them): one bytes.translate does it all.
_ASCII_UPPER = bytes(range(65, 91))
_ASCII_SPACES = bytes(c for c in range(128) if chr(c).isspace() and c != 32)
_REGEX_BYTES = bytes.maketrans(
    _ASCII_UPPER + _ASCII_SPACES, _ASCII_UPPER.lower() + b" " * len(_ASCII_SPACES)
)
_PHRASE_BYTES = bytes.maketrans(
    _ASCII_UPPER + _ASCII_SPACES + b"-/", _ASCII_UPPER.lower() + b" " * (len(_ASCII_SPACES) + 2)
)


def regex_text(text: str) -> str:
    """Case-folded, quotes, dashes and whitespace made uniform; same length as `text`."""
    if text.isascii():
        return text.encode("ascii").translate(_REGEX_BYTES).decode("ascii")
    return text.translate(_REGEX_TABLE).lower()


def phrase_text(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """Case-folded text with single spaces between words, and a map back to `text`.

    Returns (normalised, starts, shifts): a position i in the normalised text is position
    i + shifts[k] in `text`, k = bisect_right(starts, i) - 1; starts is None when no shift.
    """
    if text.isascii():
        t = text.encode("ascii").translate(_PHRASE_BYTES).decode("ascii")
    else:
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


# --------------------------------------------------------------------------- results


class Evidence(NamedTuple):
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


class Application(NamedTuple):
    framework: str
    dimension: str
    code_id: str
    codebook_version: str
    evidence: list[Evidence]


# --------------------------------------------------------------------------- compiled patterns


_STEM = snowballstemmer.stemmer("english").stemWord
# Endings tried on a stem-pattern word; a form is kept when its Snowball stem is the word's.
_INFLECTIONS = ("", "s", "es", "e", "ed", "d", "ing", "'s")
_DERIVATIONS = (
    "er", "ers", "ate", "ated", "ates", "ating", "ation", "ations", "ative", "atively", "ator",
    "ators", "ion", "ions", "ive", "ively", "iveness", "ment", "ments", "al", "ally", "ly",
    "ness", "ity", "ities", "y", "ies", "ied", "ier", "iest", "iness", "able", "ability",
    "ably", "ful", "fully", "ance", "ances", "ence", "ences", "ant", "ants", "ent", "ents",
    "ency", "ancy", "ship", "ize", "izes", "ized", "izing", "ization", "ise", "ises", "ised",
    "ising", "isation", "ist", "ists", "ism", "ic", "ical", "ically", "ure", "ures", "ured",
    "uring", "est", "ous", "ously",
)  # fmt: skip
_MAX_FORMS = 20_000


@lru_cache(maxsize=4096)
def word_forms(word: str, derived: bool = True) -> tuple[str, ...]:
    """The forms of `word` a stem pattern accepts: same Snowball stem, common English endings."""
    word = word.lower()
    stem = _STEM(word)
    bases = {word, stem, word[:-1] if word.endswith("e") else word}
    if stem.endswith("i"):
        bases.add(stem[:-1] + "y")
    endings = _INFLECTIONS + (_DERIVATIONS if derived else ())
    forms = {b + x for b in bases for x in endings}
    for b in bases:
        if len(b) > 2 and b[-1] not in "aeiouwxy" and b[-2] in "aeiou":
            forms.update(b + b[-1] + x for x in ("ed", "ing", "er", "ers"))
        if b.endswith("y"):
            forms.update(b[:-1] + x for x in ("ies", "ied", "ier", "iest", "iness", "ily"))
    return tuple(sorted(f for f in forms if _STEM(f.replace("'s", "")) == stem))


def stem_keys(text: str) -> list[str]:
    """Every phrase key of a stem pattern: each word in each of its forms (capped)."""
    words = phrase_key(text).split(" ")
    per_word = [word_forms(w, derived=(i == len(words) - 1)) for i, w in enumerate(words)]
    keys = [""]
    for forms in per_word:
        keys = [f"{k} {f}" if k else f for k in keys for f in forms][:_MAX_FORMS]
    return keys


def _bounded(regex: str, boundary: str) -> str:
    if boundary == "word":
        return rf"(?<!\w)(?:{regex})(?!\w)"
    if boundary == "start":
        return rf"(?<!\w)(?:{regex})"
    return regex


@dataclass(eq=False)
class _Regex:
    """One regex pattern (or exclusion) of one code, compiled with its boundary."""

    code: int  # index into KeywordCoder.codes
    pattern: Pattern
    exclusion: bool
    search: re.Pattern
    all_sets: int = 0  # bit mask of its trigger sets; it runs when all of them occur


class KeywordCoder:
    """Codes answers with one or more codebooks. Build once, reuse for many answers."""

    def __init__(self, codebooks: list[Codebook] | Codebook):
        if isinstance(codebooks, Codebook):
            codebooks = [codebooks]
        self.codebooks = list(codebooks)
        self.codes = [(book, code) for book in self.codebooks for code in book.codes]
        self._always: list[_Regex] = []  # regexes without triggers: run on every answer
        # Aho-Corasick key -> tuple of items. A literal item is
        # (key length, check left boundary, check right boundary, is exclusion, code, pattern);
        # a regex trigger item is (-1, _Regex, bit of its trigger set).
        keys: dict[str, dict[tuple, None]] = {}
        for i, (_book, code) in enumerate(self.codes):
            for excl, pats in ((False, code.patterns), (True, code.exclusions)):
                for p in pats:
                    if p.kind == "regex":
                        triggers = regex_triggers(p.text) or []
                        rx = _Regex(i, p, excl, _compile_regex(p.text, p.boundary))
                        rx.all_sets = (1 << len(triggers)) - 1
                        if not triggers:
                            self._always.append(rx)
                        for bit, trigger_set in enumerate(triggers):
                            for t in trigger_set:
                                keys.setdefault(t, {})[(-1, rx, 1 << bit)] = None
                        continue
                    left, right = p.boundary != "none", p.boundary == "word"
                    forms = [phrase_key(p.text)] if p.kind == "phrase" else stem_keys(p.text)
                    for k in forms:
                        keys.setdefault(k, {})[(len(k), left, right, excl, i, p)] = None
        self._automaton = ahocorasick.Automaton()
        for key, items in keys.items():
            self._automaton.add_word(key, tuple(items))
        self._literal = bool(keys)
        if self._literal:
            self._automaton.make_automaton()
        self._placeholders = {
            i: re.compile(book.placeholders) if book.placeholders else None
            for i, (book, _c) in enumerate(self.codes)
        }
        self._placeholder_res = {r for r in self._placeholders.values() if r is not None}
        self._custom_placeholders = any(
            r.pattern != DEFAULT_PLACEHOLDERS for r in self._placeholder_res
        )

    # ----------------------------------------------------------------------- matching

    def _hits(self, text: str) -> dict[int, list[tuple[Pattern, int, int]]]:
        """code index -> [(pattern, start, end)] in original offsets, after vetoes."""
        found: dict[int, list] = {}
        vetoes: dict[int, list] = {}
        regexes = self._literal_hits(text, found, vetoes) if self._literal else []
        if self._always:
            regexes = self._always + regexes
        if regexes:
            rtext = regex_text(text)
            for rx in regexes:
                for m in rx.search.finditer(rtext):
                    if m.end() > m.start():
                        target = vetoes if rx.exclusion else found
                        target.setdefault(rx.code, []).append((rx.pattern, m.start(), m.end()))
        if not found:
            return found
        if self._placeholder_res and ("[" in text or self._custom_placeholders):
            self._drop_placeholders(text, found)
        for code in vetoes.keys() & found.keys():
            self._apply_vetoes(code, found, vetoes[code])
        return found

    def _literal_hits(self, text: str, found: dict, vetoes: dict) -> dict:
        """Phrase and stem hits into found/vetoes; returns the regexes whose trigger occurs."""
        ptext, starts, shifts = phrase_text(text)
        last = len(ptext) - 1
        triggered: dict[_Regex, int] = {}
        for end, items in self._automaton.iter(ptext):
            for item in items:
                key_len = item[0]
                if key_len < 0:
                    rx = item[1]
                    triggered[rx] = triggered.get(rx, 0) | item[2]
                    continue
                _n, left, right, excl, code, pattern = item
                s = end - key_len + 1
                if left and s > 0:
                    ch = ptext[s - 1]
                    if ch.isalnum() or ch == "_":
                        continue
                if right and end < last:
                    ch = ptext[end + 1]
                    if ch.isalnum() or ch == "_":
                        continue
                stop = end + 1
                if starts is not None:
                    s += shifts[bisect_right(starts, s) - 1]
                    stop = end + shifts[bisect_right(starts, end) - 1] + 1
                target = vetoes if excl else found
                target.setdefault(code, []).append((pattern, s, stop))
        return [rx for rx, bits in triggered.items() if bits == rx.all_sets]

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


# --------------------------------------------------------------------------- regex triggers
# A regex only runs on an answer that contains one of its *triggers*: literal strings that
# every match must contain, read off the parsed regex. The Aho-Corasick pass finds triggers
# together with the phrase keys, so most regexes never run on most answers.

try:  # Python 3.11+
    import re._constants as _sc
    import re._parser as _sp
except ImportError:  # pragma: no cover
    import sre_constants as _sc
    import sre_parse as _sp

_MAX_SET = 64


def _exact(items) -> set[str] | None:
    """The finite set of strings a parsed sequence matches exactly, or None."""
    out = {""}
    for op, av in items:
        if op is _sc.LITERAL:
            alts = {chr(av).lower()}
        elif op is _sc.IN and all(o is _sc.LITERAL for o, _ in av):
            alts = {chr(c).lower() for _, c in av}
        elif op is _sc.SUBPATTERN:
            alts = _exact(av[-1])
        elif op is _sc.BRANCH:
            subs = [_exact(b) for b in av[1]]
            alts = None if any(x is None for x in subs) else set().union(*subs)
        elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            body = _exact(av[2])
            alts = None if body is None else body | {""}
        else:
            return None
        if alts is None or len(out) * len(alts) > _MAX_SET:
            return None
        out = {a + b for a in out for b in alts}
    return out


def _required(items) -> list[set[str]]:
    """Sets of strings such that every match of the parsed sequence contains one string of
    *each* set (an empty list: nothing known)."""
    found, stretch = [], []

    def close():
        if stretch:
            ex = _exact(stretch)
            if ex and "" not in ex:
                found.append(ex)
            stretch.clear()

    for op, av in items:
        if _exact([(op, av)]) is not None:
            stretch.append((op, av))
            continue
        close()
        if op is _sc.SUBPATTERN:
            found.extend(_required(av[-1]))
        elif op is _sc.BRANCH:
            best = [_best(_required(b)) for b in av[1]]
            if all(best):
                found.append(set().union(*best))
        elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT, _sc.POSSESSIVE_REPEAT) and av[0] >= 1:
            found.extend(_required(av[2]))
        elif op is getattr(_sc, "ATOMIC_GROUP", None):
            found.extend(_required(av))
        # anything else (classes, \w*, assertions, optional parts) contributes nothing
    close()
    return found


def _best(sets: list[set[str]]) -> set[str] | None:
    return max(sets, key=_strength) if sets else None


def _strength(strings: set[str]) -> tuple[int, int]:
    return min(map(len, strings)), -len(strings)


def regex_triggers(regex: str, most: int = 2) -> list[list[str]] | None:
    """Up to `most` trigger sets for a regex, normalised like the phrase text: the regex can
    only match an answer that contains a string of every set. None: run on every answer."""
    try:
        sets = _required(list(_sp.parse(regex, re.IGNORECASE)))
    except Exception:
        return None
    out = []
    for req in sorted(sets, key=_strength, reverse=True):
        keys = sorted({phrase_text(t)[0] for t in req})
        if any(not k.strip() for k in keys) or keys in out:
            continue
        if out and min(map(len, keys)) < 3:  # short words: more hits than they save
            break
        out.append(keys)
        if len(out) == most:
            break
    return out or None


def _compile_regex(text: str, boundary: str) -> re.Pattern:
    """Regexes run on case-folded text; IGNORECASE (twice as slow) only for patterns that
    spell upper-case letters, e.g. 'DRY' or '[A-Z]'."""
    flags = re.IGNORECASE if re.search(r"[A-Z]", re.sub(r"\\.", "", text)) else 0
    return re.compile(_bounded(text, boundary), flags)


def _cuts_into(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < pe and ps < end and not (start <= ps and pe <= end) for ps, pe in spans)
