"""Identifiers that leave the raw layer: export file names and response ids.

A coordinator may name an export after a person ("session-02_MarisolQuintero.csv"), and the
response id of an export without one is made from the file name (`<stem>-r<row>`). Before they
reach staging:

- `file_label(name, sha256, ...)`: the file name with roster names replaced, the way answers
  are redacted, after splitting it into words at '_', '-', '.', digits and camelCase humps;
  when the independent check (FuzzyNameScan) or the redactor's own scan still sees a name in
  the result, the whole name is replaced by `file-<first 8 hex of its sha256>.<ext>`, which
  raw.export_files.file_sha256 joins back to the file.
- `safe_response_id(rid, ...)`: an export's own response id kept as it is, unless a name is
  seen in it: then `rid-<12 hex of its sha256>` (stable across runs).

The raw layer keeps the original names (raw.export_files, raw.survey_rows, raw.quarantine).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import PurePath

from pipeline.core.privacy.name_scan import FuzzyNameScan, NameScanner
from pipeline.core.privacy.redact import Redactor

_SEPARATORS = re.compile(r"[_\-.\d+()\[\]]")
_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])")   # an ASCII camelCase hump


def spaced(text: str) -> tuple[str, list[int]]:
    """`text` with separators as spaces and a space at each camelCase hump, and for each
    character of the result its index in `text` (-1 for an inserted space)."""
    out, index = [], []
    for i, ch in enumerate(text):
        if ch.isupper() and i and text[i - 1].islower():
            out.append(" ")
            index.append(-1)
        out.append(" " if _SEPARATORS.fullmatch(ch) else ch)
        index.append(i)
    return "".join(out), index


def spaced_words(text: str) -> str:
    """`spaced(text)[0]`, by two regex passes for an ASCII text (response ids: a check per
    row, where the loop over characters was a third of the check)."""
    if text.isascii():   # separators are not letters: replacing them moves no hump
        return _HUMP.sub(" ", _SEPARATORS.sub(" ", text))
    return spaced(text)[0]


class IdentifierGuard:
    """Redacts or replaces roster names in file names and ids (see the module doc)."""

    def __init__(self, redactor: Redactor, scanner: NameScanner, check: FuzzyNameScan,
                 clean=None):
        self.redactor = redactor
        self.scanner = scanner
        self.check = check
        self.clean = clean  # ids found clean by an earlier run (privacy/clean_memo), or None
        self._ahead: dict[str, tuple[str, bool, bool]] = {}   # keep_ahead's, not yet asked

    def has_name(self, text: str) -> bool:
        if self.clean is not None and self.clean.is_clean(text):
            return False
        words, in_words, in_text = self._ahead.pop(text, None) or (spaced_words(text), None,
                                                                   None)
        found = bool(self.check.find(words) or _seen(self.scanner, words, in_words)
                     or self.check.find(text) or _seen(self.scanner, text, in_text))
        if not found and self.clean is not None:
            self.clean.mark_clean(text)
        return found

    # Checking ahead (staging's ids, core/ingest/staging.py `_check_ahead`): `has_name`'s
    # parts for many ids, computed at once in forked workers; `has_name` takes them when it
    # is asked for the id and does the rest as it always has (the memos, the clean memo).

    def unchecked(self, ids) -> list[str]:
        """The distinct ids `has_name` would check: not checked ahead, not known clean."""
        return [t for t in dict.fromkeys(ids) if t and t not in self._ahead
                and not (self.clean is not None and self.clean.knows(t))]

    def check_uncached(self, text: str) -> tuple:
        """`has_name`'s parts for an id, computed now without touching a memo: its spaced
        words, the fuzzy scans of them and of the id (of those FuzzyNameScan.find would scan),
        and whether the scanner sees a name in each."""
        words = spaced_words(text)
        scans = {t: self.check.scan_uncached(t) for t in self.check.unscanned([words, text])}
        return words, scans, bool(self.scanner.find(words)), bool(self.scanner.find(text))

    def keep_ahead(self, ids: list[str], parts: list[tuple]) -> None:
        """`check_uncached` of each of `ids`, computed elsewhere, for `has_name` to use."""
        for text, (words, scans, in_words, in_text) in zip(ids, parts, strict=True):
            self._ahead[text] = (words, in_words, in_text)
            self.check.keep_ahead(list(scans), list(scans.values()))

    def redact(self, text: str) -> str:
        words, index = spaced(text)
        found = self.redactor.find(words)
        if not found:
            return text
        parts, pos = [], 0
        for r in found:
            chars = [index[k] for k in range(r.start, r.end) if index[k] >= 0]
            if not chars:
                continue
            start, end = chars[0], chars[-1] + 1
            if start < pos:
                continue
            parts += [text[pos:start], r.placeholder]
            pos = end
        parts.append(text[pos:])
        return "".join(parts)

    def file_label(self, file_name: str, sha256: str | None) -> str:
        label = self.redact(file_name)
        if not self.has_name(label):
            return label
        suffix = PurePath(file_name).suffix
        digest = (sha256 or hashlib.sha256(file_name.encode("utf-8")).hexdigest())[:8]
        return f"file-{digest}{suffix}"

    def response_id(self, rid: str) -> str:
        if not self.has_name(rid):
            return rid
        return withheld_response_id(rid)


def withheld_response_id(rid: str) -> str:
    """What a response id with a name in it is staged as."""
    return "rid-" + hashlib.sha256(rid.encode("utf-8")).hexdigest()[:12]


def possible_response_ids(supplied: Iterable[str]) -> Iterator[str]:
    """Each supplied response id as `IdentifierGuard.response_id` may stage it: itself, and
    its withheld form (without the name check that decides which)."""
    for rid in supplied:
        if rid:
            yield rid
            yield withheld_response_id(rid)


def _seen(scanner: NameScanner, text: str, known: bool | None) -> bool:
    """Whether the scanner sees a name in `text` (`known`: found ahead)."""
    return bool(scanner.find(text)) if known is None else known


def identifier_guard(roster) -> IdentifierGuard:
    """The guard staging uses, for a roster (list of RosterEntry)."""
    return IdentifierGuard(Redactor(roster), NameScanner(roster), FuzzyNameScan(roster))


def label_export_files(files, roster):
    """raw.export_files as the report may show it: each file name replaced by the label
    staging gives it (`file_label`), so a file named after a person never leaves raw."""
    if files is None or files.empty:
        return files
    guard = identifier_guard(roster)
    out = files.copy()
    out["file_name"] = [guard.file_label(str(n), None if s is None or s != s else str(s))
                        for n, s in zip(out["file_name"], out["file_sha256"], strict=True)]
    return out

