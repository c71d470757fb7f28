"""One answer, explained: everything the warehouse knows about how it was coded.

`gather(con, answer_id)` reads (never writes) staging.answers, coding.code_applications
(human coders and the keyword coder), coding.suggestions, coding.discrepancies,
coding.adjudications and coding.final_codes for one answer; `render(info, color)` prints it:
the answer, each code applied by each coder, the keyword coder's hits with the matched words
highlighted (ANSI bold yellow on a terminal, «guillemets» otherwise), the suggestions, and the
final decision per code with who made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from pipeline.core.ingest.ids import QUESTION_TEXT
from pipeline.core.warehouse.connection import read_frame

HIGHLIGHT_ON, HIGHLIGHT_OFF = "\x1b[1;33m", "\x1b[0m"
PLAIN_ON, PLAIN_OFF = "«", "»"
BOLD, RESET = "\x1b[1m", "\x1b[0m"
CONTEXT_FROM = 120   # answers longer than this also show each hit in its surrounding words


class UnknownAnswerError(LookupError):
    pass


@dataclass
class AnswerInfo:
    answer: dict
    labels: dict[tuple[str, str], tuple[str, str]]     # (framework, code_id) -> (label, category)
    human: pd.DataFrame        # coding.code_applications, coder_kind 'human'
    keyword: pd.DataFrame      # coding.code_applications, coder_kind 'keyword'
    suggestions: pd.DataFrame
    discrepancies: pd.DataFrame
    adjudications: pd.DataFrame
    final: pd.DataFrame


def gather(con, answer_id: str) -> AnswerInfo:
    answers = read_frame(con, "staging.answers", {"answer_id": answer_id})
    if answers.empty:
        raise UnknownAnswerError(f"no answer {answer_id!r} in staging.answers")
    apps = read_frame(con, "coding.code_applications", {"answer_id": answer_id})
    disc = read_frame(con, "coding.discrepancies", {"answer_id": answer_id})
    adj = read_frame(con, "coding.adjudications")
    adj = adj[adj["discrepancy_id"].isin(set(disc["discrepancy_id"]))]
    codes = read_frame(con, "coding.codebook_codes")
    labels = {(f, c): (lab, dl if isinstance(dl, str) and dl else d)
              for f, c, lab, d, dl in zip(codes["framework"], codes["code_id"], codes["label"],
                                          codes["dimension"],
                                          codes.get("dimension_label", codes["dimension"]),
                                          strict=True)}
    return AnswerInfo(
        answer=answers.iloc[0].to_dict(), labels=labels,
        human=apps[apps["coder_kind"] == "human"], keyword=apps[apps["coder_kind"] == "keyword"],
        suggestions=read_frame(con, "coding.suggestions", {"answer_id": answer_id}),
        discrepancies=disc, adjudications=adj,
        final=read_frame(con, "coding.final_codes", {"answer_id": answer_id}))


def highlight(text: str, spans: list[tuple[int, int]], color: bool) -> str:
    """`text` with each (start, end) span marked; overlapping spans are merged."""
    on, off = (HIGHLIGHT_ON, HIGHLIGHT_OFF) if color else (PLAIN_ON, PLAIN_OFF)
    merged: list[list[int]] = []
    for s, e in sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out += [text[pos:s], on, text[s:e], off]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _spans(evidence: object) -> list[dict]:
    items = json.loads(evidence) if isinstance(evidence, str) and evidence else []
    return [i for i in items if isinstance(i, dict)]


def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return ""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def render(info: AnswerInfo, color: bool = False) -> str:
    a = info.answer
    text = str(a["answer_text"])
    bold = (lambda s: f"{BOLD}{s}{RESET}") if color else (lambda s: s)

    def name(framework: str, code_id: str) -> str:
        label, category = info.labels.get((framework, code_id), (code_id, ""))
        return f"{label} ({category})" if category else label

    head = " · ".join(x for x in (
        f"answer {a['answer_id']}", _value(a.get("school_year")),
        f"session {_value(a.get('session_number'))}" if _value(a.get("session_number")) else "",
        _value(a.get("school_id")), _value(a.get("role"))) if x)
    lines = [bold(head),
             f"Question: {QUESTION_TEXT.get(a['question_id'], a['question_id'])}"]
    all_spans = [(int(s["start"]), int(s["end"])) for e in info.keyword["evidence"]
                 for s in _spans(e) if "start" in s and "end" in s]
    lines += ["", "  " + highlight(text, all_spans, color), ""]
    if a.get("non_substantive") is True:
        lines.append("(a non-substantive answer: not counted in the marts)")

    lines.append(bold("Human coders"))
    if info.human.empty:
        lines.append("  nobody coded this answer by hand")
    for coder, rows in info.human.groupby("coder", sort=True):
        codes = "; ".join(name(f, c) for f, c in zip(rows["framework"], rows["code_id"],
                                                     strict=True))
        lines.append(f"  {coder}: {codes}")
        for f, c, note in zip(rows["framework"], rows["code_id"], rows["note"], strict=True):
            if _value(note):
                lines.append(f"    note on {name(f, c)}: {note}")

    lines.append(bold("Keyword coder"))
    if info.keyword.empty:
        lines.append("  no keyword hit")
    for row in info.keyword.itertuples(index=False):
        hits = _spans(row.evidence)
        spans = [(int(h["start"]), int(h["end"])) for h in hits if "start" in h]
        where = ", ".join(f"{highlight(str(h.get('matched_text', '')), [(0, 10**6)], color)} "
                          f"(pattern {h.get('pattern', '?')!s})" for h in hits)
        lines.append(f"  {name(row.framework, row.code_id)}: {where}")
        if spans and len(text) > CONTEXT_FROM:   # a long answer: where in it
            lines.append("    " + _context(text, spans, color))

    lines.append(bold("Suggestions"))
    if info.suggestions.empty:
        lines.append("  none")
    s = info.suggestions.sort_values("probability", ascending=False)
    for row in s.itertuples(index=False):
        ev = _value(row.evidence_text)
        lines.append(f"  {name(row.framework, row.code_id)}: p={float(row.probability):.2f} "
                     f"({str(row.source).replace('_', '-')})" + (f", from \"{ev}\"" if ev else ""))

    lines.append(bold("Final decision"))
    if info.final.empty:
        lines.append("  no final code")
    adj = info.adjudications
    for row in info.final.itertuples(index=False):
        who = _value(row.decided_by)
        detail = {"agreed": f"both coders applied it ({who})",
                  "adjudicated": f"adjudicated by {who}",
                  "unresolved": "the coders disagree; waiting for an adjudicator"
                                f" (discrepancy {_value(row.discrepancy_id)})"
                  }.get(row.provenance, f"{str(row.provenance).replace('_', ' ')}, "
                                        f"decided by {who} (no human coded this year)")
        lines.append(f"  {name(row.framework, row.code_id)}: {detail}")
        did = _value(row.discrepancy_id)
        if did and not adj.empty:
            for r in adj[adj["discrepancy_id"] == did].itertuples(index=False):
                if _value(r.reason):
                    lines.append(f"    reason: {r.reason}")
    for row in info.discrepancies.itertuples(index=False):
        decided = info.final[(info.final["discrepancy_id"] == row.discrepancy_id)]
        if decided.empty:   # decided 'do not apply': no final row
            verdict = adj[(adj["discrepancy_id"] == row.discrepancy_id)
                          & adj["accepted"].astype(bool)]
            by = ", ".join(sorted({_value(x) for x in verdict["adjudicator"]})) or "?"
            lines.append(f"  {name(row.framework, row.code_id)}: not applied, adjudicated by "
                         f"{by} ({row.coder_a}: {row.decision_a}; {row.coder_b}: "
                         f"{row.decision_b})")
    return "\n".join(lines)


def _context(text: str, spans: list[tuple[int, int]], color: bool, width: int = 30) -> str:
    """The words around the spans: '…before «match» after…'."""
    start = max(0, min(s for s, _ in spans) - width)
    end = min(len(text), max(e for _, e in spans) + width)
    shifted = [(s - start, e - start) for s, e in spans]
    return ("…" if start else "") + highlight(text[start:end], shifted, color) + (
        "…" if end < len(text) else "")
