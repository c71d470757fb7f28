"""The findings report: one self-contained HTML file (inline CSS and SVG) and its Markdown twin.

Both are rendered from one list of blocks (headings, paragraphs, tables, charts), so they carry
the same content; a chart's data goes into the Markdown as a table. All text is escaped.
Stable hooks for tests and readers: table.findings[data-question], svg#chart-rates-<q>,
svg#chart-heatmap-<q>, svg#chart-trend-<q>, table.agreement, table.keyword-quality,
table.suggestion-quality, table.by-school, table.by-coach, table.dq-files,
table.dq-quarantine, table.dq-redactions, table.dq-codebooks, p.keyword-standin[data-year],
p.suggestion-standin[data-year], and .machine-coded[data-year][data-coding-source] on every
table column, table row and chart label of a school year coded by a machine stand-in (header
text marked with a dagger). docs/report.md describes the sections.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from pipeline.core.files import atomic_write_text
from pipeline.core.ingest.ids import QUESTION_TEXT
from pipeline.core.marts.marts import machine_coded, suppress_small_cells
from pipeline.core.report import svg

QUESTIONS = QUESTION_TEXT  # the survey's question texts, as ingestion defines them
FRAMEWORKS = {
    "scale": "Scale (Coburn)",
    "relational_trust": "Relational trust (Bryk & Schneider)",
}
DIMENSIONS = {
    "competence_in_core_responsibilities": "Competence in core responsibilities",
}
# The paper's order: Scale's four dimensions, then Relational trust's two.
ORDER = ["scale", "relational_trust", "depth", "sustainability", "spread",
         "shift_in_reform_ownership", "personal_regard", "competence_in_core_responsibilities"]


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
    export_files: pd.DataFrame | None = None        # raw.export_files
    quarantine: pd.DataFrame | None = None          # raw.quarantine
    redactions: pd.DataFrame | None = None          # school_year, n (counts only)
    codebook_codes: pd.DataFrame | None = None      # coding.codebook_codes
    by_school: pd.DataFrame | None = None           # marts.by_school (suppressed here)
    by_coach: pd.DataFrame | None = None            # marts.by_coach (suppressed here)
    title: str = "Coaching feedback surveys: coded findings"
    generated_at: str | None = None
    min_cell: int = 5
    top_codes: int = 12                             # codes in the rates chart
    trend_codes: int = 5                            # codes in the trend chart
    questions: dict[str, str] = field(default_factory=lambda: dict(QUESTIONS))


# ----------------------------------------------------------------------------- blocks

@dataclass
class Table:
    headers: list[str]
    rows: list[list[object]]        # a cell is text, or a list of texts (rendered as a list)
    css_class: str
    attrs: dict[str, str] = field(default_factory=dict)
    caption: str | None = None
    col_attrs: dict[int, dict[str, str]] = field(default_factory=dict)   # th and td of a column
    row_attrs: list[dict[str, str]] = field(default_factory=list)        # tr of a body row


@dataclass
class Chart:
    svg: str
    data: Table
    caption: str


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str | None = None


@dataclass
class Para:
    text: str
    css_class: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


Block = Heading | Para | Table | Chart


# ----------------------------------------------------------------------------- formatting

def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _int(v: object) -> str:
    return "" if _missing(v) else (v if isinstance(v, str) else f"{int(v):,}")


def _f(v: object, digits: int = 1) -> str:
    return "" if _missing(v) else f"{float(v):.{digits}f}"


def _p(v: object) -> str:
    if _missing(v):
        return ""
    return "<0.001" if float(v) < 0.001 else f"{float(v):.3f}"


def _ci(est: object, low: object, high: object, digits: int = 2) -> str:
    if _missing(est):
        return ""
    if _missing(low) or _missing(high):
        return _f(est, digits)
    return f"{_f(est, digits)} [{_f(low, digits)}, {_f(high, digits)}]"


def _dim(d: object) -> str:
    return "" if _missing(d) else DIMENSIONS.get(str(d), str(d).replace("_", " ").capitalize())


def _fw(f: object) -> str:
    return "" if _missing(f) else FRAMEWORKS.get(str(f), str(f).replace("_", " ").capitalize())


def _order(values: pd.Series) -> pd.Series:
    """Sort key for framework / dimension columns: the paper's order, then alphabetical."""
    rank = {v: f"{i:02d}" for i, v in enumerate(ORDER)}
    return values.map(lambda v: rank.get(v, f"99{v}"))


