"""The sections after the questions: how far the coders agreed (per framework, and per school
year and question), how the keyword coder and the suggestions compare with the human codes,
the per-school and per-coach views (small cells suppressed) and data quality."""

from __future__ import annotations

import pandas as pd

from pipeline.core.marts.marts import suppress_small_cells
from pipeline.core.report.blocks import (
    Block,
    Heading,
    Para,
    Table,
    dim_label,
    fmt_ci,
    fmt_f,
    fmt_int,
    fw_label,
    missing,
    paper_order,
    sort_key,
)
from pipeline.core.report.inputs import Prepared

ALL_YEARS, ALL_QUESTIONS = "All years", "All questions"
STATS_HEADERS = ["% agreement", "Cohen's kappa [95% CI]", "Krippendorff's alpha [95% CI]",
                 "Gwet's AC1 [95% CI]"]


def _stats(r) -> list[str]:
    return [fmt_f(r.percent_agreement, 3),
            fmt_ci(r.cohen_kappa, getattr(r, "cohen_kappa_ci_low", None),
                   getattr(r, "cohen_kappa_ci_high", None)),
            fmt_ci(r.krippendorff_alpha, getattr(r, "krippendorff_alpha_ci_low", None),
                   getattr(r, "krippendorff_alpha_ci_high", None)),
            fmt_ci(r.gwet_ac1, getattr(r, "gwet_ac1_ci_low", None),
                   getattr(r, "gwet_ac1_ci_high", None))]


def _year_text(prep: Prepared, year: object) -> str:
    return ALL_YEARS if missing(year) else prep.years.mark(year)


def agreement(prep: Prepared) -> list[Block]:
    a = prep.inp.agreement
    if a is None or a.empty:
        return [Para("No human double coding yet: agreement cannot be computed.")]
    f = a[a["level"].isin(["framework", "overall"])].copy()
    f["_year"] = f["school_year"].fillna("~")   # pooled rows after the years
    f = f.sort_values(["_year", "coder_a", "coder_b", "framework"], key=sort_key,
                      na_position="last")
    rows = [[_year_text(prep, r.school_year), r.coder_a, r.coder_b,
             fw_label(r.framework) or "All codes", fmt_int(r.n_units), fmt_f(r.prevalence, 3),
             *_stats(r), fmt_f(r.pabak, 2)] for r in f.itertuples()]
    headers = ["School year", "Coder A", "Coder B", "Framework", "Units (answer x code)",
               "Prevalence", *STATS_HEADERS, "PABAK"]
    blocks: list[Block] = [Table(headers, rows, "agreement",
                                 caption="Agreement on code presence before reconciliation, "
                                 "per framework and over all codes")]
    blocks += agreement_by_year(prep)
    return blocks


def agreement_by_year(prep: Prepared) -> list[Block]:
    """Agreement per school year and question, from the rows coding.agreement holds for them:
    level `question` with a school year (a year's partition), `school_year` (all questions of
    a year) and `question` without one (a question over all years). A year with no human
    double coding gets a marked row saying so."""
    a = prep.inp.agreement
    years, questions = prep.years, prep.questions
    picked = []
    for r in a.itertuples():
        if r.level == "question" and not missing(r.question_id):
            picked.append((r.school_year, r.question_id, r))
        elif r.level == "school_year" and not missing(r.school_year):
            picked.append((r.school_year, None, r))
        elif r.level == "overall" and not missing(r.school_year):
            picked.append((r.school_year, None, r))
    seen: set[tuple] = set()
    rows: list[tuple] = []
    for year, question, r in picked:
        key = (None if missing(year) else str(year), question, r.coder_a, r.coder_b)
        if key not in seen:   # a year's `school_year` row and its `overall` row are the same
            seen.add(key)
            rows.append((*key, r))
    covered = {y for y, *_ in rows if y is not None}
    for y in years.all:
        if y not in covered:
            rows.append((y, None, "", "", None))
    qrank = {q: i for i, q in enumerate(questions)}
    rows.sort(key=lambda t: (t[0] is None, t[0] or "", t[1] is None, qrank.get(t[1], 99),
                             t[1] or "", str(t[2]), str(t[3])))
    out, row_attrs = [], []
    for year, question, coder_a, coder_b, r in rows:
        qtext = ALL_QUESTIONS if question is None else question
        if r is None:
            out.append([_year_text(prep, year), qtext, "no human double coding", "", "", "",
                        "", "", ""])
        else:
            out.append([_year_text(prep, year), qtext, coder_a, coder_b,
                        fmt_int(r.n_answers), *_stats(r)])
        row_attrs.append(years.attrs(year) if not missing(year) else {})
    headers = ["School year", "Question", "Coder A", "Coder B", "Answers", *STATS_HEADERS]
    caption = years.caption([y for y in years.all if years.machine(y)],
                            "Agreement per school year and question (units: every code on "
                            "each answer both coders coded)")
    return [Heading("Per school year and question", 3, "agreement-by-year"),
            Table(headers, out, "agreement-by-year", caption=caption, row_attrs=row_attrs)]


