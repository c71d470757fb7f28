"""What the report reads (ReportInputs, one frame per warehouse table) and what is derived from
it once for every section (Prepared: the years and their sources, the compared pair, the
year-over-year rows of that pair, the codes that fire together)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.core.ingest.ids import QUESTION_TEXT
from pipeline.core.marts.year_comparison import year_over_year
from pipeline.core.report.years import Years, compare_pair

QUESTIONS = QUESTION_TEXT  # the survey's question texts, as ingestion defines them
# what the data-quality section shows of raw.export_files and raw.quarantine (not when they
# were loaded or quarantined: a report made from the same rows is the same report, and is kept
# as such, kept.py)
EXPORT_FILE_COLUMNS = ["school_year", "file_name", "file_sha256", "reader", "encoding",
                       "n_records", "status"]
QUARANTINE_COLUMNS = ["school_year", "stage", "level", "reason"]


@dataclass
class ReportInputs:
    """What the report reads; every frame follows its warehouse table's columns."""

    frequencies: pd.DataFrame                       # marts.code_frequencies
    quotes: pd.DataFrame                            # marts.exemplar_quotes
    year_over_year: pd.DataFrame | None = None      # marts.year_over_year
    trends: pd.DataFrame | None = None              # marts.code_trends
    agreement: pd.DataFrame | None = None           # coding.agreement
    keyword_quality: pd.DataFrame | None = None     # coding.keyword_quality
    suggestion_quality: pd.DataFrame | None = None  # coding.suggestion_quality
    coding_sources: pd.DataFrame | None = None      # marts.coding_sources(final codes)
    export_files: pd.DataFrame | None = None        # raw.export_files' EXPORT_FILE_COLUMNS
    quarantine: pd.DataFrame | None = None          # raw.quarantine's QUARANTINE_COLUMNS
    redactions: pd.DataFrame | None = None          # school_year, n (counts only)
    codebook_codes: pd.DataFrame | None = None      # coding.codebook_codes
    by_school: pd.DataFrame | None = None           # marts.by_school (suppressed here)
    by_coach: pd.DataFrame | None = None            # marts.by_coach (suppressed here)
    co_firing: pd.DataFrame | None = None           # codebook.co_firing_groups(final codes)
    title: str = "Coaching feedback surveys: coded findings"
    generated_at: str | None = None
    min_cell: int = 5
    top_codes: int = 12                             # codes in the rates chart
    trend_codes: int = 5                            # codes in the trend chart
    summary_codes: int = 5                          # top codes in each question's summary
    compare_years: Sequence[str] | None = None      # the two years compared (default: auto)
    templates: str | Path | None = None             # a folder of templates overriding ours
    questions: dict[str, str] = field(default_factory=lambda: dict(QUESTIONS))


@dataclass
class Prepared:
    inp: ReportInputs
    years: Years
    pair: tuple[str, str] | None
    yoy: pd.DataFrame            # year-over-year rows of `pair` (empty without a pair)
    questions: list[str]

    @property
    def yoy_note(self) -> str | None:
        """The comparison's note when the two years were coded differently (or by a machine)."""
        y = self.yoy
        if y.empty or "note" not in y.columns:
            return None
        note = y["note"].dropna()
        return str(note.iloc[0]) if len(note) else None

    def yoy_rows(self, level: str, question: str) -> dict:
        y = self.yoy
        if y.empty:
            return {}
        y = y[(y["level"] == level) & (y["question_id"] == question)]
        key = "code_id" if level == "code" else "dimension"
        return {getattr(r, key): r for r in y.itertuples()}


def prepare(inp: ReportInputs) -> Prepared:
    years = Years(inp.frequencies, inp.coding_sources)
    pair = compare_pair(years, inp.compare_years)
    yoy = inp.year_over_year
    if pair is None:
        yoy = pd.DataFrame(columns=["level", "question_id", "year_a", "year_b"])
    elif yoy is None or yoy.empty or (str(yoy["year_a"].iloc[0]),
                                      str(yoy["year_b"].iloc[0])) != pair:
        # the mart holds another pair (or none): the same computation for the chosen pair
        yoy = year_over_year(inp.frequencies, *pair)
    present = set(inp.frequencies["question_id"].dropna())
    questions = [q for q in inp.questions if q in present]
    questions += sorted(present - set(questions))
    return Prepared(inp, years, pair, yoy, questions)
