"""Each question's detail: the study's table (categories largest first, codes by count within
each category, quotes collapsed per code, codes that fire together shown once with their
aliases) and the three charts (code rates by year, categories by session, top codes by
session)."""

from __future__ import annotations

import pandas as pd

from pipeline.core.report import svg
from pipeline.core.report.blocks import (
    Block,
    Chart,
    GroupRow,
    Heading,
    Labelled,
    Quotes,
    Table,
    dim_label,
    fmt_ci,
    fmt_f,
    fmt_int,
    fmt_p,
    fw_label,
    missing,
    paper_order,
    short_year,
)
from pipeline.core.report.inputs import Prepared
from pipeline.core.report.years import MACHINE_TAGS, MARK


def question_text(prep: Prepared, question: str) -> str:
    return prep.inp.questions.get(question, question)


def change_header(prep: Prepared) -> str:
    a, b = prep.pair
    return f"Change per 100 ({prep.years.mark(a)} → {prep.years.mark(b)}, 95% CI)"


def comparison_caption(prep: Prepared, caption: str) -> str:
    note = prep.yoy_note
    if not note or prep.pair is None:
        return caption
    return f"{caption}. Change {prep.pair[0]} → {prep.pair[1]}: {note}"


def category_order(prep: Prepared, question: str, with_zeros: bool = False
                   ) -> list[tuple[str, str]]:
    """(framework, dimension) of the question, the most answers (all years) first; the
    paper's order breaks ties. Categories no answer had are left out unless `with_zeros`."""
    freq = prep.inp.frequencies
    dims = freq[(freq["level"] == "dimension") & (freq["question_id"] == question)]
    total = dims.groupby(["framework", "dimension"])["n_answers"].sum().reset_index()
    if not with_zeros:
        total = total[total["n_answers"] > 0]
    total["_rank"] = paper_order(total["framework"]) + paper_order(total["dimension"])
    total = total.sort_values(["n_answers", "_rank"], ascending=[False, True])
    return [(f, d) for f, d in total[["framework", "dimension"]].itertuples(index=False)]


def category_anchor(question: str, dimension: str) -> str:
    return f"q-{question}-{dimension}"


def _quotes_for(prep: Prepared, question: str, code_id: str) -> Quotes:
    quotes = prep.inp.quotes
    q = quotes[(quotes["question_id"] == question) & (quotes["code_id"] == code_id)]
    q = q.sort_values("rank")
    items = [f"“{r.quote}” ({prep.years.mark(r.school_year)}, session "
             f"{'?' if missing(r.session_number) else int(r.session_number)}"
             f"{'; ' + MACHINE_TAGS[r.provenance] if r.provenance in MACHINE_TAGS else ''})"
             for r in q.itertuples()]
    n = len(items)
    return Quotes(items, f"{n} quote{'s' if n != 1 else ''}" if n else "")


def aliases(prep: Prepared, question: str, category_of: dict[str, tuple[str, str]]
            ) -> tuple[dict[str, str], set[str]]:
    """(code shown -> the line under its label, codes not shown in a row of their own).

    From `co_firing` (codebook.co_firing_groups over the final codes, per question: codes
    applied to exactly the same answers). Within a category such codes make one row, named
    after the first in codebook order, its aliases under it; codes of another category keep
    their row and both say which codes fire with them."""
    cf = prep.inp.co_firing
    if cf is None or cf.empty:
        return {}, set()
    cf = cf[(cf["question_id"] == question) & cf["code_id"].isin(list(category_of))]
    rank = _codebook_rank(prep)
    labels = _labels(prep, question)
    notes: dict[str, str] = {}
    hidden: set[str] = set()
    for _, g in cf.groupby("group"):
        codes = sorted(g["code_id"], key=lambda c: (rank.get(c, 10**6), c))
        cats: dict[tuple[str, str], list[str]] = {}
        for c in codes:
            cats.setdefault(category_of[c], []).append(c)
        for cat, members in cats.items():
            first, rest = members[0], members[1:]
            hidden.update(rest)
            parts = []
            if rest:
                parts.append("same answers as: " + ", ".join(labels.get(c, c) for c in rest))
            others = [f"{labels.get(c, c)} ({dim_label(k[1])})"
                      for k, ms in cats.items() if k != cat for c in ms]
            if others:
                parts.append("fires on the same answers as: " + ", ".join(others))
            if parts:
                notes[first] = "; ".join(parts)
    return notes, hidden


