"""Texts a name check found nothing in, remembered between runs by digest.

Staging runs three name checks on every text of a year (the redactor and its scanner on each
answer, the identifier guard on each response id, the independent fuzzy scan on each staged
answer); each is a pure function of the text and the roster, and together they were about
half of staging's time. A refresh that adds one session to a year checks the other sessions'
texts again and finds nothing again. So each check remembers, per school year and roster, the
texts it found NO name in, as 16-byte BLAKE2b digests (never the texts: a digest cannot be
read back, and nothing with a name in it is ever remembered); a text whose digest is known is
clean without being scanned. A text with a finding is always scanned again.

Kept with frame_memo (cache_dir()/name_checks_clean/<key>.parquet), keyed by the check, the
school year, the roster's fingerprint and the pipeline's code, so another roster or another
version of a check starts empty. What one run stores is the digests it used (known or new),
so the file follows the year's texts and does not grow without bound.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from pipeline.core import frame_memo

KIND = "name_checks_clean"


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class CleanMemo:
    """The clean texts of one check (`check`) in one context (school year, roster)."""

    def __init__(self, check: str, context: str):
        self.key = frame_memo.key(KIND, check, context)
        stored = frame_memo.load(KIND, self.key)
        self.known: set[str] = set(stored["digest"]) if stored is not None \
            and list(stored.columns) == ["digest"] else set()
        self.used: set[str] = set()

    def is_clean(self, text: str) -> bool:
        d = digest(text)
        if d in self.known:
            self.used.add(d)
            return True
        return False

    def knows(self, text: str) -> bool:
        """Whether an earlier run found `text` clean, without counting it as used (a check
        about to be asked for it does that)."""
        return digest(text) in self.known

    def mark_clean(self, text: str) -> None:
        self.used.add(digest(text))

    def keep_known(self) -> None:
        """Keep every digest loaded, used this run or not (texts a run skipped are still the
        year's: staging replayed the files they are in)."""
        self.used |= self.known

    def save(self) -> None:
        """Store the digests this run used, when they differ from what was loaded."""
        if self.used != self.known:
            frame_memo.store(KIND, self.key, pd.DataFrame({"digest": sorted(self.used)}))


class StagingCleanMemos:
    """The three checks of staging one school year with one roster."""

    def __init__(self, school_year: str, roster_fingerprint: str):
        context = f"{school_year}|{roster_fingerprint}"
        self.redaction = CleanMemo("redactor and scanner", context)
        self.identifier = CleanMemo("identifier guard", context)
        self.fuzzy = CleanMemo("fuzzy scan", context)

    def keep_known(self) -> None:
        """Staging replayed kept files (ingest/staged_files.py), or left their rows in the
        warehouse (core/warehouse/file_rows.py): their texts' checks were skipped (the fuzzy
        scan runs on the answers staged this run), so their digests are kept as loaded."""
        self.redaction.keep_known()
        self.identifier.keep_known()
        self.fuzzy.keep_known()

    def save(self) -> None:
        for memo in (self.redaction, self.identifier, self.fuzzy):
            memo.save()
