"""The report's data model (what the templates render) and the number formatting it uses.

A section is a list of blocks: headings, paragraphs, tables and charts. A table cell is text,
a list of texts (rendered as a list), `Quotes` (collapsed behind a <details>) or `Labelled`
(a text with a smaller line under it, e.g. a code's aliases). The HTML and the Markdown
templates render the same blocks, so the two files carry the same content.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

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
class Quotes:
    """Supporting quotes of one code: rendered as <details> (closed on screen, open in print)."""

    items: list[str]
    summary: str = ""

    def __str__(self) -> str:   # how tests and the Markdown see the cell
        return " ".join(self.items)


@dataclass
class Labelled:
    text: str
    sub: str = ""
    css_class: str = "sub"

    def __str__(self) -> str:
        return f"{self.text} ({self.sub})" if self.sub else self.text


@dataclass
class GroupRow:
    """A row spanning the table: the heading of a group of rows (e.g. a category)."""

    text: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[object] | GroupRow]
    css_class: str
    attrs: dict[str, str] = field(default_factory=dict)
    caption: str | None = None
    col_attrs: dict[int, dict[str, str]] = field(default_factory=dict)   # th and td of a column
    row_attrs: list[dict[str, str]] = field(default_factory=list)        # tr of a body row

    def row_attr(self, i: int) -> dict[str, str]:
        return self.row_attrs[i] if i < len(self.row_attrs) else {}


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


@dataclass
class Section:
    """One part of the report, rendered by templates/<template>.html.j2 and .md.j2.

    `anchor` is the id the table of contents links to; `entries` are its sub-entries
    (anchor, title) listed under it in the table of contents."""

    anchor: str
    title: str
    template: str
    blocks: list[Block] = field(default_factory=list)
    entries: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)   # anything else a template uses


# ----------------------------------------------------------------------------- formatting

def missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def fmt_int(v: object) -> str:
    return "" if missing(v) else (v if isinstance(v, str) else f"{int(v):,}")


def fmt_f(v: object, digits: int = 1) -> str:
    return "" if missing(v) else f"{float(v):.{digits}f}"


def fmt_p(v: object) -> str:
    if missing(v):
        return ""
    return "<0.001" if float(v) < 0.001 else f"{float(v):.3f}"


def fmt_ci(est: object, low: object, high: object, digits: int = 2) -> str:
    if missing(est):
        return ""
    if missing(low) or missing(high):
        return fmt_f(est, digits)
    return f"{fmt_f(est, digits)} [{fmt_f(low, digits)}, {fmt_f(high, digits)}]"


def dim_label(d: object) -> str:
    return "" if missing(d) else DIMENSIONS.get(str(d), str(d).replace("_", " ").capitalize())


def fw_label(f: object) -> str:
    return "" if missing(f) else FRAMEWORKS.get(str(f), str(f).replace("_", " ").capitalize())


def paper_order(values: pd.Series) -> pd.Series:
    """Sort key for framework / dimension columns: the paper's order, then alphabetical."""
    rank = {v: f"{i:02d}" for i, v in enumerate(ORDER)}
    return values.map(lambda v: rank.get(v, f"99{v}"))


def sort_key(col: pd.Series) -> pd.Series:
    return paper_order(col) if col.name in ("framework", "dimension") else col


def short_year(y: str) -> str:
    return y[2:] if re.fullmatch(r"\d{4}-\d{2}", y) else y
