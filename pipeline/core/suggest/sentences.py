"""Split an answer into the units a code is about: sentences and list items, with their spans.

One answer often praises three different things ("Collaboration. Clear steps. [Coach] kept us
on time"), so each unit is scored on its own and the answer keeps the best unit per code as the
evidence. `answer[start:end] == unit text` always.
"""

from __future__ import annotations

import re

# A unit ends at . ! ? ; or a line break (a period after "e.g.", "Mr", "Dr" or a number does not
# end it), and a list item starts at a bullet ("-", "*", "•") at the start of a line or after a
# space. Numbered items ("1.", "2)") start a unit at the start of a line, or anywhere in an
# answer that has a line starting as a numbered list ("1. more time 2. more examples"), so "we
# gave it a 10. Loved it" keeps its number.
_ENDS = (r"(?<!\b[a-z]\.[a-z])(?<!\be\.g)(?<!\bi\.e)(?<!\bmr)(?<!\bms)(?<!\bmrs)(?<!\bdr)"
         r"(?<!\d)[.!?;]+(?=\s|$)"
         r"|\s*\n\s*"
         r"|(?:^|(?<=\s))[-*•·▪◦]\s+")
# Every break starts at a space, a mark, a bullet or a digit: testing that first skips the
# lookbehinds at every other position (3x faster over the whole pattern, the same matches).
_FIRST = r"(?=[\s.!?;\-*•·▪◦\d])"
_BREAK = re.compile(_FIRST + "(?:" + _ENDS + r"|(?:^|(?<=\n))\s*\d{1,2}[.)]\s+)", re.IGNORECASE)
_BREAK_NUMBERED = re.compile(_FIRST + "(?:" + _ENDS + r"|(?:^|(?<=\s))\d{1,2}[.)]\s+)",
                             re.IGNORECASE)
_NUMBERED_LIST = re.compile(r"(?:^|\n)\s*\d{1,2}[.)]\s")
_WORD = re.compile(r"\w")
# Redaction placeholders ("[External Coach name]", "[Name]"): a unit needs a word outside them.
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,80}\]")
MAX_CHARS = 400  # ~100 tokens: a longer unit is cut at a comma or a conjunction (the model
                 # reads 128 tokens and would silently drop the rest)
_CUT = re.compile(r",\s+|;\s+|\s+(?:and|but|also|plus)\s+|\s+", re.IGNORECASE)
MIN_CHARS = 3  # "ok" is not a unit, nor is a unit that is only a redacted name


def split_units(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the answer's units, stripped of spaces and the break characters."""
    spans, start = [], 0
    breaks = _BREAK_NUMBERED if _NUMBERED_LIST.search(text) else _BREAK
    for m in breaks.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in (piece for span in spans for piece in _cut_long(text, *span)):
        while s < e and (text[s].isspace() or text[s] in "-*•·▪◦,"):
            s += 1
        while e > s and (text[e - 1].isspace() or text[e - 1] in ",:"):
            e -= 1
        rest = _PLACEHOLDER.sub(" ", text[s:e])
        if e - s >= MIN_CHARS and len(rest.strip()) >= MIN_CHARS and _WORD.search(rest):
            out.append((s, e))
    return out


def _cut_long(text: str, s: int, e: int) -> list[tuple[int, int]]:
    """(s, e) as pieces of at most MAX_CHARS, cut at the last comma, conjunction or space."""
    pieces = []
    while e - s > MAX_CHARS:
        cuts = [m for m in _CUT.finditer(text, s + MIN_CHARS, s + MAX_CHARS)]
        best = next((m for m in reversed(cuts) if not m.group().isspace()), None) or \
            (cuts[-1] if cuts else None)
        if best is None:
            break
        pieces.append((s, best.start()))
        s = best.end()
    pieces.append((s, e))
    return pieces


def units_frame(answers, id_column: str, text_column: str):
    """One row per unit: id, unit (0-based), start, end, text. (The whole of a multi-unit answer
    is not a unit of its own: on the independent evaluation sets it changed one answer in 200
    and doubled the text to embed.)"""
    import pandas as pd

    rows = []
    for answer_id, text in zip(answers[id_column], answers[text_column], strict=True):
        text = "" if text is None else str(text)
        for i, (s, e) in enumerate(split_units(text)):
            rows.append((answer_id, i, s, e, text[s:e]))
    return pd.DataFrame(rows, columns=["id", "unit", "start", "end", "text"])
