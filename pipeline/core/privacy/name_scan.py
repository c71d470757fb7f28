"""An independent check for roster names in text: token-based on accent-folded, case-folded
text. It shares no matching code with the Redactor, so the checks that use it can disagree
with redaction (and catch its mistakes)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
from rapidfuzz import fuzz, process

from pipeline.core.parallel import map_forked
from pipeline.core.privacy.redact import RosterEntry, fold, name_variants

TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(fold(text).casefold())


class NameScanner:
    def __init__(self, roster: Iterable[RosterEntry]):
        self._names: set[tuple[str, ...]] = set()
        for entry in roster:
            for variant in name_variants(entry.full_name):
                toks = tuple(tokens(variant))
                if toks:
                    self._names.add(toks)
                    self._names.add((*toks[:-1], toks[-1] + "s"))   # "the Okafors"
        self._lengths = sorted({len(n) for n in self._names})

    def find(self, text: str) -> list[str]:
        """The names (as folded token runs) that occur in `text` as whole words."""
        toks = tokens(text) if isinstance(text, str) else []
        found = set()
        for n in self._lengths:
            for i in range(len(toks) - n + 1):
                run = tuple(toks[i:i + n])
                if run in self._names:
                    found.add(" ".join(run))
        return sorted(found)

    def scan_frames(self, frames: dict[str, pd.DataFrame]) -> list[dict]:
        """Every text cell of every frame, by this scanner (see `scan_frames`)."""
        return scan_frames(frames, self.find)


def frame_texts(frames: Iterable[pd.DataFrame]) -> Iterator[str]:
    """The texts `scan_frames` asks about: each text column's distinct values."""
    for frame in frames:
        for column in frame.columns:
            if frame[column].dtype == object:
                yield from (v for v in frame[column].drop_duplicates() if isinstance(v, str))


def scan_frames(frames: dict[str, pd.DataFrame], find: Callable[[str], list[str]]) -> list[dict]:
    """Every text cell of every frame: one hit per (table, column, row) in which `find` (a
    scanner's) sees a name. Hits carry no name, only where it is (checks publish them as
    metadata): `row` is the frame's index; when the frame has them, `file` (its file_name or
    source_file, unless that holds the name) and `file_row` (row_number or source_row) say
    where it came from, and `answer_id` which answer."""
    hits = []
    for table, frame in frames.items():
        file_col = next((c for c in ("file_name", "source_file") if c in frame.columns), None)
        row_col = next((c for c in ("row_number", "source_row") if c in frame.columns), None)
        for column in frame.columns:
            if frame[column].dtype != object:
                continue
            values = frame[column]   # each distinct text of the column is scanned once
            flagged = {v for v in values.drop_duplicates()
                       if isinstance(v, str) and find(v)}
            if not flagged:
                continue
            for row, value in values.items():
                if isinstance(value, str) and value in flagged:
                    hit = {"table": table, "column": column, "row": str(row)}
                    if file_col:
                        file = frame.at[row, file_col]
                        hit["file"] = ("(withheld: the file name holds the name)"
                                       if isinstance(file, str) and find(file)
                                       else str(file))
                    if row_col:
                        hit["file_row"] = str(frame.at[row, row_col])
                    if "answer_id" in frame.columns:
                        hit["answer_id"] = str(frame.at[row, "answer_id"])
                    hits.append(hit)
    return hits


# --- the independent check ------------------------------------------------------------------
# NameScanner above shares the Redactor's folding and its name variants, and staging already
# withholds what it finds: a check built on it repeats the step it guards and cannot fail.
# FuzzyNameScan is the check's own method: it strips the invisible characters that split a
# word without showing (zero-width spaces and joiners, soft hyphens, bidi marks: Unicode
# category Cf), cuts text into letter-only tokens with str.isalpha (digits, "_" and "-" split),
# also joins each token with the next one ("Mari sol", "Mari-sol"), and scores every token
# and pair against every roster name word and whole name with rapidfuzz's normalised Indel
# similarity, so a spelling two edits away, in lower case or without its capital, still
# scores high. Text inside the redactor's placeholders is not scanned.

