"""School years in the report: who coded each year, the † mark of a machine-coded year, the
per-year notes, and which two years the report compares (a run setting)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.core.marts.marts import machine_coded
from pipeline.core.marts.year_comparison import year_sources
from pipeline.core.report.blocks import Block, Para, missing

MARK = " †"   # after a machine-coded year's name in headers and chart labels
SUGGESTERS = {"trained_suggestion": "trained", "zero_shot_suggestion": "zero-shot"}
MACHINE_TAGS = {"trained_suggestion": "trained suggester",
                "zero_shot_suggestion": "zero-shot suggester", "keyword": "keyword coder"}


class Years:
    """The school years of the marts and their coding sources; marks machine-coded years."""

    def __init__(self, frequencies: pd.DataFrame, coding_sources: pd.DataFrame | None = None):
        self.sources = dict(sorted(year_sources(frequencies).items()))
        self.all = list(self.sources)
        self._counts = coding_sources

    def machine(self, year: object) -> str | None:
        """The coding source of a machine-coded year, else None."""
        src = self.sources.get(str(year))
        return src if machine_coded(src) else None

    def mark(self, year: object) -> str:
        return f"{year}{MARK}" if self.machine(year) else str(year)

    def attrs(self, year: object) -> dict[str, str]:
        src = self.machine(year)
        return {"class": "machine-coded", "data-year": str(year),
                "data-coding-source": src} if src else {}

    def caption(self, years: Sequence[str], caption: str) -> str:
        marked = [f"{y} by the {MACHINE_TAGS.get(self.machine(y), 'machine (several sources)')}"
                  for y in years if self.machine(y)]
        if not marked:
            return caption
        return (f"{caption}. †: coded by a machine standing in for the two researchers: "
                f"{'; '.join(marked)} (see the note for the year)")

    def counts(self, year: str) -> dict[str, int]:
        cs = self._counts
        if cs is None or cs.empty or year not in set(cs["school_year"].astype(str)):
            return {}
        row = cs[cs["school_year"].astype(str) == year].iloc[0]
        return {k[2:]: int(row[k]) for k in row.index
                if k.startswith("n_") and not missing(row[k])}


def compare_pair(years: Years, requested: Sequence[str] | None = None
                 ) -> tuple[str, str] | None:
    """The two school years the report compares.

    `requested` (the run setting, two school years) is used as given, oldest first; a year
    not in the marts is an error. By default: the two latest years coded the same way (the
    same coding_source, human or one machine alone), the pair whose earlier year is the
    latest; without such a pair, the two latest years (the tables
    then say the two were coded differently). None with fewer than two years."""
    if requested:
        pair = sorted(str(y) for y in requested)
        unknown = [y for y in pair if y not in years.sources]
        if len(set(pair)) != 2 or unknown:
            raise ValueError(
                f"the report compares two different school years of the marts; got "
                f"{list(requested)} (years in the marts: {', '.join(years.all) or 'none'})")
        return pair[0], pair[1]
    if len(years.all) < 2:
        return None
    pairs = []
    for source in set(years.sources.values()) - {"mixed", "none"}:
        same = [y for y in years.all if years.sources[y] == source]
        if len(same) >= 2:
            pairs.append((same[-2], same[-1]))
    # each year has one source, so no two pairs share their earlier year
    best = max(pairs) if pairs else None
    return best or (years.all[-2], years.all[-1])


def _suggester_text(kinds: Sequence[str]) -> str:
    names = [SUGGESTERS[k] for k in kinds]
    model = " and the ".join(names) + (" models" if len(names) > 1 else " model")
    return (f"codes suggested by the {model} standing in for the two researchers; its "
            "measured agreement with humans: see coding.suggestion_quality")


def source_notes(years: Years) -> list[Block]:
    """One note per school year saying who coded it (a machine-coded year names the machine)."""
    blocks: list[Block] = []
    for year, source in years.sources.items():
        attrs = {"data-year": year, "data-coding-source": source}
        if source == "keyword":
            text = (f"{year}: no human coding yet. The counts and quotes for this year come "
                    "from the keyword coder standing in for the two researchers; keywords "
                    "miss answers that match a code by meaning, so rates are likely lower "
                    "than human coding would give, and comparisons with human-coded years "
                    "mix two methods.")
            blocks.append(Para(text, "note keyword-standin", attrs))
        elif source in SUGGESTERS:
            n = years.counts(year)
            kinds = [k for k in SUGGESTERS if n.get(k, 0)] or [source]
            blocks.append(_suggested_note(year, kinds, n, attrs))
        elif source == "mixed":
            blocks.append(_mixed_note(years, year, attrs))
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


def _mixed_note(years: Years, year: str, attrs: dict[str, str]) -> Para:
    n = years.counts(year)
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
