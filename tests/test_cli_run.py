"""`survey-pipeline run` (what `make run` calls) on a tiny landing folder, via the environment."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app


def test_run_materialises_everything_quietly(tiny_landing: Path, monkeypatch):
    root = tiny_landing
    (root / "landing" / "notes").mkdir()           # a folder without mapping.yaml
    monkeypatch.setenv("SURVEY_LANDING_DIR", str(root / "landing"))
    monkeypatch.setenv("SURVEY_ROSTER", str(root / "roster.csv"))
    monkeypatch.setenv("SURVEY_WAREHOUSE", str(root / "cli.duckdb"))
    monkeypatch.setenv("SURVEY_CODER_SHEETS", str(root / "no-sheets"))
    monkeypatch.setenv("SURVEY_REPORTS", str(root / "reports"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)   # an ephemeral instance
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert "done: 1 school year(s) 2020-21" in result.stdout
    # the closing summary (pipeline/cli/summary.py): what was built, where it landed
    assert "  school years built: 2020-21" in result.stdout
    assert f"coded answers: {root / 'reports' / 'coded_answers.xlsx'}" in result.stdout
    assert "project.qdpx" in result.stdout and "not written" not in result.stdout
    assert "landing folder 'notes' has no mapping.yaml" in result.stderr
    assert " - DEBUG - " not in result.output
    assert (root / "cli.duckdb").exists() and (root / "reports" / "findings.html").exists()
