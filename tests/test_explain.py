"""`survey-pipeline explain` (pipeline.core.exchange.explain): one answer's codes by coder,
keyword hits highlighted, suggestions and the final decision with who made it."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.exchange.explain import (
    HIGHLIGHT_OFF,
    HIGHLIGHT_ON,
    UnknownAnswerError,
    _context,
    gather,
    highlight,
    render,
)
from tests import exchange_data as data


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return data.build(tmp_path_factory.mktemp("wh") / "survey.duckdb")


def test_highlight_merges_overlaps_and_marks_plain_or_ansi():
    assert highlight("abcdef", [(1, 3), (2, 4)], color=False) == "a«bcd»ef"
    assert highlight("abcdef", [(0, 1)], color=True) == f"{HIGHLIGHT_ON}a{HIGHLIGHT_OFF}bcdef"
    long = "x" * 50 + " the hit " + "y" * 50
    start = long.index("the hit")
    assert _context(long, [(start, start + 7)], color=False, width=5) == "…xxxx «the hit» yyyy…"


def test_an_agreed_code_with_its_keyword_hit_and_an_undecided_one(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        text = render(gather(con, data.A), color=False)
    assert "answer A00000000000a · 2020-21 · session 1 · school_0000000a · teacher" in text
    assert "Question: What worked from today's coaching session?" in text
    assert "-Our team «collaborated» on the plan" in text       # the matched span, marked
    assert "jm: Collaboration (Depth); Knowledgeable (Competence in core responsibilities)" \
        in text
    assert "note on Collaboration (Depth): teamwork" in text
    assert "ak: Collaboration (Depth)" in text
    assert "Collaboration (Depth): «collaborated» (pattern stem: collaborate)" in text
    assert "Knowledgeable (Competence in core responsibilities): p=0.66 (zero-shot)" in text
    assert "Collaboration (Depth): both coders applied it (jm+ak)" in text
    assert "waiting for an adjudicator (discrepancy " + data.DID_UNRESOLVED in text


def test_adjudicated_and_rejected_codes_name_the_adjudicator(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        text = render(gather(con, data.B), color=True)
    assert HIGHLIGHT_ON + "more time" + HIGHLIGHT_OFF in text
    assert "time allocated (Sustainability): adjudicated by Lead researcher" in text
    assert "reason: asks for more time" in text
    assert ("Collaboration (Depth): not applied, adjudicated by Lead researcher "
            "(jm: applied; ak: not applied)") in text


def test_a_machine_coded_year_says_so(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        text = render(gather(con, data.D))
    assert "nobody coded this answer by hand" in text
    assert ("Our practice (Depth): trained suggestion, decided by suggester 0123456789ab "
            "(no human coded this year)") in text


def test_the_command_reads_the_warehouse_read_only(warehouse):
    runner = CliRunner()
    result = runner.invoke(app, ["explain", data.B, "--warehouse", str(warehouse),
                                 "--no-color"])
    assert result.exit_code == 0, result.output
    assert "«more time»" in result.output and "\x1b[" not in result.output
    result = runner.invoke(app, ["explain", "A0000000000ff", "--warehouse", str(warehouse)])
    assert result.exit_code == 1 and "no answer 'A0000000000ff'" in result.output
    with duckdb.connect(str(warehouse), read_only=True) as con, \
            pytest.raises(UnknownAnswerError):
        gather(con, "nope")