def _short_year(y: str) -> str:
    return y[2:] if re.fullmatch(r"\d{4}-\d{2}", y) else y


def _session_label(year: str, session: object) -> str:
    return f"{_short_year(year)} S{'?' if _missing(session) else int(session)}"


def _session_key(shown: dict, r) -> str:
    """The shown label of a trends row's (school year, session) column."""
    for (y, s), label in shown.items():
        if y == r.school_year and (s == r.session_number or (_missing(s) and
                                                              _missing(r.session_number))):
            return label
    return _session_label(r.school_year, r.session_number)


# ----------------------------------------------------------------------------- sections

def _years(inp: ReportInputs) -> list[str]:
    return sorted(inp.frequencies["school_year"].dropna().astype(str).unique())


MARK = " †"   # after a machine-coded year's name in headers and chart labels
SUGGESTERS = {"trained_suggestion": "trained", "zero_shot_suggestion": "zero-shot"}
MACHINE_TAGS = {"trained_suggestion": "trained suggester",
                "zero_shot_suggestion": "zero-shot suggester", "keyword": "keyword coder"}


def _sources(inp: ReportInputs) -> dict[str, str]:
    """school_year -> coding_source, as the marts carry it."""
    freq = inp.frequencies
    out = {}
    for year in _years(inp):
        src = freq.loc[freq["school_year"] == year, "coding_source"].dropna()
        out[year] = str(src.iloc[0]) if len(src) else "none"
    return out


def _machine(inp: ReportInputs, year: object) -> str | None:
    """The coding source of a machine-coded year, else None."""
    src = _sources(inp).get(str(year))
    return src if machine_coded(src) else None


def _mark(inp: ReportInputs, year: object) -> str:
    return f"{year}{MARK}" if _machine(inp, year) else str(year)


def _mark_attrs(inp: ReportInputs, year: object) -> dict[str, str]:
    src = _machine(inp, year)
    return {"class": "machine-coded", "data-year": str(year),
            "data-coding-source": src} if src else {}


def _mark_caption(inp: ReportInputs, years: Sequence[str], caption: str) -> str:
    marked = [f"{y} by the {MACHINE_TAGS.get(_machine(inp, y), 'machine (several sources)')}"
              for y in years if _machine(inp, y)]
    if not marked:
        return caption
    return (f"{caption}. †: coded by a machine standing in for the two researchers: "
            f"{'; '.join(marked)} (see the note for the year)")


def _counts(inp: ReportInputs, year: str) -> dict[str, int]:
    cs = inp.coding_sources
    if cs is None or cs.empty or year not in set(cs["school_year"].astype(str)):
        return {}
    row = cs[cs["school_year"].astype(str) == year].iloc[0]
    return {k[2:]: int(row[k]) for k in row.index if k.startswith("n_") and not _missing(row[k])}


def _suggester_text(kinds: Sequence[str]) -> str:
    names = [SUGGESTERS[k] for k in kinds]
    model = " and the ".join(names) + (" models" if len(names) > 1 else " model")
    return (f"codes suggested by the {model} standing in for the two researchers; its "
            "measured agreement with humans: see coding.suggestion_quality")


def _source_notes(inp: ReportInputs) -> list[Block]:
    blocks: list[Block] = []
    for year, source in _sources(inp).items():
        attrs = {"data-year": year, "data-coding-source": source}
        if source == "keyword":
            text = (f"{year}: no human coding yet. The counts and quotes for this year come "
                    "from the keyword coder standing in for the two researchers; keywords "
                    "miss answers that match a code by meaning, so rates are likely lower "
                    "than human coding would give, and comparisons with human-coded years "
                    "mix two methods.")
            blocks.append(Para(text, "note keyword-standin", attrs))
        elif source in SUGGESTERS:
            n = _counts(inp, year)
            kinds = [k for k in SUGGESTERS if n.get(k, 0)] or [source]
            blocks.append(_suggested_note(year, kinds, n, attrs))
        elif source == "mixed":
            blocks.append(_mixed_note(inp, year, attrs))
        elif source == "none":
            blocks.append(Para(f"{year}: no final codes.", "note", {"data-year": year}))
        else:
            blocks.append(Para(f"{year}: codes agreed by two coders (or adjudicated).",
                               "note human-coded", attrs))
    return blocks


