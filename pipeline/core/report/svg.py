"""Hand-written inline SVG charts for the findings report (no plotting library, no network).

Every function returns one <svg> element string with the given id, a <title> for screen
readers, and a <title> tooltip on each mark. All text is HTML-escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000"]
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _open(svg_id: str, css_class: str, width: float, height: float, title: str) -> str:
    return (
        f'<svg id="{escape(svg_id)}" class="chart {escape(css_class)}" role="img" '
        f'aria-labelledby="{escape(svg_id)}-title" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_num(width)}" height="{_num(height)}" viewBox="0 0 {_num(width)} '
        f'{_num(height)}" {FONT}><title id="{escape(svg_id)}-title">{escape(title)}</title>'
    )


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" {extra}>'
            f"{escape(s)}</text>")


def _legend(x: float, y: float, names: Sequence[str], colors: Sequence[str]) -> str:
    parts = []
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        yy = y + i * 16
        parts.append(f'<rect x="{_num(x)}" y="{_num(yy - 9)}" width="10" height="10" '
                     f'fill="{color}"/>')
        parts.append(_text(x + 14, yy, name))
    return '<g class="legend">' + "".join(parts) + "</g>"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 10.0
    step = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):  # quarters stay readable
        if v <= m * step:
            return m * step
    return 10 * step


def grouped_bars(
    svg_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[str],
    values: Mapping[tuple[str, str], float | None],
    unit: str = "per 100 substantive answers",
) -> str:
    """Horizontal grouped bars: one group per category (a code), one bar per series (a year)."""
    longest = max((len(c) for c in categories), default=0)
    label_w = min(max(200, 7 * longest + 10), 320)   # room for the longest label (12px font)
    plot_w, bar_h, gap = 380, 12, 10
    group_h = bar_h * max(len(series), 1) + gap
    top = 24
    height = top + group_h * max(len(categories), 1) + 40 + 16 * len(series)
    width = label_w + plot_w + 60
    vmax = _nice_max(max([v for v in values.values() if not _missing(v)], default=0))
    out = [_open(svg_id, "chart-bars", width, height, title)]
    for k in range(5):
        x = label_w + plot_w * k / 4
        out.append(f'<line x1="{_num(x)}" y1="{top - 4}" x2="{_num(x)}" '
                   f'y2="{_num(top + group_h * len(categories))}" stroke="#ddd"/>')
        out.append(_text(x, top - 8, _num(vmax * k / 4), "middle", 'fill="#555"'))
    for i, cat in enumerate(categories):
        y0 = top + i * group_h
        out.append(_text(label_w - 6, y0 + group_h / 2, cat, "end"))
        for j, name in enumerate(series):
            v = values.get((cat, name))
            w = 0 if _missing(v) else plot_w * v / vmax
            y = y0 + j * bar_h
            tip = escape(f"{cat}, {name}: {_fmt(v)} {unit}")
            out.append(
                f'<rect class="bar" data-category="{escape(cat)}" data-series="{escape(name)}" '
                f'x="{label_w}" y="{_num(y)}" width="{_num(w)}" height="{bar_h - 2}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{tip}</title></rect>')
            out.append(_text(label_w + w + 3, y + bar_h - 3, _fmt(v), extra='font-size="10"'))
    y_axis = top + group_h * len(categories) + 18
    out.append(_text(label_w + plot_w / 2, y_axis, unit, "middle", 'fill="#555"'))
    colors = [PALETTE[j % len(PALETTE)] for j in range(len(series))]
    out.append(_legend(label_w, y_axis + 18, list(series), colors))
    return "".join(out) + "</svg>"


def _heat_color(t: float) -> str:
    """White (0) to dark blue (1)."""
    t = min(max(t, 0.0), 1.0)
    lo, hi = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    svg_id: str,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Mapping[tuple[str, str], float | None],
    unit: str = "per 100 substantive answers",
) -> str:
    """Rows (dimensions) x columns (year / session) cells shaded by value; blank = no answers."""
    label_w, cell_w, cell_h, top = 220, 58, 24, 40
    width = label_w + cell_w * max(len(columns), 1) + 20
    height = top + cell_h * max(len(rows), 1) + 30
    vmax = max([v for v in values.values() if not _missing(v)], default=0) or 1.0
    out = [_open(svg_id, "chart-heatmap", width, height, title)]
    for j, col in enumerate(columns):
        x = label_w + j * cell_w + cell_w / 2
        out.append(_text(x, top - 8, col, "middle", 'font-size="10"'))
    for i, row in enumerate(rows):
        y = top + i * cell_h
        out.append(_text(label_w - 6, y + cell_h / 2 + 4, row, "end"))
        for j, col in enumerate(columns):
            v = values.get((row, col))
            x = label_w + j * cell_w
            fill = "#eeeeee" if _missing(v) else _heat_color(v / vmax)
            ink = "#fff" if not _missing(v) and v / vmax > 0.55 else "#222"
            out.append(
                f'<rect class="cell" data-row="{escape(row)}" data-column="{escape(col)}" '
                f'x="{_num(x)}" y="{_num(y)}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"><title>{escape(f"{row}, {col}: {_fmt(v)} {unit}")}</title>'
                "</rect>")
            if not _missing(v):
                out.append(_text(x + cell_w / 2 - 1, y + cell_h / 2 + 3, f"{v:.0f}", "middle",
                                 f'fill="{ink}" font-size="10"'))
    out.append(_text(label_w, height - 8, f"cell value: {unit}; grey: no answers", "start",
                     'fill="#555" font-size="10"'))
    return "".join(out) + "</svg>"


def line_chart(
    svg_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str = "per 100 substantive answers",
    groups: Sequence[str] | None = None,
) -> str:
    """One line per series over the x positions; a missing value breaks the line, and so does
    a change of group (a new school year: sessions of different years are not joined)."""
    left, top, plot_w, plot_h = 50, 20, max(60 * len(x_labels), 300), 200
    width = left + plot_w + 240
    height = top + plot_h + 60
    all_v = [v for vs in series.values() for v in vs if not _missing(v)]
    vmax = _nice_max(max(all_v, default=0))
    n = max(len(x_labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + plot_w * i / n, top + plot_h * (1 - v / vmax)

    out = [_open(svg_id, "chart-lines", width, height, title)]
    for k in range(5):
        y = top + plot_h * (1 - k / 4)
        out.append(f'<line x1="{left}" y1="{_num(y)}" x2="{_num(left + plot_w)}" '
                   f'y2="{_num(y)}" stroke="#ddd"/>')
        out.append(_text(left - 6, y + 4, _num(vmax * k / 4), "end", 'fill="#555"'))
    for i, lab in enumerate(x_labels):
        x = left + plot_w * i / n
        out.append(_text(x, top + plot_h + 16, lab, "middle", 'font-size="10"'))
    for s, (name, vals) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        segments: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vals):
            if groups is not None and i and groups[i] != groups[i - 1]:
                segments.append([])
            if _missing(v):
                segments.append([])
                continue
            segments[-1].append(xy(i, v))
            px, py = xy(i, v)
            out.append(f'<circle class="point" cx="{_num(px)}" cy="{_num(py)}" r="3" '
                       f'fill="{color}"><title>{escape(f"{name}, {x_labels[i]}: {_fmt(v)}")}'
                       "</title></circle>")
        for seg in segments:
            if len(seg) > 1:
                pts = " ".join(f"{_num(a)},{_num(b)}" for a, b in seg)
                out.append(f'<polyline class="line" data-series="{escape(name)}" '
                           f'points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
    out.append(_text(left + plot_w / 2, top + plot_h + 40, unit, "middle", 'fill="#555"'))
    colors = [PALETTE[s % len(PALETTE)] for s in range(len(series))]
    out.append(_legend(left + plot_w + 16, top + 10, list(series), colors))
    return "".join(out) + "</svg>"
