"""`survey-pipeline run` (what `make run` calls) on a tiny landing folder, via the environment."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from pipeline.cli import app
from tests.helpers import GF_MAPPING


def use(root: Path, monkeypatch) -> None:
    monkeypatch.setenv("SURVEY_LANDING_DIR", str(root / "landing"))
    monkeypatch.setenv("SURVEY_ROSTER", str(root / "roster.csv"))
    monkeypatch.setenv("SURVEY_WAREHOUSE", str(root / "cli.duckdb"))
    monkeypatch.setenv("SURVEY_CODER_SHEETS", str(root / "no-sheets"))
    monkeypatch.setenv("SURVEY_REPORTS", str(root / "reports"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)   # an ephemeral instance


def test_run_materialises_everything_quietly(tiny_landing: Path, monkeypatch):
    root = tiny_landing
    (root / "landing" / "notes").mkdir()           # a folder without mapping.yaml
    use(root, monkeypatch)
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
    # and publishes the read-only copy for analysts, with its manifest
    published = root / "published" / "survey.duckdb"
    assert f"published: {published}" in result.stdout
    manifest = json.loads((root / "published" / "manifest.json").read_text())
    assert manifest["school_years"] == ["2020-21"] and manifest["run_id"]
    assert set(manifest["codebook_versions"]) == {"scale", "relational_trust"}
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select count(*) from staging.answers").fetchone() == \
            (manifest["row_counts"]["staging.answers"],) == (5,)
        assert con.execute("select count(*) from marts.top_codes_by_year").fetchone()[0] > 0


def test_a_bad_mapping_fails_in_one_line_without_a_trace(tiny_landing: Path, monkeypatch):
    root = tiny_landing
    mapping = root / "landing" / "2020-21" / "mapping.yaml"
    mapping.write_text(GF_MAPPING.replace("  improve: In what ways can we improve today's "
                                          "coaching session?\n", ""), encoding="utf-8")
    use(root, monkeypatch)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "Stack Trace" not in result.output
    # checked before any internal run (core.ingest.raw.check_landing): one line, no run
    [failure] = result.stderr.strip().splitlines()
    assert failure.startswith("run failed: ") and "STEP_FAILURE" not in result.output
    assert "columns.improve" in failure and str(mapping) in failure
    assert "materialising" not in result.stdout
    assert not (root / "published").exists()


def test_a_missing_landing_folder_is_one_line(tmp_path: Path, monkeypatch):
    use(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"run failed: landing folder {tmp_path / 'landing'} does "
                                     "not exist (set SURVEY_LANDING_DIR)")