def _suggested_note(year: str, kinds: list[str], n: dict[str, int], attrs: dict[str, str]
                    ) -> Para:
    """A year no human coded, reported with suggested codes (one suggester or both)."""
    detail = ""
    if len(kinds) > 1:
        rows = ", ".join(f"{n[k]:,} {SUGGESTERS[k]}" for k in kinds)
        detail = (f" (final-code rows: {rows}; the zero-shot model covers the codes too rare "
                  "to train)")
    return Para(f"{year}: no human coding yet. The counts and quotes for this year are "
                f"{_suggester_text(kinds)}{detail}. Comparisons with human-coded years mix "
                "two methods.", "note suggestion-standin", attrs)


def _mixed_note(inp: ReportInputs, year: str, attrs: dict[str, str]) -> Para:
    n = _counts(inp, year)
    human = sum(n.get(k, 0) for k in ("agreed", "adjudicated", "unresolved"))
    suggested = [k for k in SUGGESTERS if n.get(k, 0)]
    keyword = n.get("keyword", 0)
    if not n:
        return Para(f"{year}: the codes of this year come from more than one coding source "
                    "(human coders and a machine standing in, or two suggesters); see "
                    "coding.final_codes.provenance.", "note machine-standin", attrs)
    if suggested and not human and not keyword:
        return _suggested_note(year, suggested, n, attrs)
    machine = ", ".join(f"{n[k]:,} {MACHINE_TAGS[k]}" for k in MACHINE_TAGS if n.get(k, 0))
    css = "note suggestion-standin" if suggested else "note keyword-standin"
    return Para(f"{year}: partly human-coded ({human:,} final-code rows); the rest of the "
                f"answers carry machine codes standing in for human codes ({machine}).",
                css, attrs)


def _quotes_for(quotes: pd.DataFrame, question: str, code_id: str) -> list[str]:
    q = quotes[(quotes["question_id"] == question) & (quotes["code_id"] == code_id)]
    q = q.sort_values("rank")
    return [f"“{r.quote}” ({r.school_year}, session "
            f"{'?' if _missing(r.session_number) else int(r.session_number)}"
            f"{'; ' + MACHINE_TAGS[r.provenance] if r.provenance in MACHINE_TAGS else ''})"
            for r in q.itertuples()]


def _findings_table(inp: ReportInputs, question: str, years: list[str]) -> Table:
    freq = inp.frequencies
    codes = freq[(freq["level"] == "code") & (freq["question_id"] == question)]
    used = codes.groupby(["framework", "dimension", "code_id"])["n_answers"].sum()
    used = used[used > 0].reset_index().rename(columns={"n_answers": "total"})
    wide = codes.pivot_table(index=["framework", "dimension", "code_id"],
                             columns="school_year", values=["n_answers", "rate_per_100"],
                             aggfunc="first")
    labels = codes.drop_duplicates("code_id").set_index("code_id")["label"]
    yoy = _yoy(inp, "code", question)
    pair = _yoy_pair(inp, years)
    first_last = f"{_mark(inp, pair[0])} → {_mark(inp, pair[1])}" if pair else ""
    headers = ["Framework", "Category", "Code"]
    col_attrs = {}
    for y in years:
        for col in (f"{_mark(inp, y)} answers", f"{_mark(inp, y)} per 100"):
            if _machine(inp, y):
                col_attrs[len(headers)] = _mark_attrs(inp, y)
            headers.append(col)
    if first_last:
        headers += [f"Change per 100 ({first_last}, 95% CI)", "p (BH-adjusted)"]
    headers.append("Supporting quotes")
    rows = []
    used = used.sort_values(["framework", "dimension", "total", "code_id"],
                            ascending=[True, True, False, True], key=_sort_key)
    for r in used.itertuples():
        key = (r.framework, r.dimension, r.code_id)
        row: list[object] = [_fw(r.framework), _dim(r.dimension), labels.get(r.code_id, "")]
        for y in years:
            row += [_int(wide.at[key, ("n_answers", y)]) if ("n_answers", y) in wide else "",
                    _f(wide.at[key, ("rate_per_100", y)]) if ("rate_per_100", y) in wide
                    else ""]
        if first_last:
            change = yoy.get(r.code_id)
            row += ["", ""] if change is None else [
                _ci(change.diff_per_100, change.diff_ci_low, change.diff_ci_high, 1),
                _p(change.p_adjusted)]
        row.append(_quotes_for(inp.quotes, question, r.code_id))
        rows.append(row)
    caption = _yoy_caption(inp, _mark_caption(
        inp, years, f"Codes applied to answers to “{inp.questions.get(question, question)}”"))
    return Table(headers, rows, "findings", {"data-question": question}, caption=caption,
                 col_attrs=col_attrs)


