"""An independent check for roster names in text: token-based on accent-folded, case-folded
text. It shares no matching code with the Redactor, so the checks that use it can disagree
with redaction (and catch its mistakes)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from pipeline.core.redact import RosterEntry, fold, name_variants

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
        """Every text cell of every frame: one hit per (table, column, row) with a name.
        Hits carry no name, only where it is (checks publish them as metadata)."""
        hits = []
        for table, frame in frames.items():
            for column in frame.columns:
                if frame[column].dtype != object:
                    continue
                for row, value in frame[column].items():
                    if isinstance(value, str) and self.find(value):
                        hits.append({"table": table, "column": column, "row": str(row)})
        return hits
