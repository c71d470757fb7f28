"""The keyword coder: applies codebooks to answers and explains every application.

One module of about 770 lines on purpose: it is one algorithm on the hot path (normalising,
one Aho-Corasick pass, regex triggers, the C batch path and its Python oracle share their
tables), and splitting it would spread one data structure over several files.

How it works (see docs/codebooks.md for the pattern language):
1. Each answer is normalised twice, both times keeping offsets back to the original text:
   - the *regex text*: quotes, dashes and whitespace made uniform, one char for one char,
     so offsets are identical to the original;
   - the *phrase text*: the same, case-folded, with hyphens and slashes read as spaces and
     runs of spaces collapsed to one (an offset map is kept only when a run was collapsed).
2. One Aho-Corasick pass over the phrase text finds every phrase key and every word form of
   every stem pattern (generated when the coder is built) of every codebook at once, plus the
   literal *triggers* of the regexes; candidates only need a word-boundary check.
3. A regex pattern runs on the regex text only when all its trigger sets (literal strings
   every match must contain, read off the parsed regex) occur in the answer. When every match
   must also *start* with one of a few literals that the same pass finds, the regex is only
   tried (re.match) where one of them starts; finditer would find exactly the same matches.
4. Hits inside redaction placeholders ("[External Coach name]") are dropped; exclusion
   patterns veto overlapping hits (or the whole code); a code with a hit left is applied once
   and lists every hit as evidence.

Batch path: code_frame hands the answers to a compiled scan (pipeline/core/coding/_scanner.c, built
by pip install) that does all of the above in C for each answer but the regexes themselves,
which Python's re runs, and writes the evidence JSON. The answer-by-answer path (`_hits`, used
by code_text) is the oracle the batch path is tested against (tests/test_matcher_batch.py),
and decides the evidence order in the rare case of two regex patterns of one code matching
the very same span.
"""

from __future__ import annotations

import gc
import os
import re
import warnings
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from json.encoder import encode_basestring as _json_str
from operator import itemgetter
from typing import NamedTuple

import ahocorasick
import snowballstemmer

from pipeline.core.coding.codebook import DEFAULT_PLACEHOLDERS, Codebook, Pattern

# The compiled scan is the fast path; without a C compiler at install time (the extension is
# optional in pyproject.toml) or with SURVEY_PURE_PYTHON_SCAN=1, the pure-Python reference path
# codes every answer instead, with identical output (tests/test_matcher_batch.py), only slower.
try:
    if os.environ.get("SURVEY_PURE_PYTHON_SCAN") == "1":
        raise ImportError("SURVEY_PURE_PYTHON_SCAN=1")
    from pipeline.core.coding._scanner import Scanner
except ImportError as _why:
    Scanner = None
    warnings.warn(f"keyword coder: compiled scan unavailable ({_why}); using the pure-Python "
                  "path (same codes, slower)", RuntimeWarning, stacklevel=1)

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


def bounded(regex: str, boundary: str) -> str:
    """`regex` held to its boundary: a whole word, the start of a word, or anywhere."""
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
    pid: int = 0  # index into KeywordCoder._patterns
    need: int = 0  # its trigger sets as bits of the coder-wide trigger mask
    _base: int = 0  # its first bit there
    # Literal strings every match starts with (None: unknown). When the automaton finds them,
    # the regex is tried only where one of them starts (re.match at those offsets, which is
    # exactly what finditer would find, see _run_anchored) instead of scanning the answer.
    prefixes: tuple[str, ...] | None = None


_START_END = itemgetter(0, 1)
# code_frame hands the compiled scan 20,000 answers at a time.
_CHUNK = 20_000


