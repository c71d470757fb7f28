"""The report's data model, built once: the sections in reading order (the summary, the table of
contents, one section per question, agreement, coder quality, the per-school and per-coach
views, data quality). The HTML and the Markdown templates both render this context."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core.report import evidence
from pipeline.core.report.blocks import Block, Section, dim_label
from pipeline.core.report.inputs import Prepared, ReportInputs, prepare
from pipeline.core.report.questions import (
    category_anchor,
    category_order,
    question_blocks,
    question_text,
)
from pipeline.core.report.summary import QuestionSummary, question_summaries
from pipeline.core.report.years import source_notes


@dataclass
class ReportContext:
    title: str
    generated_at: str | None
    years: list[str]
    compared: tuple[str, str] | None          # the two years compared
    compared_marked: tuple[str, str] | None   # their names as shown (with † when machine-coded)
    notes: list[Block]                        # one per school year: who coded it
    summaries: list[QuestionSummary]
    sections: list[Section] = field(default_factory=list)

    @property
    def meta(self) -> str:
        text = f"School years: {', '.join(self.years) or 'none'}."
        if self.compared_marked:
            text += f" Compared: {self.compared_marked[0]} → {self.compared_marked[1]}."
        if self.generated_at:
            text += f" Generated {self.generated_at}."
        return text

    @property
    def contents(self) -> list[Section]:
        """The sections the table of contents lists (every one but itself)."""
        return [s for s in self.sections if s.template != "contents"]

    def as_dict(self) -> dict[str, object]:
        return {"report": self, "title": self.title, "sections": self.sections}


def build_context(inp: ReportInputs) -> ReportContext:
    prep = prepare(inp)
    years = prep.years
    ctx = ReportContext(
        title=inp.title, generated_at=inp.generated_at, years=years.all,
        compared=prep.pair,
        compared_marked=tuple(years.mark(y) for y in prep.pair) if prep.pair else None,
        notes=source_notes(years), summaries=question_summaries(prep))
    ctx.sections.append(Section(
        "summary", "Summary", "summary",
        entries=[(s.anchor, s.text) for s in ctx.summaries]))
    ctx.sections.append(Section("contents", "Contents", "contents"))
    for q in prep.questions:
        ctx.sections.append(Section(
            f"q-{q}", f"“{question_text(prep, q)}”", "question", question_blocks(prep, q),
            entries=[(category_anchor(q, d), dim_label(d)) for _, d in category_order(prep, q)]
            + [(f"q-{q}-charts", "Charts")], data={"question": q}))
    ctx.sections += _evidence_sections(prep)
    return ctx


def _evidence_sections(prep: Prepared) -> list[Section]:
    agreement = evidence.agreement(prep)
    out = [Section("agreement", "Inter-coder agreement", "agreement", agreement,
                   entries=[("agreement-by-year", "Per school year and question")]
                   if len(agreement) > 1 else [])]
    suggestions = evidence.suggestion_quality(prep)
    out.append(Section("keyword", "Keyword coder and suggestions against the human codes",
                       "coder_quality", evidence.keyword_quality(prep) + suggestions,
                       entries=[("suggestions", "Suggestions against the human codes")]
                       if suggestions else []))
    views = evidence.views(prep)
    if views:
        out.append(Section("views", "By school and coach (small cells suppressed)", "views",
                           views, entries=[(b.anchor, b.text) for b in views
                                           if getattr(b, "anchor", None)]))
    out.append(Section("data-quality", "Data quality and provenance", "data_quality",
                       evidence.data_quality(prep)))
    return out