def _labels(prep: Prepared, question: str) -> dict[str, str]:
    freq = prep.inp.frequencies
    codes = freq[(freq["level"] == "code") & (freq["question_id"] == question)]
    return dict(codes.drop_duplicates("code_id")[["code_id", "label"]].itertuples(index=False))


def _codebook_rank(prep: Prepared) -> dict[str, int]:
    cb = prep.inp.codebook_codes
    if cb is None or cb.empty:
        return {}
    return {c: i for i, c in enumerate(cb["code_id"])}


def findings_table(prep: Prepared, question: str) -> Table:
    inp, years = prep.inp, prep.years
    freq = inp.frequencies
    codes = freq[(freq["level"] == "code") & (freq["question_id"] == question)]
    used = codes.groupby(["framework", "dimension", "code_id"])["n_answers"].sum()
    used = used[used > 0].reset_index().rename(columns={"n_answers": "total"})
    wide = codes.pivot_table(index="code_id", columns="school_year",
                             values=["n_answers", "rate_per_100"], aggfunc="first")
    labels = codes.drop_duplicates("code_id").set_index("code_id")["label"]
    dims = freq[(freq["level"] == "dimension") & (freq["question_id"] == question)]
    yoy = prep.yoy_rows("code", question)
    category_of = {r.code_id: (r.framework, r.dimension) for r in used.itertuples()}
    notes, hidden = aliases(prep, question, category_of)
    headers, col_attrs = ["Code"], {}
    for y in years.all:
        for col in (f"{years.mark(y)} answers", f"{years.mark(y)} per 100"):
            if years.machine(y):
                col_attrs[len(headers)] = years.attrs(y)
            headers.append(col)
    if prep.pair:
        headers += [change_header(prep), "p (BH-adjusted)"]
    headers.append("Supporting quotes")
    rows: list[list[object] | GroupRow] = []
    row_attrs: list[dict[str, str]] = []
    for fw, dim in category_order(prep, question):
        in_cat = used[(used["framework"] == fw) & (used["dimension"] == dim)]
        in_cat = in_cat.sort_values(["total", "code_id"], ascending=[False, True])
        if in_cat.empty:
            continue
        d = dims[dims["dimension"] == dim].set_index("school_year")
        counts = "; ".join(f"{years.mark(y)}: {fmt_int(d.at[y, 'n_answers'])}"
                           for y in years.all if y in d.index)
        rows.append(GroupRow(f"{dim_label(dim)} · {fw_label(fw)} · answers with any of its "
                             f"codes: {counts}", {"id": category_anchor(question, dim),
                                                  "data-dimension": str(dim)}))
        row_attrs.append({"class": "category"})
        for r in in_cat.itertuples():
            if r.code_id in hidden:
                continue
            row: list[object] = [Labelled(labels.get(r.code_id, r.code_id),
                                          notes.get(r.code_id, ""), "aliases")]
            for y in years.all:
                row += [fmt_int(wide.at[r.code_id, ("n_answers", y)])
                        if ("n_answers", y) in wide else "",
                        fmt_f(wide.at[r.code_id, ("rate_per_100", y)])
                        if ("rate_per_100", y) in wide else ""]
            if prep.pair:
                change = yoy.get(r.code_id)
                row += ["", ""] if change is None else [
                    fmt_ci(change.diff_per_100, change.diff_ci_low, change.diff_ci_high, 1),
                    fmt_p(change.p_adjusted)]
            row.append(_quotes_for(prep, question, r.code_id))
            rows.append(row)
            row_attrs.append({"data-code": str(r.code_id)})
    caption = comparison_caption(prep, years.caption(
        years.all, f"Codes applied to answers to “{question_text(prep, question)}”, "
        "the largest category first and, within it, the most frequent code first"))
    return Table(headers, rows, "findings", {"data-question": question}, caption=caption,
                 col_attrs=col_attrs, row_attrs=row_attrs)


