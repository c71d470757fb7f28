"""The name checks of the later stages (coder sheets, adjudications, marts, report, and the
exchange files: coded answers, REFI-QDA) scan with the independent method (FuzzyNameScan, via names_in_frames / names_in_texts), not with the
redactor's own matching: each fails when a roster name the redactor's matching misses reaches
its table or report, and passes on the same table without it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.core.privacy.name_scan import NameScanner, names_in_frames, names_in_texts
from pipeline.core.privacy.redact import load_roster
from pipeline.core.warehouse import connection as wh
from pipeline.defs import marts as marts_defs
from tests.helpers import SAMPLE, make_resources

ROSTER = load_roster(SAMPLE / "roster.csv")
# a roster name as people type it: two edits from Wojciechowski, lower case. The redactor's
# matching (NameScanner) does not see it; the independent check must.
SMUGGLED = "thanks to wojciekowski for the slides"
CLEAN = "thanks to the coach for the slides"


def _row(table: str, **values) -> pd.DataFrame:
    """One row of `table` in its warehouse shape, text columns filled with `values`."""
    frame = wh.empty_frame(table)
    row = {c: (values.get(c, "x") if frame[c].dtype == object else 1) for c in frame.columns}
    return pd.concat([frame, pd.DataFrame([row])], ignore_index=True)


# (check, table, text column): the tables each check scans, as pipeline/defs passes them
CHECKED = [
    ("no_roster_names_in_sheets", "coding.code_applications", "note"),
    ("no_roster_names_in_sheets", "coding.sheet_quarantine", "reason"),
    ("no_roster_names_in_adjudications", "coding.adjudications", "reason"),
    ("no_roster_names_in_adjudications", "coding.adjudication_problems", "reason"),
    ("no_roster_names_in_year_marts", "marts.by_coach", "label"),
    ("no_roster_names_in_marts", "marts.exemplar_quotes", "quote"),
]


@pytest.mark.parametrize(("check", "table", "column"), CHECKED)
def test_check_fails_on_a_name_the_redactors_matching_misses(check, table, column):
    frame = _row(table, **{column: SMUGGLED})
    assert NameScanner(ROSTER).scan_frames({table: frame}) == [], check   # the old method
    [hit] = names_in_frames(ROSTER, {table: frame})
    assert (hit["table"], hit["column"], hit["row"]) == (table, column, "0"), check
    assert "wojc" not in str(hit).casefold()    # where it is, never the name


@pytest.mark.parametrize(("check", "table", "column"), CHECKED)
def test_check_passes_without_a_name(check, table, column):
    assert names_in_frames(ROSTER, {table: _row(table, **{column: CLEAN})}) == [], check


def test_report_check_fails_on_a_name_in_the_html_or_the_markdown():
    html = f"<html><body><p>{CLEAN}</p></body></html>"
    assert names_in_texts(ROSTER, html, CLEAN) == 0
    assert names_in_texts(ROSTER, html.replace(CLEAN, SMUGGLED), CLEAN) > 0
    assert names_in_texts(ROSTER, html, f"# Findings\n\n> {SMUGGLED}\n") > 0
    assert NameScanner(ROSTER).find(SMUGGLED) == []     # the old method let it through


def test_exchange_checks_fail_on_a_name_in_the_coded_answers_or_the_qda_files():
    """no_roster_names_in_coded_answers (a frame) and no_roster_names_in_refi_qda (the .qdc,
    the project document and each answer's source text)."""
    coded = pd.DataFrame({"answer_id": ["A1", "A2"], "answer_text": [CLEAN, CLEAN],
                          "codes": ["scale/collaboration", ""]})
    assert names_in_frames(ROSTER, {"coded_answers": coded}) == []
    coded.loc[1, "answer_text"] = SMUGGLED
    [hit] = names_in_frames(ROSTER, {"coded_answers": coded})
    assert (hit["column"], hit["answer_id"]) == ("answer_text", "A2")
    qde = f'<Project><Sources><TextSource name="A1"><PlainTextContent>{CLEAN}' \
          "</PlainTextContent></TextSource></Sources></Project>"
    assert names_in_texts(ROSTER, "<CodeBook/>", qde, CLEAN) == 0
    assert names_in_texts(ROSTER, "<CodeBook/>", qde, CLEAN, SMUGGLED) > 0
    assert names_in_texts(ROSTER, "<CodeBook/>", qde.replace(CLEAN, SMUGGLED)) > 0


def test_the_marts_writer_withholds_the_row_with_a_name(tmp_path: Path):
    """pipeline.defs.marts._write_withheld (both marts checks): the row whose quote holds a
    name is not written, the others are, and the hits fail the check."""
    (tmp_path / "roster.csv").write_text((SAMPLE / "roster.csv").read_text(encoding="utf-8"),
                                         encoding="utf-8")
    resources = make_resources(tmp_path)
    quotes = pd.concat([_row("marts.exemplar_quotes", quote=CLEAN, answer_id="A1"),
                        _row("marts.exemplar_quotes", quote=SMUGGLED, answer_id="A2")],
                       ignore_index=True)
    with resources["warehouse"].connect() as con:
        wh.ensure_tables(con)
        names = marts_defs._write_withheld(con, resources["paths"], {marts_defs.QUOTES: quotes},
                                           None)
    assert [(h["table"], h["column"], h["answer_id"]) for h in names] == [
        ("marts/exemplar_quotes", "quote", "A2")]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        written = [a for (a,) in con.execute("select answer_id from marts.exemplar_quotes")
                   .fetchall()]
    assert written == ["A1"]