def keyword_quality(prep: Prepared) -> list[Block]:
    k = prep.inp.keyword_quality
    if k is None or k.empty:
        return [Para("No human codes yet: the keyword coder's precision and recall "
                     "cannot be measured.")]
    overall = k[k["code_id"].isna()]
    per_code = k[k["code_id"].notna() & ((k["tp"] + k["fp"] + k["fn"]) > 0)].copy()
    per_code["_support"] = per_code["tp"] + per_code["fn"]
    per_code = per_code.sort_values(["_support", "code_id"], ascending=[False, True])
    n = int(k["n_answers"].max())
    rows = [[fw_label(r.framework) if not missing(r.code_id) else "All codes",
             dim_label(r.dimension), r.code_id if not missing(r.code_id) else "",
             fmt_int(r.tp), fmt_int(r.fp), fmt_int(r.fn), fmt_f(r.precision, 2),
             fmt_f(r.recall, 2), fmt_f(r.f1, 2)]
            for r in pd.concat([overall, per_code]).itertuples()]
    headers = ["Framework", "Category", "Code", "TP", "FP", "FN", "Precision", "Recall", "F1"]
    return [Para(f"Measured over the {n:,} answers that have human codes "
                 "(a true positive is an answer-code pair both applied)."),
            Table(headers, rows, "keyword-quality")]


EVALUATIONS = {"stored": "stored suggestions (trained: leave-one-school-year-out)",
               "school_grouped_cv": "school-grouped cross-validation within the year"}


def suggestion_quality(prep: Prepared) -> list[Block]:
    q = prep.inp.suggestion_quality
    if q is None or q.empty:
        return []
    q = q[(q["level"] == "dimension") & q["evaluation"].isin(list(EVALUATIONS))].copy()
    if q.empty:
        return []
    q["_e"] = q["evaluation"].map({e: i for i, e in enumerate(EVALUATIONS)})
    q = q.sort_values(["_e", "school_year", "question_id", "framework", "dimension"],
                      key=lambda c: paper_order(c) if c.name in ("framework", "dimension")
                      else c)
    rows = [[EVALUATIONS[r.evaluation], "" if missing(r.source) else str(r.source),
             "" if missing(r.school_year) else prep.years.mark(r.school_year),
             "" if missing(r.question_id) else r.question_id, fw_label(r.framework),
             dim_label(r.dimension), fmt_int(r.n_answers), fmt_f(r.precision, 2),
             fmt_f(r.recall, 2), fmt_f(r.f1, 2), fmt_f(r.cohen_kappa, 2),
             fmt_f(r.keyword_kappa, 2)]
            for r in q.itertuples()]
    headers = ["Evaluation", "Suggester", "School year", "Question", "Framework", "Category",
               "Answers", "Precision", "Recall", "F1", "Cohen's kappa", "Keyword coder's kappa"]
    return [Heading("Suggestions against the human codes", 3, "suggestions"),
            Para("How far the meaning-based suggestions (which stand in for the two "
                 "researchers in a year without human coding) agree with the human final "
                 "codes, per category, over the answers humans coded; the keyword coder's "
                 "kappa on the same answers beside it. Each school year is evaluated on its "
                 "own (the cross-validation's models learn from that year's other schools "
                 "only). From coding.suggestion_quality."),
            Table(headers, rows, "suggestion-quality")]