def rates_chart(prep: Prepared, question: str) -> Chart:
    inp, years = prep.inp, prep.years
    freq = inp.frequencies
    codes = freq[(freq["level"] == "code") & (freq["question_id"] == question)]
    top = (codes.groupby("label")["rate_per_100"].max().sort_values(ascending=False)
           .loc[lambda s: s > 0].head(inp.top_codes))
    cats = list(top.index)
    shown = [years.mark(y) for y in years.all]
    values = {(r.label, years.mark(r.school_year)): r.rate_per_100
              for r in codes.itertuples() if r.label in top.index}
    title = f"Code rates by school year: {question_text(prep, question)}"
    chart = svg.grouped_bars(f"chart-rates-{question}", title, cats, shown, values)
    data = Table(["Code", *shown], [[c, *[fmt_f(values.get((c, y))) for y in shown]]
                                    for c in cats], "chart-data",
                 col_attrs={1 + i: years.attrs(y) for i, y in enumerate(years.all)
                            if years.machine(y)})
    return Chart(chart, data, years.caption(
        years.all, f"Top {len(cats)} codes, per 100 substantive answers"))


def _session_columns(trends: pd.DataFrame) -> list[tuple[str, object]]:
    keys = trends[["school_year", "session_number"]].drop_duplicates()
    keys = keys.sort_values(["school_year", "session_number"], na_position="last")
    return [(y, s) for y, s in keys.itertuples(index=False)]


def _session_labels(prep: Prepared, cols: list[tuple[str, object]]) -> list[str]:
    return [f"{short_year(y)} S{'?' if missing(s) else int(s)}"
            + (MARK if prep.years.machine(y) else "") for y, s in cols]


def _session_attrs(prep: Prepared, cols: list[tuple[str, object]]) -> dict[int, dict]:
    return {1 + i: prep.years.attrs(y) for i, (y, _) in enumerate(cols)
            if prep.years.machine(y)}


def _by_session(frame: pd.DataFrame, cols: list[tuple[str, object]], labels: list[str]
                ) -> dict[str, float]:
    """label of the (school year, session) column -> rate, for the rows of one series."""
    index = {(y, None if missing(s) else int(s)): lab
             for (y, s), lab in zip(cols, labels, strict=True)}
    return {index[(r.school_year, None if missing(r.session_number) else int(r.session_number))]:
            r.rate_per_100 for r in frame.itertuples()}


def heatmap(prep: Prepared, question: str) -> Chart | None:
    t = prep.inp.trends
    if t is None or t.empty:
        return None
    t = t[(t["level"] == "dimension") & (t["question_id"] == question)]
    cols = _session_columns(t)
    labels = _session_labels(prep, cols)
    rows, values = [], {}
    for _, dim in category_order(prep, question, with_zeros=True):
        name = dim_label(dim)
        rows.append(name)
        for lab, v in _by_session(t[t["dimension"] == dim], cols, labels).items():
            values[(name, lab)] = v
    title = f"Categories by session: {question_text(prep, question)}"
    chart = svg.heatmap(f"chart-heatmap-{question}", title, rows, labels, values)
    data = Table(["Category", *labels], [[r, *[fmt_f(values.get((r, c))) for c in labels]]
                                         for r in rows], "chart-data",
                 col_attrs=_session_attrs(prep, cols))
    return Chart(chart, data, prep.years.caption(
        sorted({y for y, _ in cols}), "Answers with any code of the category, per 100 "
        "substantive answers, by school year and session"))


def trend_chart(prep: Prepared, question: str) -> Chart | None:
    t = prep.inp.trends
    if t is None or t.empty:
        return None
    t = t[(t["level"] == "code") & (t["question_id"] == question)]
    top = (t.groupby("label")["n_answers"].sum().sort_values(ascending=False)
           .loc[lambda s: s > 0].head(prep.inp.trend_codes))
    cols = _session_columns(t)
    labels = _session_labels(prep, cols)
    series = {}
    for name in top.index:
        by = _by_session(t[t["label"] == name], cols, labels)
        series[name] = [by.get(lab) for lab in labels]
    title = f"Top codes across sessions: {question_text(prep, question)}"
    chart = svg.line_chart(f"chart-trend-{question}", title, labels, series,
                           groups=[y for y, _ in cols])
    data = Table(["Code", *labels], [[n, *[fmt_f(v) for v in vs]] for n, vs in series.items()],
                 "chart-data", col_attrs=_session_attrs(prep, cols))
    return Chart(chart, data, prep.years.caption(
        sorted({y for y, _ in cols}), f"The {len(series)} most frequent codes, per 100 "
        "substantive answers, by session (lines are not joined across school years)"))


def question_blocks(prep: Prepared, question: str) -> list[Block]:
    blocks: list[Block] = [findings_table(prep, question),
                           Heading("Charts", 3, f"q-{question}-charts"),
                           rates_chart(prep, question)]
    blocks += [c for c in (heatmap(prep, question), trend_chart(prep, question)) if c]
    return blocks
