"""The findings report: one self-contained HTML file (inline CSS and SVG, no script) and its
Markdown twin, both rendered by Jinja2 templates from one data model (context.ReportContext).

    render_report(ReportInputs(...)) -> (html, markdown)
    write_report(inputs, directory)  -> (findings.html, findings.md), written atomically

Stable hooks for tests and readers are listed in docs/report.md.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.files import atomic_write_text
from pipeline.core.report.context import ReportContext, build_context
from pipeline.core.report.inputs import QUESTIONS, ReportInputs
from pipeline.core.report.render import TEMPLATES_ENV, render_context

__all__ = ["QUESTIONS", "TEMPLATES_ENV", "ReportContext", "ReportInputs", "build_context",
           "render_report", "write_report"]


def render_report(inputs: ReportInputs) -> tuple[str, str]:
    """(html, markdown): the findings report from the marts and the coding/raw summaries."""
    return render_context(build_context(inputs), inputs.templates)


def write_report(inputs: ReportInputs, directory: str | Path) -> tuple[Path, Path]:
    """Render and write findings.html and findings.md into `directory` (created if needed),
    each atomically (a reader sees the old file or the new one); returns their paths."""
    out = Path(directory)
    html, markdown = render_report(inputs)
    html_path, md_path = out / "findings.html", out / "findings.md"
    atomic_write_text(html_path, html)
    atomic_write_text(md_path, markdown)
    return html_path, md_path