def _sort_key(col: pd.Series) -> pd.Series:
    return _order(col) if col.name in ("framework", "dimension") else col


def _yoy_pair(inp: ReportInputs, years: list[str]) -> tuple[str, str] | None:
    """The two years marts.year_over_year compares (by default like with like), else the
    first and the latest year; None with one year."""
    y = inp.year_over_year
    if y is not None and not y.empty:
        return str(y["year_a"].iloc[0]), str(y["year_b"].iloc[0])
    return (years[0], years[-1]) if len(years) > 1 else None


def _yoy_caption(inp: ReportInputs, caption: str) -> str:
    """The caption, plus the year-over-year note when the two years were coded differently."""
    y = inp.year_over_year
    if y is None or y.empty or "comparable" not in y.columns:
        return caption
    row = y.iloc[0]
    if bool(row["comparable"]) and _missing(row.get("note")):
        return caption
    note = row.get("note")
    return f"{caption}. Change {row['year_a']} → {row['year_b']}: {note}" if isinstance(
        note, str) and note else caption


def _yoy(inp: ReportInputs, level: str, question: str) -> dict:
    y = inp.year_over_year
    if y is None or y.empty:
        return {}
    y = y[(y["level"] == level) & (y["question_id"] == question)]
    key = "code_id" if level == "code" else "dimension"
    return {getattr(r, key): r for r in y.itertuples()}


def _dimension_table(inp: ReportInputs, question: str, years: list[str]) -> Table:
    freq = inp.frequencies
    dims = freq[(freq["level"] == "dimension") & (freq["question_id"] == question)]
    yoy = _yoy(inp, "dimension", question)
    headers = ["Framework", "Category", *[f"{_mark(inp, y)} answers (per 100)" for y in years]]
    col_attrs = {2 + i: _mark_attrs(inp, y) for i, y in enumerate(years) if _machine(inp, y)}
    pair = _yoy_pair(inp, years)
    if len(years) > 1:
        headers += [f"Change per 100 ({_mark(inp, pair[0])} → {_mark(inp, pair[1])}, 95% CI)",
                    "p (BH-adjusted)"]
    rows = []
    pairs = dims[["framework", "dimension"]].drop_duplicates()
    pairs = pairs.sort_values(["framework", "dimension"], key=_sort_key)
    for fw, dim in pairs.itertuples(index=False):
        g = dims[(dims["framework"] == fw) & (dims["dimension"] == dim)]
        g = g.set_index("school_year")
        row: list[object] = [_fw(fw), _dim(dim)]
        for y in years:
            row.append(f"{_int(g.at[y, 'n_answers'])} ({_f(g.at[y, 'rate_per_100'])})"
                       if y in g.index else "")
        if len(years) > 1:
            c = yoy.get(dim)
            row += ["", ""] if c is None else [
                _ci(c.diff_per_100, c.diff_ci_low, c.diff_ci_high, 1), _p(c.p_adjusted)]
        rows.append(row)
    caption = _yoy_caption(inp, _mark_caption(
        inp, years, "Answers with any code of the category (an answer counts once)"))
    return Table(headers, rows, "dimensions", {"data-question": question}, caption=caption,
                 col_attrs=col_attrs)


def _rates_chart(inp: ReportInputs, question: str, years: list[str]) -> Chart:
    freq = inp.frequencies
    codes = freq[(freq["level"] == "code") & (freq["question_id"] == question)]
    top = (codes.groupby("label")["rate_per_100"].max().sort_values(ascending=False)
           .loc[lambda s: s > 0].head(inp.top_codes))
    cats = list(top.index)
    shown = [_mark(inp, y) for y in years]
    values = {(r.label, _mark(inp, r.school_year)): r.rate_per_100 for r in codes.itertuples()
              if r.label in top.index}
    title = f"Code rates by school year: {inp.questions.get(question, question)}"
    chart = svg.grouped_bars(f"chart-rates-{question}", title, cats, shown, values)
    data = Table(["Code", *shown], [[c, *[_f(values.get((c, y))) for y in shown]]
                                    for c in cats], "chart-data",
                 col_attrs={1 + i: _mark_attrs(inp, y) for i, y in enumerate(years)
                            if _machine(inp, y)})
    return Chart(chart, data, _mark_caption(
        inp, years, f"Top {len(cats)} codes, per 100 substantive answers"))