INVISIBLE_CATEGORIES = {"Cf"}            # format characters: U+200B-U+200D, U+00AD, U+2060...
FUZZY_THRESHOLD = 85.0                   # rapidfuzz ratio (0-100) that counts as the name
FUZZY_MIN_LENGTH = 5                     # shorter name words must match exactly
_PLACEHOLDER_TEXT = ("[external coach name]", "[name]")


def normalise_for_check(text: str) -> str:
    """NFKD, marks and invisible format characters dropped, casefolded."""
    if text.isascii():  # NFKD keeps ASCII as it is, and it has no marks or format characters
        out = text.casefold()
        for placeholder in _PLACEHOLDER_TEXT:
            out = out.replace(placeholder, " | ")
        return out
    decomposed = unicodedata.normalize("NFKD", text)
    kept = (ch for ch in decomposed
            if not unicodedata.combining(ch)
            and unicodedata.category(ch) not in INVISIBLE_CATEGORIES)
    out = "".join(kept).casefold()
    for placeholder in _PLACEHOLDER_TEXT:
        out = out.replace(placeholder, " | ")
    return out


_ASCII_TOKENS = re.compile(r"[A-Za-z]+|\|")


def letter_tokens(text: str) -> list[str]:
    """Runs of letters (str.isalpha); anything else separates, and '|' breaks windows."""
    if text.isascii():  # the same runs, found by the regex engine
        return _ASCII_TOKENS.findall(text)
    tokens, current = [], []
    for ch in text:
        if ch.isalpha():
            current.append(ch)
            continue
        if current:
            tokens.append("".join(current))
            current = []
        if ch == "|":
            tokens.append("|")
    if current:
        tokens.append("".join(current))
    return tokens


def windows(tokens: list[str]) -> set[str]:
    """Each token, and each token joined with the next one (no window spans a placeholder)."""
    out = {t for t in tokens if t != "|"}
    for a, b in zip(tokens, tokens[1:], strict=False):
        if a != "|" and b != "|":
            out.add(a + b)
    return out


# checks done ahead (scan_ahead, staging's _check_ahead) fork for this many texts or more: a
# fork of a staging step costs ~0.05 s, and the scan of an answer or a response id ~0.1 ms
AHEAD_MIN_TEXTS = 2000


