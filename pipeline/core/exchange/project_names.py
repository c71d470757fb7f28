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

import re
from collections import Counter
from collections.abc import Iterable

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


def names_in_chunks(scan: FuzzyNameScan, chunks: Iterable[str]) -> int:
    """`len(scan.find("".join(chunks)))` without joining them; each chunk but the last must
    end with a line break."""
    found: set[str] = set()
    last: list[str] = []       # the previous piece's last token, for the pair across
    for chunk in chunks:
        for piece in _ascii_runs(without_guids(chunk)):
            tokens = letter_tokens(normalise_for_check(piece))
            found.update(w for w in windows(last + tokens) if scan.match(w))
            if tokens:
                last = tokens[-1:]
    return len(found)


def _ascii_runs(chunk: str) -> list[str]:
    """The chunk cut at line breaks into runs of ASCII lines and single other lines: the scan
    has a fast path for ASCII text only, and one label with an accent would otherwise send
    a whole chunk down the per-character path. A line break separates tokens, so the cut
    changes no window."""
    if chunk.isascii():
        return [chunk] if chunk else []
    runs, ascii_lines = [], []
    for line in chunk.split("\n"):
        if line.isascii():
            ascii_lines.append(line)
            continue
        if ascii_lines:
            runs.append("\n".join(ascii_lines))
            ascii_lines = []
        runs.append(line)
    if ascii_lines:
        runs.append("\n".join(ascii_lines))
    return runs


def names_in_project(scan: FuzzyNameScan, qdc_text: str, qde_chunks: Iterable[str],
                     source_texts: Iterable[str]) -> int:
    """`names_in_texts` of the .qdc, the project document (both without their GUIDs) and
    every source text."""
    total = len(scan.find(without_guids(qdc_text))) + names_in_chunks(scan, qde_chunks)
    for text, n in Counter(source_texts).items():
        total += n * len(scan.find(text))
    return total