def _session_labels(inp: ReportInputs, cols: list[tuple[str, object]]) -> list[str]:
    return [_session_label(y, s) + (MARK if _machine(inp, y) else "") for y, s in cols]


def _session_attrs(inp: ReportInputs, cols: list[tuple[str, object]]) -> dict[int, dict]:
    return {1 + i: _mark_attrs(inp, y) for i, (y, _) in enumerate(cols) if _machine(inp, y)}


def _session_columns(trends: pd.DataFrame) -> list[tuple[str, object]]:
    keys = trends[["school_year", "session_number"]].drop_duplicates()
    keys = keys.sort_values(["school_year", "session_number"], na_position="last")
    return [(y, s) for y, s in keys.itertuples(index=False)]


def _heatmap(inp: ReportInputs, question: str) -> Chart | None:
    t = inp.trends
    if t is None or t.empty:
        return None
    t = t[(t["level"] == "dimension") & (t["question_id"] == question)]
    cols = _session_columns(t)
    labels = _session_labels(inp, cols)
    shown = dict(zip(cols, labels, strict=True))
    rows, values = [], {}
    pairs = t[["framework", "dimension"]].drop_duplicates()
    for fw, dim in pairs.sort_values(["framework", "dimension"], key=_sort_key).itertuples(
            index=False):
        g = t[(t["framework"] == fw) & (t["dimension"] == dim)]
        name = _dim(dim)
        rows.append(name)
        for r in g.itertuples():
            values[(name, _session_key(shown, r))] = r.rate_per_100
    title = f"Categories by session: {inp.questions.get(question, question)}"
    chart = svg.heatmap(f"chart-heatmap-{question}", title, rows, labels, values)
    data = Table(["Category", *labels], [[r, *[_f(values.get((r, c))) for c in labels]]
                                         for r in rows], "chart-data",
                 col_attrs=_session_attrs(inp, cols))
    return Chart(chart, data, _mark_caption(
        inp, sorted({y for y, _ in cols}), "Answers with any code of the category, per 100 "
        "substantive answers, by school year and session"))


def _trend_chart(inp: ReportInputs, question: str) -> Chart | None:
    t = inp.trends
    if t is None or t.empty:
        return None
    t = t[(t["level"] == "code") & (t["question_id"] == question)]
    top = (t.groupby("label")["n_answers"].sum().sort_values(ascending=False)
           .loc[lambda s: s > 0].head(inp.trend_codes))
    cols = _session_columns(t)
    labels = _session_labels(inp, cols)
    shown = dict(zip(cols, labels, strict=True))
    series = {}
    for name in top.index:
        g = t[t["label"] == name]
        by = {_session_key(shown, r): r.rate_per_100 for r in g.itertuples()}
        series[name] = [by.get(lab) for lab in labels]
    title = f"Top codes across sessions: {inp.questions.get(question, question)}"
    chart = svg.line_chart(f"chart-trend-{question}", title, labels, series,
                           groups=[y for y, _ in cols])
    data = Table(["Code", *labels], [[n, *[_f(v) for v in vs]] for n, vs in series.items()],
                 "chart-data", col_attrs=_session_attrs(inp, cols))
    return Chart(chart, data, _mark_caption(
        inp, sorted({y for y, _ in cols}), f"The {len(series)} most frequent codes, per 100 "
        "substantive answers, by session (lines are not joined across school years)"))


def _question_section(inp: ReportInputs, question: str, years: list[str]) -> list[Block]:
    text = inp.questions.get(question, question)
    blocks: list[Block] = [Heading(f"“{text}”", 2, f"q-{question}")]
    blocks.append(_findings_table(inp, question, years))
    blocks.append(_dimension_table(inp, question, years))
    blocks.append(_rates_chart(inp, question, years))
    blocks += [c for c in (_heatmap(inp, question), _trend_chart(inp, question)) if c]
    return blocks