class KeywordCoder:
    """Codes answers with one or more codebooks. Build once, reuse for many answers."""

    def __init__(self, codebooks: list[Codebook] | Codebook):
        if isinstance(codebooks, Codebook):
            codebooks = [codebooks]
        self.codebooks = list(codebooks)
        self.codes = [(book, code) for book in self.codebooks for code in book.codes]
        self._patterns: list[Pattern] = []  # pid -> pattern (evidence names it)
        self._pid: dict[Pattern, int] = {}  # by value: equal patterns of a code hit once

        def pid_of(p: Pattern) -> int:
            if p not in self._pid:
                self._pid[p] = len(self._patterns)
                self._patterns.append(p)
            return self._pid[p]

        self._always: list[_Regex] = []  # regexes without triggers: run on every answer
        self._regexes: list[_Regex] = []  # regexes with triggers
        # Aho-Corasick key -> its items: literal items (check left boundary, check right
        # boundary, is exclusion, code, pid), trigger items (_Regex, bit of its trigger set)
        # and the regexes this key is a prefix of.
        keys: dict[str, tuple[dict, dict, dict]] = {}

        def entry(k: str) -> tuple[dict, dict, dict]:
            return keys.setdefault(k, ({}, {}, {}))

        for i, (_book, code) in enumerate(self.codes):
            for excl, pats in ((False, code.patterns), (True, code.exclusions)):
                for p in pats:
                    pid = pid_of(p)
                    if p.kind == "regex":
                        triggers = regex_triggers(p.text) or []
                        rx = _Regex(i, p, excl, _compile_regex(p.text, p.boundary), pid=pid)
                        rx.all_sets = (1 << len(triggers)) - 1
                        if not triggers:
                            self._always.append(rx)
                            continue
                        self._regexes.append(rx)
                        for bit, trigger_set in enumerate(triggers):
                            for t in trigger_set:
                                entry(t)[1][(rx, 1 << bit)] = None
                        continue
                    left, right = p.boundary != "none", p.boundary == "word"
                    forms = [phrase_key(p.text)] if p.kind == "phrase" else stem_keys(p.text)
                    for k in forms:
                        entry(k)[0][(left, right, excl, i, pid)] = None
        # Coder-wide trigger bits: regex r's trigger set b is bit base_r + b.
        base = 0
        for rx in self._regexes:
            n_sets = rx.all_sets.bit_length()
            rx.need = ((1 << n_sets) - 1) << base
            rx._base = base
            base += n_sets
        for r, rx in enumerate(self._regexes):
            rx.prefixes = _anchor_prefixes(rx.search)
            for k in rx.prefixes or ():
                entry(k)[2][r] = None
        # Per key, in key id order: (key length, literal items, trigger mask, prefix-of
        # regexes, trigger items in order).
        self._key_text = list(keys)
        self._keys: list[tuple] = []
        for key, (lits, trigs, pres) in keys.items():
            mask = 0
            for rx, bit in trigs:
                mask |= bit << rx._base
            self._keys.append((len(key), tuple(lits), mask, tuple(pres), tuple(trigs)))
        self._literal = bool(keys)
        self._n_bits = base
        self._placeholders = {
            i: re.compile(book.placeholders) if book.placeholders else None
            for i, (book, _c) in enumerate(self.codes)
        }
        self._placeholder_res = {r for r in self._placeholders.values() if r is not None}
        self._custom_placeholders = any(
            r.pattern != DEFAULT_PLACEHOLDERS for r in self._placeholder_res
        )
        # Per pattern: the start of its evidence JSON object, up to the matched text.
        self._json_head = [
            '{"pattern": ' + _json_str(p.text) + ', "matched_text": ' for p in self._patterns
        ]

    @cached_property
    def _scanner(self) -> Scanner:
        """The compiled batch scan (pipeline/core/coding/_scanner.c) with this coder's tables, built
        when code_frame first needs it (~1 s and a 66 MB table for the shipped codebooks)."""
        with _gc_paused():  # its tables are millions of small objects: 1.3 -> 0.75 s
            return Scanner(*self._scanner_tables())

    def _scanner_tables(self) -> tuple:
        """The compiled scan's constructor arguments."""
        words = max(1, -(-self._n_bits // 64))

        def split(mask: int) -> list[int]:
            return [(mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(words)]

        n_always = len(self._always)
        regexes = [
            (rx.search, rx.code, rx.pid, rx.exclusion, False, split(0)) for rx in self._always
        ] + [
            (rx.search, rx.code, rx.pid, rx.exclusion, rx.prefixes is not None, split(rx.need))
            for rx in self._regexes
        ]
        placeholder_res = sorted(self._placeholder_res, key=lambda r: r.pattern)
        return (
            self._key_text,
            [list(v[1]) for v in self._keys],
            [split(v[2]) for v in self._keys],
            [[r + n_always for r in v[3]] for v in self._keys],
            regexes,
            [
                (head, p.kind == "regex", p.scope == "answer")
                for head, p in zip(self._json_head, self._patterns, strict=True)
            ],
            [
                -1 if r is None else placeholder_res.index(r)
                for _i, r in sorted(self._placeholders.items())
            ],
            placeholder_res,
            self._custom_placeholders,
            words,
            _REGEX_BYTES[:128],
            sorted((k, ord(v) if isinstance(v, str) else v) for k, v in _REGEX_TABLE.items()),
        )

    @cached_property
    def _automaton(self) -> ahocorasick.Automaton:
        """The reference path's automaton (value: key id), built when first needed."""
        automaton = ahocorasick.Automaton()
        for kid, key in enumerate(self._key_text):
            automaton.add_word(key, kid)
        if self._key_text:
            automaton.make_automaton()
        return automaton

    # ----------------------------------------------------------------------- batch path

    def _code_chunk(self, texts: list) -> tuple:
        """(answer index, code index, n_evidence, evidence JSON) for `texts` (anything but a
        non-empty str has no code), rows in answer then code order: the compiled scan, which
        defers to the reference path for an answer where two regexes of one code match the
        very same span."""

        def fallback(k: int) -> list[tuple[int, int, str]]:
            text = texts[k]
            found = self._reference_found(text)
            return [(code, len(found[code]), self._evidence_json(text, found[code]))
                    for code in sorted(found)]  # fmt: skip

        if Scanner is None:
            return _python_chunk(texts, fallback)
        return self._scanner.code_chunk(texts, fallback)

    def _evidence_json(self, text: str, hits: list[tuple[int, int, int]]) -> str:
        """What json.dumps(ensure_ascii=False) gives for the hits' Evidence dicts."""
        heads = self._json_head
        return (
            "["
            + ", ".join(
                f'{heads[pid]}{_json_str(text[s:e])}, "start": {s}, "end": {e}}}'
                for s, e, pid in hits
            )
            + "]"
        )

    def _reference_found(self, text: str) -> dict[int, list[tuple[int, int, int]]]:
        """The reference path's result for one answer, as (start, end, pid) by position."""
        pid = self._pid
        found = self._hits(text)
        return {
            code: sorted(((s, e, pid[p]) for p, s, e in h), key=_START_END)
            for code, h in found.items()
        }

    # ----------------------------------------------------------------------- reference path
    # Answer by answer, as the coder worked before the batch path; kept as the oracle the
    # batch path is tested against (tests/test_matcher_batch.py) and for ties it defers to.

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
            self._drop_placeholders(text, found, 1)
        for code in vetoes.keys() & found.keys():
            self._apply_vetoes(code, found, vetoes[code], 1)
        return found

    def _literal_hits(self, text: str, found: dict, vetoes: dict) -> list[_Regex]:
        """Phrase and stem hits into found/vetoes; returns the regexes whose trigger occurs."""
        ptext, starts, shifts = phrase_text(text)
        last = len(ptext) - 1
        triggered: dict[_Regex, int] = {}
        patterns = self._patterns
        values = self._keys
        for end, kid in self._automaton.iter(ptext):
            key_len, lits, _m, _p, trigs = values[kid]
            for rx, bit in trigs:
                triggered[rx] = triggered.get(rx, 0) | bit
            for left, right, excl, code, pid in lits:
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
                target.setdefault(code, []).append((patterns[pid], s, stop))
        return [rx for rx, bits in triggered.items() if bits == rx.all_sets]

    # ----------------------------------------------------------------------- shared steps
    # Hits are tuples with start and end at positions `at`, `at + 1` (batch: (start, end,
    # pid), at=0; reference: (pattern, start, end), at=1).

    def _drop_placeholders(self, text: str, found: dict, at: int) -> None:
        """Drop hits that cut into a placeholder; a hit may contain a whole one as context."""
        spans = {r: [m.span() for m in r.finditer(text)] for r in self._placeholder_res}
        for code in list(found):
            r = self._placeholders[code]
            if r is None or not spans[r]:
                continue
            kept = [h for h in found[code] if not _cuts_into(h[at], h[at + 1], spans[r])]
            if kept:
                found[code] = kept
            else:
                del found[code]

    def _apply_vetoes(self, code: int, found: dict, vetoes: list, at: int) -> None:
        patterns = self._patterns
        pattern_of = (lambda v: patterns[v[2]]) if at == 0 else itemgetter(0)
        if any(pattern_of(v).scope == "answer" for v in vetoes):
            del found[code]
            return
        spans = [(v[at], v[at + 1]) for v in vetoes]
        kept = [
            h for h in found[code] if not any(h[at] < ve and vs < h[at + 1] for vs, ve in spans)
        ]
        if kept:
            found[code] = kept
        else:
            del found[code]

    # ----------------------------------------------------------------------- public API

    def code_text(self, text: str) -> list[Application]:
        """Every code that applies to `text`, in codebook order, each with all its evidence.

        One answer at a time: the answer-by-answer path (the batch path's set-up costs more
        than it saves on a single answer). code_frame gives the same codes and evidence."""
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
        """One row per (id, code) with the evidence as JSON text; ids without codes give no row.

        Answers go through the compiled scan in chunks of 20,000; the evidence JSON is byte
        for byte what json.dumps gives for Evidence.to_dict lists."""
        import numpy as np
        import pandas as pd

        texts = list(df[text_column])
        rows, codes, n_ev, evidence = [], [], [], []
        with _gc_paused():
            for lo in range(0, len(texts), _CHUNK):
                ks, cs, ns, ev = self._code_chunk(texts[lo : lo + _CHUNK])
                rows.append(np.frombuffer(ks, dtype=np.int64) + lo)
                codes.append(np.frombuffer(cs, dtype=np.int64))
                n_ev.append(np.frombuffer(ns, dtype=np.int64))
                evidence.extend(ev)
        if not evidence:
            return pd.DataFrame([], columns=FRAME_COLUMNS)
        row_arr = np.concatenate(rows)
        code_arr = np.concatenate(codes)
        per_code = [
            (code.framework, code.dimension, code.code_id, book.version)
            for book, code in self.codes
        ]
        columns = {"id": _id_column(df[id_column], row_arr)}
        for j, name in enumerate(("framework", "dimension", "code_id", "codebook_version")):
            values = np.empty(len(per_code), dtype=object)
            values[:] = [c[j] for c in per_code]
            columns[name] = values[code_arr]
        columns["n_evidence"] = np.concatenate(n_ev)
        ev_col = np.empty(len(evidence), dtype=object)
        ev_col[:] = evidence
        columns["evidence"] = ev_col
        return pd.DataFrame(columns, copy=False)


_CODERS: dict[tuple, KeywordCoder] = {}


def coder_for(codebooks) -> KeywordCoder:
    """One KeywordCoder per set of codebook versions in this process: building the automaton
    takes seconds, and a run's assets (keyword codes of each year, the suggester's keyword
    feature) code with the same codebooks. A version is the file's content hash."""
    books = [codebooks] if isinstance(codebooks, Codebook) else list(codebooks)
    key = tuple((b.framework, b.version, str(b.path)) for b in books)
    if key not in _CODERS:
        _CODERS.clear()  # codebooks changed: keep one coder, not one per edit
        with _gc_paused():  # 1.8 -> 0.75 s for the shipped codebooks
            _CODERS[key] = KeywordCoder(books)
    return _CODERS[key]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block that allocates millions of small objects
    (none of them in cycles): it would walk the coder's large tables again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _python_chunk(texts: list, code_of) -> tuple:
    """The compiled scan's output shape, from the reference path (`code_of(k)` per answer)."""
    import numpy as np

    ks, cs, ns, ev = [], [], [], []
    for k, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            continue
        for code, n, evidence in code_of(k):
            ks.append(k)
            cs.append(code)
            ns.append(n)
            ev.append(evidence)
    as_bytes = [np.array(v, dtype=np.int64).tobytes() for v in (ks, cs, ns)]
    return (*as_bytes, ev)


def _id_column(ids, rows):
    """ids at `rows`, typed as pd.DataFrame(list of row tuples) would infer them."""
    import numpy as np
    import pandas as pd

    if ids.dtype == np.int64:
        return ids.to_numpy()[rows]
    values = ids.to_numpy()[rows]
    if values.dtype == np.dtype(object) and all(type(v) is str for v in values):
        return values
    return pd.DataFrame([(v,) for v in ids.iloc[rows].tolist()], columns=["id"])["id"]


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


def _exact(items, fold: bool = True) -> set[str] | None:
    """The finite set of strings a parsed sequence matches exactly (lower-cased when `fold`),
    or None."""
    out = {""}
    case = str.lower if fold else str
    for op, av in items:
        if op is _sc.LITERAL:
            alts = {case(chr(av))}
        elif op is _sc.IN and all(o is _sc.LITERAL for o, _ in av):
            alts = {case(chr(c)) for _, c in av}
        elif op is _sc.SUBPATTERN:
            if not fold and (av[1] or av[2]):  # scoped flags, e.g. (?i:...)
                return None
            alts = _exact(av[-1], fold)
        elif op is _sc.BRANCH:
            subs = [_exact(b, fold) for b in av[1]]
            alts = None if any(x is None for x in subs) else set().union(*subs)
        elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            body = _exact(av[2], fold)
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


_ZERO_WIDTH = (_sc.ASSERT, _sc.ASSERT_NOT, _sc.AT)
_REPEATS = (_sc.MAX_REPEAT, _sc.MIN_REPEAT, getattr(_sc, "POSSESSIVE_REPEAT", _sc.MAX_REPEAT))


def _starts(items) -> set[str] | None:
    """Strings (case as written) one of which every match of the parsed sequence starts with;
    '' among them or None: nothing known."""
    out = {""}
    for op, av in items:
        if op in _ZERO_WIDTH:  # consumes nothing: what follows still starts the match
            continue
        alts = _exact([(op, av)], fold=False)
        last = alts is None  # not a finite set of strings: its starts end the prefix
        if last:
            if op is _sc.SUBPATTERN and not (av[1] or av[2]):
                alts = _starts(av[-1])
            elif op is _sc.BRANCH:
                subs = [_starts(b) for b in av[1]]
                alts = None if any(x is None for x in subs) else set().union(*subs)
            elif op in _REPEATS and av[0] >= 1:
                alts = _starts(av[2])
            elif op is getattr(_sc, "ATOMIC_GROUP", None):
                alts = _starts(av)
            else:
                alts = {""}
            if alts is None:
                return None
        out = {a + b for a in out for b in alts}
        if len(out) > _MAX_SET:
            return None
        if last:
            break
    return out


def _anchor_prefixes(compiled: re.Pattern) -> tuple[str, ...] | None:
    """Literal strings every match of `compiled` starts with, usable as automaton keys, or
    None. Only for case-sensitive regexes (they run on case-folded text); each string must be
    its own phrase key (no hyphens, slashes, capitals or runs of spaces) that does not start
    with a space (the phrase text may have moved such a space onto the one before it).
    Short strings are fine: a try of re.match where "we" or "i" starts costs less than
    finditer over the answer."""
    if compiled.flags & re.IGNORECASE:
        return None
    try:
        starts = _starts(list(_sp.parse(compiled.pattern, compiled.flags)))
    except Exception:
        return None
    if not starts or "" in starts:
        return None
    for s in starts:
        if s.startswith(" ") or phrase_text(s)[0] != s:
            return None
    return tuple(sorted(starts))


def _compile_regex(text: str, boundary: str) -> re.Pattern:
    """Regexes run on case-folded text; IGNORECASE (twice as slow) only for patterns that
    spell upper-case letters, e.g. 'DRY' or '[A-Z]'."""
    flags = re.IGNORECASE if re.search(r"[A-Z]", re.sub(r"\\.", "", text)) else 0
    return re.compile(bounded(text, boundary), flags)


def _cuts_into(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < pe and ps < end and not (start <= ps and pe <= end) for ps, pe in spans)
