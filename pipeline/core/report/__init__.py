"""The findings report: the study's tables per question, charts, agreement, data quality.

In: the marts, agreement, quality tables. Out: reports/findings.html and findings.md.

    report.py  the report's sections (HTML and Markdown from the same blocks)
    svg.py     self-contained SVG charts
"""