def _agreement(inp: ReportInputs) -> list[Block]:
    blocks: list[Block] = [Heading("Inter-coder agreement", 2, "agreement")]
    a = inp.agreement
    if a is None or a.empty:
        return [*blocks, Para("No human double coding yet: agreement cannot be computed.")]
    a = a[a["level"].isin(["framework", "overall"])].sort_values(
        ["coder_a", "coder_b", "framework"], key=_sort_key, na_position="last")
    rows = [[r.coder_a, r.coder_b, _fw(r.framework) or "All codes", _int(r.n_units),
             _f(r.prevalence, 3), _f(r.percent_agreement, 3),
             _ci(r.cohen_kappa, getattr(r, "cohen_kappa_ci_low", None),
                 getattr(r, "cohen_kappa_ci_high", None)),
             _ci(r.krippendorff_alpha, getattr(r, "krippendorff_alpha_ci_low", None),
                 getattr(r, "krippendorff_alpha_ci_high", None)),
             _ci(r.gwet_ac1, getattr(r, "gwet_ac1_ci_low", None),
                 getattr(r, "gwet_ac1_ci_high", None)),
             _f(r.pabak, 2)] for r in a.itertuples()]
    headers = ["Coder A", "Coder B", "Framework", "Units (answer x code)", "Prevalence",
               "% agreement", "Cohen's kappa [95% CI]", "Krippendorff's alpha [95% CI]",
               "Gwet's AC1 [95% CI]", "PABAK"]
    blocks.append(Table(headers, rows, "agreement",
                        caption="Agreement on code presence before reconciliation"))
    return blocks


def _keyword_quality(inp: ReportInputs) -> list[Block]:
    blocks: list[Block] = [Heading("Keyword coder against the human codes", 2, "keyword")]
    k = inp.keyword_quality
    if k is None or k.empty:
        return [*blocks, Para("No human codes yet: the keyword coder's precision and recall "
                              "cannot be measured.")]
    overall = k[k["code_id"].isna()]
    per_code = k[k["code_id"].notna() & ((k["tp"] + k["fp"] + k["fn"]) > 0)].copy()
    per_code["_support"] = per_code["tp"] + per_code["fn"]
    per_code = per_code.sort_values(["_support", "code_id"], ascending=[False, True])
    n = int(k["n_answers"].max())
    blocks.append(Para(f"Measured over the {n:,} answers that have human codes "
                       "(a true positive is an answer-code pair both applied)."))
    rows = [[_fw(r.framework) if not _missing(r.code_id) else "All codes", _dim(r.dimension),
             r.code_id if not _missing(r.code_id) else "", _int(r.tp), _int(r.fp), _int(r.fn),
             _f(r.precision, 2), _f(r.recall, 2), _f(r.f1, 2)]
            for r in pd.concat([overall, per_code]).itertuples()]
    headers = ["Framework", "Category", "Code", "TP", "FP", "FN", "Precision", "Recall", "F1"]
    blocks.append(Table(headers, rows, "keyword-quality"))
    return blocks


EVALUATIONS = {"stored": "stored suggestions (trained: leave-one-school-year-out)",
               "school_grouped_cv": "school-grouped cross-validation"}


def _suggestion_quality(inp: ReportInputs) -> list[Block]:
    q = inp.suggestion_quality
    if q is None or q.empty:
        return []
    q = q[(q["level"] == "dimension") & q["evaluation"].isin(list(EVALUATIONS))].copy()
    if q.empty:
        return []
    q["_e"] = q["evaluation"].map({e: i for i, e in enumerate(EVALUATIONS)})
    q = q.sort_values(["_e", "school_year", "question_id", "framework", "dimension"],
                      key=lambda c: _order(c) if c.name in ("framework", "dimension") else c)
    rows = [[EVALUATIONS[r.evaluation], "" if _missing(r.source) else str(r.source),
             "" if _missing(r.school_year) else r.school_year,
             "" if _missing(r.question_id) else r.question_id, _fw(r.framework),
             _dim(r.dimension), _int(r.n_answers), _f(r.precision, 2), _f(r.recall, 2),
             _f(r.f1, 2), _f(r.cohen_kappa, 2), _f(r.keyword_kappa, 2)]
            for r in q.itertuples()]
    headers = ["Evaluation", "Suggester", "School year", "Question", "Framework", "Category",
               "Answers", "Precision", "Recall", "F1", "Cohen's kappa", "Keyword coder's kappa"]
    return [Heading("Suggestions against the human codes", 2, "suggestions"),
            Para("How far the meaning-based suggestions (which stand in for the two "
                 "researchers in a year without human coding) agree with the human final "
                 "codes, per category, over the answers humans coded; the keyword coder's "
                 "kappa on the same answers beside it. From coding.suggestion_quality."),
            Table(headers, rows, "suggestion-quality")]