class FuzzyNameScan:
    """Flags text in which a token or a pair of tokens scores >= `threshold` against a roster
    name word or a whole roster name (words joined). Name words shorter than `min_length`
    count only when matched exactly."""

    def __init__(self, roster: Iterable[RosterEntry], threshold: float = FUZZY_THRESHOLD,
                 min_length: int = FUZZY_MIN_LENGTH, clean=None):
        self.threshold = threshold
        # texts found clean by an earlier run (privacy/clean_memo.CleanMemo), or None
        self.clean = clean
        exact, fuzzy = set(), set()
        for entry in roster:
            words = letter_tokens(normalise_for_check(entry.full_name))
            forms = set(words) | {"".join(words)}
            if len(words) > 1:
                forms.add("".join(words[1:]))
            for form in forms:
                (fuzzy if len(form) >= min_length else exact).add(form)
        self._exact = exact
        self._fuzzy = sorted(fuzzy)
        self._min_length = min_length
        self._cache: dict[str, str | None] = {}
        self._texts: dict[str, tuple[str, ...]] = {}   # text -> its windows taken for a name
        self._ahead: dict[str, tuple[str, ...]] = {}   # scanned by scan_ahead, not yet asked
        self._by_length: dict[int, list[str]] = {}     # window length -> forms it can match

    def match(self, window: str) -> str | None:
        """The roster form a window is taken for, or None."""
        if window in self._cache:
            return self._cache[window]
        found = None
        if window in self._exact:
            found = window
        elif len(window) >= self._min_length - 1 and self._fuzzy:
            choices = self._choices_for_length(len(window))
            best = process.extractOne(window, choices, scorer=fuzz.ratio,
                                      score_cutoff=self.threshold) if choices else None
            found = best[0] if best else None
        self._cache[window] = found
        return found

    def _choices_for_length(self, n: int) -> list[str]:
        """The roster forms a window of `n` letters can score `threshold` against, in order.

        fuzz.ratio is 100 * (1 - indel distance / (n + m)) and the distance is at least
        |n - m|, so a form whose length is too far from n can never reach the threshold:
        leaving it out changes no result (ties still go to the first form in sorted order)
        and spares most comparisons for the random fragments of ids like R_z1giaY5i0shD3Y6.
        The bound is loosened by one point so rounding can never drop a reachable form."""
        if n not in self._by_length:
            self._by_length[n] = [f for f in self._fuzzy
                                  if 100.0 * (1 - abs(n - len(f)) / (n + len(f)))
                                  >= self.threshold - 1]
        return self._by_length[n]

    def find(self, text: str) -> list[str]:
        """The windows of `text` taken for a roster name (folded, for tests; never logged)."""
        if not isinstance(text, str) or not text:
            return []
        found = self._texts.get(text)
        if found is None:   # a text seen before (answers and ids repeat) is not scanned again
            if self.clean is not None and self.clean.is_clean(text):
                found = ()
            else:
                found = self._ahead.pop(text, None)
                if found is None:
                    found = self.scan_uncached(text)
                if not found and self.clean is not None:
                    self.clean.mark_clean(text)
            self._texts[text] = found
        return list(found)

    def scan_uncached(self, text: str) -> tuple[str, ...]:
        """What `find` finds in a text, scanned now: no memo of texts read or written (the
        windows' memo aside), so it can run in a forked worker."""
        return tuple(sorted(w for w in windows(letter_tokens(normalise_for_check(text)))
                            if self.match(w)))

    # Scanning ahead: many texts scanned at once on every core (core.parallel.map_forked),
    # for the `find` calls to come. A result waits aside until `find` asks for its text, and
    # `find` then counts it as it counts its own scans (the memo, the clean memo): what `find`
    # returns and what the clean memo keeps are the same with or without scanning ahead.

    def unscanned(self, texts: Iterable[str]) -> list[str]:
        """The distinct texts `find` would scan: not seen, not scanned ahead, not known clean
        (the clean memo is not marked: `find` does that when it is asked)."""
        return [t for t in dict.fromkeys(texts)
                if isinstance(t, str) and t and t not in self._texts and t not in self._ahead
                and not (self.clean is not None and self.clean.knows(t))]

    def keep_ahead(self, texts: list[str], found: list[tuple[str, ...]]) -> None:
        """`scan_uncached` of each of `texts`, computed elsewhere, for `find` to use."""
        self._ahead.update(zip(texts, found, strict=True))

    def scan_ahead(self, texts: Iterable[str], min_texts: int | None = None) -> int:
        """Scan the `unscanned` of `texts` ahead, when there are at least `min_texts` of them
        (default AHEAD_MIN_TEXTS; fewer: `find` scans them as they come, since forking would
        cost more than it saves). Returns how many were scanned."""
        todo = self.unscanned(texts)
        if len(todo) < (AHEAD_MIN_TEXTS if min_texts is None else min_texts):
            return 0
        self.keep_ahead(todo, map_forked(self.scan_uncached, todo))
        return len(todo)

    def scan_frames(self, frames: dict[str, pd.DataFrame]) -> list[dict]:
        """Every text cell of every frame, by the independent method (see `scan_frames`),
        scanned ahead on every core when there are many."""
        self.scan_ahead(frame_texts(frames.values()))
        return scan_frames(frames, self.find)


# --- the checks of later stages ---------------------------------------------------------------
# The coder sheets, the adjudications, the marts and the report are checked with FuzzyNameScan
# too, not with NameScanner: a check that repeats the redactor's own matching cannot see what
# the redactor missed.


def names_in_frames(roster: Iterable[RosterEntry], frames: dict[str, pd.DataFrame]
                    ) -> list[dict]:
    """Where the independent method sees a roster name in the text cells of `frames` (table
    name -> frame): one hit per (table, column, row), as `scan_frames` describes."""
    return FuzzyNameScan(roster).scan_frames(frames)


def names_in_texts(roster: Iterable[RosterEntry], *texts: str) -> int:
    """How many name-like windows the independent method sees in `texts` (0: none)."""
    scan = FuzzyNameScan(roster)
    return sum(len(scan.find(text)) for text in texts)
