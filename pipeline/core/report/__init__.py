"""The findings report: a summary per question, contents, the study's tables per question,
charts, agreement, coder quality, data quality.

In: the marts, agreement and quality tables. Out: reports/findings.html and findings.md, two
renderings of one data model by Jinja2 templates (templates/, overridable by a folder:
SURVEY_REPORT_TEMPLATES).

    report.py     render_report / write_report (the entry points)
    inputs.py     ReportInputs (what it reads) and Prepared (years, compared pair, changes)
    years.py      coding sources per year, the † mark, the per-year notes, compare_pair
    blocks.py     the blocks a section holds (tables, charts, ...) and number formatting
    summary.py    per question: headline change, categories and top codes, one chart
    questions.py  per question: the study's table by category and count, three charts
    evidence.py   agreement (per framework, per year and question), coder quality, views,
                  data quality
    context.py    ReportContext: the sections in reading order, built once
    render.py     the Jinja2 environments (HTML autoescaped, Markdown escaped by filters)
    svg.py        self-contained SVG charts
    kept.py       the report kept in the result cache under a key of everything it is made of
    templates/    base.*.j2, one template per section, macros.html.j2, style.css
"""
