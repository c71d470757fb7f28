"""Rendering the report's context with Jinja2 templates: findings.html and findings.md.

The templates ship in pipeline/core/report/templates/ (base.html.j2 / base.md.j2 include one
template per section, named by Section.template). A folder given as `templates` (or in the
environment variable SURVEY_REPORT_TEMPLATES) is searched first, so a district can override
any single file (wording, layout, style.css) and keep the rest. HTML is autoescaped; the
Markdown templates escape with the `md` filter, and Markdown tables are written by the
`md_block` filter below (one row per line, which a template cannot keep tidy)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from html import escape
from pathlib import Path

import jinja2

from pipeline.core.report.blocks import (
    Chart,
    GroupRow,
    Heading,
    Labelled,
    Para,
    Quotes,
    Table,
    missing,
)
from pipeline.core.report.context import ReportContext

TEMPLATES_ENV = "SURVEY_REPORT_TEMPLATES"
PACKAGE_TEMPLATES = Path(__file__).with_name("templates")


def template_dirs(override: str | Path | None = None) -> list[Path]:
    """The folders searched for templates, first match wins: the override (argument, else
    $SURVEY_REPORT_TEMPLATES), then the package's own."""
    chosen = override or os.environ.get(TEMPLATES_ENV) or None
    dirs = []
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"report templates folder {path} does not exist "
                                    f"(set by {'the report config' if override else TEMPLATES_ENV})")
        dirs.append(path)
    return [*dirs, PACKAGE_TEMPLATES]


def _text(v: object) -> str:
    return "" if missing(v) else str(v)


def _merge(a: Mapping, b: Mapping) -> dict:
    out = dict(a)
    if "class" in a and "class" in b:
        out["class"] = f"{a['class']} {b['class']}"
        b = {k: v for k, v in b.items() if k != "class"}
    out.update(b)
    return out


TESTS = {"quotes": lambda v: isinstance(v, Quotes), "labelled": lambda v: isinstance(v, Labelled),
         "grouprow": lambda v: isinstance(v, GroupRow), "heading": lambda v: isinstance(v, Heading),
         "para": lambda v: isinstance(v, Para), "table": lambda v: isinstance(v, Table),
         "chart": lambda v: isinstance(v, Chart)}


def _environment(dirs: list[Path], html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=html, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
    env.tests.update(TESTS)
    env.filters.update({"text": _text, "merge": _merge, "md": md_escape, "md_block": md_block,
                        "md_table": md_table})
    return env


# ----------------------------------------------------------------------------- Markdown

def md_escape(s: object) -> str:
    s = re.sub(r"\s+", " ", _text(s)).replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\|*_`\[\]#])", r"\\\1", s)


def _cell_md(cell: object) -> str:
    if isinstance(cell, Quotes):
        return "<br>".join(f"{i}. {md_escape(c)}" for i, c in enumerate(cell.items, 1))
    if isinstance(cell, Labelled):
        return md_escape(cell.text) + (f"<br>*{md_escape(cell.sub)}*" if cell.sub else "")
    if isinstance(cell, list):
        return "<br>".join(f"{i}. {md_escape(c)}" for i, c in enumerate(cell, 1))
    return md_escape(cell)


def md_table(t: Table) -> str:
    lines = [f"*{md_escape(t.caption)}*", ""] if t.caption else []
    lines.append("| " + " | ".join(md_escape(h) for h in t.headers) + " |")
    lines.append("|" + "---|" * len(t.headers))
    for row in t.rows:
        if isinstance(row, GroupRow):
            anchor = f'<a id="{escape(row.attrs["id"])}"></a>' if "id" in row.attrs else ""
            cells = [f"{anchor}**{md_escape(row.text)}**"] + [""] * (len(t.headers) - 1)
        else:
            cells = [_cell_md(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def md_block(b: object) -> str:
    if isinstance(b, Heading):
        anchor = f'<a id="{escape(b.anchor)}"></a>\n\n' if b.anchor else ""
        return anchor + "#" * b.level + " " + md_escape(b.text)
    if isinstance(b, Para):
        prefix = "> **Note:** " if b.css_class and "note" in b.css_class.split() else ""
        return prefix + md_escape(b.text)
    if isinstance(b, Table):
        return md_table(b)
    if isinstance(b, Chart):
        return (f"**Chart:** {md_escape(b.caption)} (drawn in findings.html)\n\n"
                f"{md_table(b.data)}")
    raise TypeError(f"not a report block: {type(b).__name__}")


# ----------------------------------------------------------------------------- rendering

def render_context(ctx: ReportContext, templates: str | Path | None = None) -> tuple[str, str]:
    """(html, markdown) of the context, from base.html.j2 and base.md.j2."""
    dirs = template_dirs(templates)
    values = ctx.as_dict()
    html = _environment(dirs, True).get_template("base.html.j2").render(values)
    markdown = _environment(dirs, False).get_template("base.md.j2").render(values)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"
    return html, markdown
