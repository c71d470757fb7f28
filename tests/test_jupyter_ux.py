"""A real peer's keyword coding, reproduced exactly through the CLI's own path.

The Jupyter team coded the 2015 notebook UX survey's `hinderances` answers with keyword themes
(../shared/fixtures/real/jupyter-2015-ux, CC0). Their codebook is transcribed into this
project's format in examples/jupyter-2015-ux/codebook.yaml; `survey-pipeline code` must give
their published theme set on every one of the 763 answered rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real" / "jupyter-2015-ux"
CODEBOOK = ROOT / "examples" / "jupyter-2015-ux" / "codebook.yaml"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")


def split(cell: str) -> set[str]:
    return {x for x in cell.split(",") if x}


@pytest.fixture(scope="module")
def coded(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("jupyter") / "coded.csv"
    result = CliRunner().invoke(
        app,
        [
            "code", str(FIXTURES / "survey_short_columns.csv"),
            "--text-column", "hinderances", "--id-column", "Unnamed: 0",
            "--codebook", str(CODEBOOK), "--output", str(out), "--all-hits",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return pd.read_csv(out, dtype={"id": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    exp = pd.read_csv(
        FIXTURES / "hinderances_themes_expected.csv", sep=";", dtype=str, keep_default_na=False
    )
    exp.columns = ["id", "themes", "keywords"]
    return exp


def test_same_theme_set_on_every_answered_row(coded, expected):
    assert len(expected) == 763
    got = coded.groupby("id")["code"].agg(set).to_dict()
    mismatches = {
        row.id: (got.get(row.id, set()), split(row.themes))
        for row in expected.itertuples()
        if got.get(row.id, set()) != split(row.themes)
    }
    assert mismatches == {}
    # Row 133 answered "n/a": present, no theme (read as text, not as missing).
    assert split(expected.set_index("id").loc["133", "themes"]) == set()
    # No row outside the 763 answered ones gets a code.
    assert set(got) <= set(expected["id"])


def test_same_matching_patterns_on_every_row(coded, expected):
    got = coded.groupby("id")["pattern"].agg(set).to_dict()
    for row in expected.itertuples():
        assert got.get(row.id, set()) == split(row.keywords), row.id
    # their source joined two literals into one pattern; it is kept as they ran it
    assert "relevantnobody" in CODEBOOK.read_text(encoding="utf-8")


def test_spans_match_the_answers(coded):
    answers = pd.read_csv(
        FIXTURES / "survey_short_columns.csv", dtype=str, keep_default_na=False
    ).set_index("Unnamed: 0")["hinderances"]
    for row in coded.itertuples():
        assert answers[row.id][row.start : row.end] == row.matched_text