def _suppressed_view(prep: Prepared, frame: pd.DataFrame | None, key: str, css: str,
                     title: str) -> list[Block]:
    if frame is None or frame.empty:
        return []
    years, min_cell = prep.years, prep.inp.min_cell
    f = frame[frame["level"] == "framework"]
    f = suppress_small_cells(f, ["n_answers", "n_substantive"], min_cell, ["rate_per_100"])
    f = f.sort_values([key, "school_year", "question_id", "framework"])
    rows = [[getattr(r, key), years.mark(r.school_year), r.question_id, fw_label(r.framework),
             fmt_int(r.n_answers), fmt_int(r.n_substantive), fmt_f(r.rate_per_100)]
            for r in f.itertuples()]
    row_attrs = [years.attrs(y) for y in f["school_year"]]
    headers = [key, "School year", "Question", "Framework", "Coded answers",
               "Substantive answers", "Per 100"]
    caption = (years.caption(sorted(set(f["school_year"].astype(str))), "Framework level")
               if any(row_attrs) else None)
    return [Heading(title, 3, css),
            Para(f"Counts from 1 to {min_cell - 1} are shown as <{min_cell}, and their "
                 "rates are left blank.", "note"),
            Table(headers, rows, css, row_attrs=row_attrs, caption=caption)]


def views(prep: Prepared) -> list[Block]:
    return (_suppressed_view(prep, prep.inp.by_school, "school_id", "by-school", "By school")
            + _suppressed_view(prep, prep.inp.by_coach, "coach_id", "by-coach", "By coach"))


def data_quality(prep: Prepared) -> list[Block]:
    inp, years = prep.inp, prep.years

    def mark(year: object) -> str:   # the school year's name, with † when machine-coded
        return "" if missing(year) else years.mark(year)

    def marks(column: pd.Series) -> list[dict[str, str]]:
        return [years.attrs(y) if not missing(y) else {} for y in column]

    blocks: list[Block] = []
    files = inp.export_files
    if files is not None and not files.empty:
        files = files.sort_values(["school_year", "file_name"])
        rows = [[mark(r.school_year), r.file_name, str(r.file_sha256 or "")[:12], r.reader,
                 r.encoding, fmt_int(r.n_records), r.status] for r in files.itertuples()]
        blocks.append(Table(["School year", "Export file", "sha256 (prefix)", "Reader",
                             "Encoding", "Records", "Status"], rows, "dq-files",
                            caption="Export files that fed this report",
                            row_attrs=marks(files["school_year"])))
    q = inp.quarantine
    if q is not None:
        counts = (q.groupby(["school_year", "stage", "level", "reason"]).size()
                  .rename("rows").reset_index() if len(q) else pd.DataFrame())
        rows = [[mark(r.school_year), r.stage, r.level, r.reason, fmt_int(r.rows)]
                for r in counts.itertuples()] or [["", "", "", "nothing quarantined", "0"]]
        blocks.append(Table(["School year", "Stage", "Level", "Reason", "Rows"], rows,
                            "dq-quarantine", caption="Rows quarantined, by reason",
                            row_attrs=marks(counts["school_year"]) if len(counts) else []))
    red = inp.redactions
    if red is not None:
        red = red.sort_values("school_year")
        rows = [[mark(r.school_year), fmt_int(r.n)] for r in red.itertuples()]
        blocks.append(Table(["School year", "Names redacted"], rows, "dq-redactions",
                            caption="Redactions made (counts only)",
                            row_attrs=marks(red["school_year"])))
    cb = inp.codebook_codes
    if cb is not None and not cb.empty:
        v = cb.groupby(["framework", "codebook_version"]).size().rename("n").reset_index()
        v = v.sort_values(["framework", "codebook_version"], key=sort_key)
        rows = [[fw_label(r.framework), r.codebook_version, fmt_int(r.n)]
                for r in v.itertuples()]
        blocks.append(Table(["Framework", "Codebook version", "Codes"], rows, "dq-codebooks",
                            caption="Codebook versions"))
    return blocks
