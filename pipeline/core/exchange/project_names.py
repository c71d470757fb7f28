"""The roster-name check of the REFI-QDA files, over the project as it is streamed.

`names_in_texts(roster, qdc, qde, *sources)` (pipeline.core.privacy.name_scan) counts the
name-like windows the independent method sees in each text. The project document is never
held whole here (`qdpx.qde_chunks` renders it in chunks), so `names_in_project` gives the same
count from the chunks: the scan's windows are tokens and pairs of adjacent tokens of the
normalised text, and a chunk ends at a line break, where no token, placeholder or combining
sequence is cut, so the windows of the document are the windows of its chunks plus the pair
across each boundary. The source texts repeat (many answers are 'NA'): each distinct text is
scanned once and counted as often as it occurs. tests/test_refi_qda.py checks the count
against `names_in_texts` on the joined document (GUIDs masked).

The GUIDs (uuid5 in hex) are masked before the scan: nobody wrote them, and their fragments
are words of hex letters, so a roster name such as "Ed" or "Deb" would be found in nearly
every one of them and block the export of a project that holds no name; they were also most
of the document's 25 million tokens at 100,000 answers.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.core.privacy.name_scan import (
    FuzzyNameScan,
    letter_tokens,
    normalise_for_check,
    windows,
)

_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def without_guids(text: str) -> str:
    """`text` with every GUID replaced by a space (a token boundary, as the GUID was)."""
    return _GUID.sub(" ", text)


@dataclass
class ChunkNames:
    """What the scan found in a run of chunks, in a form that joins with its neighbours' (a
    school year's fragment of the document is scanned once and kept with it): the names found
    inside, and the first and last tokens, for the pairs across the boundaries."""

    found: set[str] = field(default_factory=set)
    first: list[str] = field(default_factory=list)   # [] or the first token
    last: list[str] = field(default_factory=list)    # [] or the last token

    def to_json(self) -> dict:
        return {"found": sorted(self.found), "first": self.first, "last": self.last}

    @classmethod
    def from_json(cls, data: dict) -> ChunkNames:
        return cls(set(data["found"]), list(data["first"]), list(data["last"]))


def scan_chunks(scan: FuzzyNameScan, chunks: Iterable[str]) -> ChunkNames:
    """The scan of `chunks` as if joined (each chunk but the last must end with a line break)."""
    out = ChunkNames()
    for chunk in chunks:
        scan_chunk(scan, out, chunk)
    return out


def scan_chunk(scan: FuzzyNameScan, out: ChunkNames, chunk: str) -> None:
    """Add one chunk (the next after those `out` holds) to `out`.

    A line break separates tokens and no placeholder or combining sequence spans one, so the
    chunk's windows are those inside each line and the pairs of the last token of a line
    (with a token) and the first of the next. Once the GUIDs are masked the lines repeat (the
    markup around each source: 7% of them are distinct in a chunk at a million answers), so
    each distinct line is scanned once, and each distinct pair of adjacent lines gives its
    window across once."""
    lines = without_guids(chunk).split("\n")
    if len(lines) > 1 and not lines[-1]:   # after the chunk's last line break
        lines.pop()
    distinct = set(lines)
    ends: dict[str, tuple[str, str]] = {}   # a line with a token -> (first, last token)
    for line in distinct:
        tokens = letter_tokens(normalise_for_check(line))
        if tokens:
            out.found.update(w for w in windows(tokens) if scan.match(w))
            ends[line] = (tokens[0], tokens[-1])
    if not ends:
        return
    if len(ends) < len(distinct):   # lines without a token do not part their neighbours
        lines = [line for line in lines if line in ends]
    pairs = {(ends[a][1], ends[b][0]) for a, b in set(itertools.pairwise(lines))}
    if out.last:   # across the boundary with the chunks before
        pairs.add((out.last[0], ends[lines[0]][0]))
    out.found.update(a + b for a, b in pairs if a != "|" and b != "|" and scan.match(a + b))
    out.first = out.first or [ends[lines[0]][0]]
    out.last = [ends[lines[-1]][1]]


def joined(scan: FuzzyNameScan, parts: Iterable[ChunkNames]) -> set[str]:
    """The names `scan_chunks` finds in the parts' chunks joined in this order: each part's,
    and the pairs across boundaries (the last token before, the first token after)."""
    found: set[str] = set()
    last: list[str] = []
    for part in parts:
        found |= part.found
        found.update(w for w in windows(last + part.first) if scan.match(w))
        if part.last:
            last = part.last
    return found


def names_in_chunks(scan: FuzzyNameScan, chunks: Iterable[str]) -> int:
    """`len(scan.find("".join(chunks)))` without joining them; each chunk but the last must
    end with a line break."""
    return len(scan_chunks(scan, chunks).found)


def names_in_project(scan: FuzzyNameScan, qdc_text: str, qde_chunks: Iterable[str],
                     source_texts: Iterable[str]) -> int:
    """`names_in_texts` of the .qdc, the project document (both without their GUIDs) and
    every source text."""
    total = len(scan.find(without_guids(qdc_text))) + names_in_chunks(scan, qde_chunks)
    for text, n in Counter(source_texts).items():
        total += n * len(scan.find(text))
    return total