def _suppressed_view(inp: ReportInputs, frame: pd.DataFrame | None, key: str, css: str,
                     title: str, min_cell: int) -> list[Block]:
    if frame is None or frame.empty:
        return []
    f = frame[frame["level"] == "framework"]
    f = suppress_small_cells(f, ["n_answers", "n_substantive"], min_cell, ["rate_per_100"])
    f = f.sort_values([key, "school_year", "question_id", "framework"])
    rows = [[getattr(r, key), _mark(inp, r.school_year), r.question_id, _fw(r.framework),
             _int(r.n_answers), _int(r.n_substantive), _f(r.rate_per_100)]
            for r in f.itertuples()]
    row_attrs = [_mark_attrs(inp, y) for y in f["school_year"]]
    headers = [key, "School year", "Question", "Framework", "Coded answers",
               "Substantive answers", "Per 100"]
    return [Heading(title, 3, css),
            Para(f"Counts from 1 to {min_cell - 1} are shown as <{min_cell}, and their "
                 "rates are left blank.", "note"),
            Table(headers, rows, css, row_attrs=row_attrs,
                  caption=_mark_caption(inp, sorted(set(f["school_year"].astype(str))),
                                        "Framework level") if row_attrs and any(row_attrs)
                  else None)]


def _data_quality(inp: ReportInputs) -> list[Block]:
    blocks: list[Block] = [Heading("Data quality and provenance", 2, "data-quality")]
    files = inp.export_files
    if files is not None and not files.empty:
        rows = [[r.school_year, r.file_name, str(r.file_sha256 or "")[:12], r.reader,
                 r.encoding, _int(r.n_records), r.status]
                for r in files.sort_values(["school_year", "file_name"]).itertuples()]
        blocks.append(Table(["School year", "Export file", "sha256 (prefix)", "Reader",
                             "Encoding", "Records", "Status"], rows, "dq-files",
                            caption="Export files that fed this report"))
    q = inp.quarantine
    if q is not None:
        counts = (q.groupby(["school_year", "stage", "level", "reason"]).size()
                  .rename("rows").reset_index() if len(q) else pd.DataFrame())
        rows = [[r.school_year, r.stage, r.level, r.reason, _int(r.rows)]
                for r in counts.itertuples()] or [["", "", "", "nothing quarantined", "0"]]
        blocks.append(Table(["School year", "Stage", "Level", "Reason", "Rows"], rows,
                            "dq-quarantine", caption="Rows quarantined, by reason"))
    red = inp.redactions
    if red is not None:
        rows = [[r.school_year, _int(r.n)] for r in red.sort_values("school_year").itertuples()]
        blocks.append(Table(["School year", "Names redacted"], rows, "dq-redactions",
                            caption="Redactions made (counts only)"))
    cb = inp.codebook_codes
    if cb is not None and not cb.empty:
        v = cb.groupby(["framework", "codebook_version"]).size().rename("n").reset_index()
        v = v.sort_values(["framework", "codebook_version"], key=_sort_key)
        rows = [[_fw(r.framework), r.codebook_version, _int(r.n)] for r in v.itertuples()]
        blocks.append(Table(["Framework", "Codebook version", "Codes"], rows, "dq-codebooks",
                            caption="Codebook versions"))
    return blocks


def build_blocks(inp: ReportInputs) -> list[Block]:
    years = _years(inp)
    blocks: list[Block] = [Heading(inp.title, 1)]
    meta = f"School years: {', '.join(years) or 'none'}."
    if inp.generated_at:
        meta += f" Generated {inp.generated_at}."
    blocks.append(Para(meta, "meta"))
    blocks.append(Para("A code counts for an answer when both coders agreed on it or it was "
                       "adjudicated (or, in a year without human coding, a machine standing in "
                       "applied it: the trained or zero-shot suggester, or the keyword coder; "
                       "such years are marked † and have a note). Rates are per 100 "
                       "substantive answers to the question in "
                       "that year; blank and 'N/A'-style answers are left out. Quotes are "
                       "redacted answer text, chosen by a fixed rule (docs/report.md)."))
    blocks += _source_notes(inp)
    questions = [q for q in inp.questions if q in set(inp.frequencies["question_id"])]
    questions += sorted(set(inp.frequencies["question_id"].dropna()) - set(questions))
    for question in questions:
        blocks += _question_section(inp, question, years)
    blocks += _agreement(inp)
    blocks += _keyword_quality(inp)
    blocks += _suggestion_quality(inp)
    views = (_suppressed_view(inp, inp.by_school, "school_id", "by-school", "By school",
                              inp.min_cell)
             + _suppressed_view(inp, inp.by_coach, "coach_id", "by-coach", "By coach",
                                inp.min_cell))
    if views:
        blocks += [Heading("By school and coach (small cells suppressed)", 2, "views"), *views]
    blocks += _data_quality(inp)
    return blocks


