"""The summary that opens the report: per question, the categories and the top codes by school
year in one small table and one chart, and the headline change between the compared years
with its 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.core.report import svg
from pipeline.core.report.blocks import (
    Chart,
    GroupRow,
    Para,
    Table,
    dim_label,
    fmt_ci,
    fmt_f,
    fmt_int,
    fmt_p,
    missing,
)
from pipeline.core.report.inputs import Prepared
from pipeline.core.report.questions import (
    category_order,
    change_header,
    comparison_caption,
    question_text,
)

ALPHA = 0.05   # a change is called a change when its BH-adjusted p is below this


@dataclass
class QuestionSummary:
    question: str
    text: str
    anchor: str
    headline: Para
    table: Table
    chart: Chart


def _cell(frame: pd.DataFrame, year: str) -> str:
    if year not in frame.index:
        return ""
    return f"{fmt_int(frame.at[year, 'n_answers'])} ({fmt_f(frame.at[year, 'rate_per_100'])})"


def headline(prep: Prepared, question: str) -> Para:
    """The category whose rate changed most surely between the compared years (the smallest
    adjusted p, then the largest difference), said in one sentence with its interval."""
    attrs = {"data-question": question}
    if prep.pair is None:
        return Para("One school year only: no change to report.", "headline", attrs)
    a, b = (prep.years.mark(y) for y in prep.pair)
    rows = [r for r in prep.yoy_rows("dimension", question).values()
            if not missing(r.diff_per_100)]
    if not rows:
        return Para(f"No category was coded in {a} or {b}.", "headline", attrs)

    def key(r) -> tuple[float, float]:
        p = 1.0 if missing(r.p_adjusted) else float(r.p_adjusted)
        return (p, -abs(float(r.diff_per_100)))

    r = min(rows, key=key)
    sure = not missing(r.p_adjusted) and float(r.p_adjusted) < ALPHA
    verb = "rose" if r.diff_per_100 > 0 else "fell" if r.diff_per_100 < 0 else "stayed"
    change = (f"{dim_label(r.dimension)} {verb} from {fmt_f(r.rate_a)} to {fmt_f(r.rate_b)} "
              f"per 100 answers ({float(r.diff_per_100):+.1f} points, 95% CI "
              f"{fmt_f(r.diff_ci_low)} to {fmt_f(r.diff_ci_high)}; BH-adjusted p "
              f"{fmt_p(r.p_adjusted) or 'n/a'})")
    if sure:
        text = f"Headline change, {a} → {b}: {change}."
    else:
        text = (f"No category changed beyond chance between {a} and {b} (every BH-adjusted "
                f"p ≥ {ALPHA}); the largest change: {change}.")
    note = prep.yoy_note
    if note:
        text += f" Note: {note}."
    attrs["data-year-a"], attrs["data-year-b"] = prep.pair
    return Para(text, "headline", attrs)


def summary_table(prep: Prepared, question: str) -> Table:
    years = prep.years
    freq = prep.inp.frequencies
    here = freq[freq["question_id"] == question]
    dims, codes = here[here["level"] == "dimension"], here[here["level"] == "code"]
    headers = ["Category or code", *[f"{years.mark(y)} answers (per 100)" for y in years.all]]
    col_attrs = {1 + i: years.attrs(y) for i, y in enumerate(years.all) if years.machine(y)}
    if prep.pair:
        headers += [change_header(prep), "p (BH-adjusted)"]
    rows: list[list[object] | GroupRow] = [GroupRow("Categories")]
    row_attrs: list[dict[str, str]] = [{"class": "group"}]

    def change(r) -> list[str]:
        if not prep.pair:
            return []
        if r is None:
            return ["", ""]
        return [fmt_ci(r.diff_per_100, r.diff_ci_low, r.diff_ci_high, 1), fmt_p(r.p_adjusted)]

    dim_yoy = prep.yoy_rows("dimension", question)
    for _, dim in category_order(prep, question):
        g = dims[dims["dimension"] == dim].set_index("school_year")
        rows.append([dim_label(dim), *[_cell(g, y) for y in years.all],
                     *change(dim_yoy.get(dim))])
        row_attrs.append({"class": "category", "data-dimension": str(dim)})
    # the most frequent codes of the compared years (of all years without a pair)
    basis = list(prep.pair or years.all)
    top = (codes[codes["school_year"].isin(basis)].groupby("code_id")["n_answers"].sum()
           .loc[lambda s: s > 0].reset_index()
           .sort_values(["n_answers", "code_id"], ascending=[False, True]))
    top = list(top["code_id"].head(prep.inp.summary_codes))
    if top:
        rows.append(GroupRow(f"Top {len(top)} codes"))
        row_attrs.append({"class": "group"})
    code_yoy = prep.yoy_rows("code", question)
    for code in top:
        g = codes[codes["code_id"] == code].set_index("school_year")
        label = str(g["label"].iloc[0]) if len(g) else code
        rows.append([label, *[_cell(g, y) for y in years.all], *change(code_yoy.get(code))])
        row_attrs.append({"class": "code", "data-code": str(code)})
    caption = comparison_caption(prep, years.caption(
        years.all, f"“{question_text(prep, question)}”: answers coded and rate per 100 "
        "substantive answers, by school year"))
    return Table(headers, rows, "summary", {"data-question": question}, caption=caption,
                 col_attrs=col_attrs, row_attrs=row_attrs)


def summary_chart(prep: Prepared, question: str) -> Chart:
    years = prep.years
    freq = prep.inp.frequencies
    dims = freq[(freq["level"] == "dimension") & (freq["question_id"] == question)]
    cats = [dim_label(d) for _, d in category_order(prep, question)]
    shown = [years.mark(y) for y in years.all]
    values = {(dim_label(r.dimension), years.mark(r.school_year)): r.rate_per_100
              for r in dims.itertuples()}
    title = f"Categories by school year: {question_text(prep, question)}"
    chart = svg.grouped_bars(f"chart-summary-{question}", title, cats, shown, values)
    data = Table(["Category", *shown], [[c, *[fmt_f(values.get((c, y))) for y in shown]]
                                        for c in cats], "chart-data",
                 col_attrs={1 + i: years.attrs(y) for i, y in enumerate(years.all)
                            if years.machine(y)})
    return Chart(chart, data, years.caption(
        years.all, "Answers with any code of the category, per 100 substantive answers"))


def question_summaries(prep: Prepared) -> list[QuestionSummary]:
    return [QuestionSummary(q, question_text(prep, q), f"summary-{q}", headline(prep, q),
                            summary_table(prep, q), summary_chart(prep, q))
            for q in prep.questions]