# ----------------------------------------------------------------------------- rendering

CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3}caption{text-align:left;font-weight:600;padding:4px 0}
table.findings td:last-child{min-width:24em}
td ul{margin:0;padding-left:1.2em}td li{margin-bottom:.3em}
.note{background:#fff8e1;border-left:4px solid #e69f00;padding:.5em .8em}
.human-coded{background:#eef6ee;border-left-color:#009e73}
.machine-coded{background:#fff8e1}
figure{margin:1.5em 0}figcaption{font-size:.85em;color:#555}
svg.chart{max-width:100%;height:auto;display:block}
details{margin:.5em 0}
"""


def _cell_html(cell: object) -> str:
    if isinstance(cell, list):
        return "<ul>" + "".join(f"<li>{escape(str(c))}</li>" for c in cell) + "</ul>"
    return escape("" if _missing(cell) else str(cell))


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {escape(k)}="{escape(v)}"' for k, v in attrs.items())


def _table_html(t: Table) -> str:
    def col(j: int) -> str:
        return _attrs(t.col_attrs.get(j, {}))

    head = "".join(f"<th{col(j)}>{escape(h)}</th>" for j, h in enumerate(t.headers))
    body = "".join(
        f"<tr{_attrs(t.row_attrs[i] if i < len(t.row_attrs) else {})}>"
        + "".join(f"<td{col(j)}>{_cell_html(c)}</td>" for j, c in enumerate(row)) + "</tr>"
        for i, row in enumerate(t.rows))
    cap = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return (f'<table class="{escape(t.css_class)}"{_attrs(t.attrs)}>{cap}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _html_block(b: Block) -> str:
    if isinstance(b, Heading):
        anchor = f' id="{escape(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{anchor}>{escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = f' class="{escape(b.css_class)}"' if b.css_class else ""
        return f"<p{cls}{_attrs(b.attrs)}>{escape(b.text)}</p>"
    if isinstance(b, Table):
        return _table_html(b)
    return (f"<figure>{b.svg}<figcaption>{escape(b.caption)}</figcaption>"
            f"<details><summary>Chart data</summary>{_table_html(b.data)}</details></figure>")


def _md_escape(s: str) -> str:
    s = re.sub(r"\s+", " ", s).replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\|*_`\[\]#])", r"\\\1", s)


def _cell_md(cell: object) -> str:
    if isinstance(cell, list):
        return "<br>".join(f"{i}. {_md_escape(str(c))}" for i, c in enumerate(cell, 1))
    return _md_escape("" if _missing(cell) else str(cell))


def _table_md(t: Table) -> str:
    lines = [f"*{_md_escape(t.caption)}*", ""] if t.caption else []
    lines.append("| " + " | ".join(_md_escape(h) for h in t.headers) + " |")
    lines.append("|" + "---|" * len(t.headers))
    lines += ["| " + " | ".join(_cell_md(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def _md_block(b: Block) -> str:
    if isinstance(b, Heading):
        return "#" * b.level + " " + _md_escape(b.text)
    if isinstance(b, Para):
        prefix = "> **Note:** " if b.css_class and "note" in b.css_class else ""
        return prefix + _md_escape(b.text)
    if isinstance(b, Table):
        return _table_md(b)
    return f"**Chart:** {_md_escape(b.caption)} (drawn in findings.html)\n\n{_table_md(b.data)}"


def render_blocks(blocks: Sequence[Block], title: str) -> tuple[str, str]:
    body = "\n".join(_html_block(b) for b in blocks)
    html = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")
    markdown = "\n\n".join(_md_block(b) for b in blocks) + "\n"
    return html, markdown


def render_report(inputs: ReportInputs) -> tuple[str, str]:
    """(html, markdown): the findings report from the marts and the coding/raw summaries."""
    return render_blocks(build_blocks(inputs), inputs.title)


def write_report(inputs: ReportInputs, directory: str | Path) -> tuple[Path, Path]:
    """Render and write findings.html and findings.md into `directory` (created if needed);
    returns their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    html, markdown = render_report(inputs)
    html_path, md_path = out / "findings.html", out / "findings.md"
    atomic_write_text(html_path, html)
    atomic_write_text(md_path, markdown)
    return html_path, md_path
