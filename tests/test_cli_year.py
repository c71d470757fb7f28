"""`survey-pipeline year list` and `year retire`, on a warehouse built by the core functions
(no Dagster run: the asset path is tests/test_ingestion_assets.py and test_year_lifecycle.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy.redact import load_roster
from pipeline.core.warehouse import connection as wh
from tests.helpers import GF_MAPPING, SESSION_1, write_landing

runner = CliRunner()


def build(root: Path) -> Path:
    """Two years loaded into root/wh.duckdb the way the assets load them."""
    write_landing(root, {"session-01.csv": SESSION_1.replace("2020", "2021")},
                  mapping=GF_MAPPING.replace('"2020-21"', '"2021-22"'), year="2021-22")
    (root / "roster.csv").write_text("full_name,role\nMarisol Okafor,external coach\n")
    db = root / "wh.duckdb"
    with wh.connect(db) as con:
        for year in ("2020-21", "2021-22"):
            folder = root / "landing" / year
            data = raw.read_year(folder)
            staged = staging.stage_year(data.export_files, data.survey_rows,
                                        load_mapping(folder / "mapping.yaml"),
                                        load_roster(root / "roster.csv"))
            where = {"school_year": year}
            wh.replace_rows(con, "raw.export_files", data.export_files, where)
            wh.replace_rows(con, "raw.survey_rows", data.survey_rows, where)
            wh.replace_rows(con, "raw.quarantine", data.quarantine, where)
            wh.replace_rows(con, "raw.quarantine", staged.quarantine, where)
            wh.replace_rows(con, "staging.answers", staged.answers, where)
    return db


def invoke(root: Path, *args):
    return runner.invoke(app, ["year", *args, "--warehouse", str(root / "wh.duckdb"),
                               "--landing", str(root / "landing")])


def test_year_list_shows_files_answers_and_coding_state(tiny_landing: Path):
    build(tiny_landing)
    result = invoke(tiny_landing, "list", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["school_year"] for r in rows] == ["2020-21", "2021-22"]
    first = rows[0]
    assert (first["state"], first["landing_files"], first["files_loaded"], first["answers"],
            first["rows_quarantined"], first["coding"]) == ("loaded", 1, 1, 5, 2, "not coded")
    text = invoke(tiny_landing, "list").stdout
    assert "2020-21  loaded" in text and "answers: 5 staged, 2 rows quarantined" in text


def test_year_retire_refuses_while_the_folder_is_there_then_retires(tiny_landing: Path):
    build(tiny_landing)
    result = invoke(tiny_landing, "retire", "2020-21", "--no-refresh")
    assert result.exit_code == 1 and "still holds the year's exports" in result.stderr
    shutil.rmtree(tiny_landing / "landing" / "2020-21")
    listed = [json.loads(x) for x in invoke(tiny_landing, "list", "--json").stdout.splitlines()]
    assert listed[0]["state"] == "folder gone: retired on the next refresh"
    result = invoke(tiny_landing, "retire", "2020-21", "--no-refresh")
    assert result.exit_code == 0, result.output
    assert "retired 2020-21: 5 answers" in result.stdout
    with duckdb.connect(str(tiny_landing / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select distinct school_year from staging.answers").fetchall() == [
            ("2021-22",)]
        assert con.execute("select school_year, trigger from raw.year_retirements").fetchall() \
            == [("2020-21", "survey-pipeline year retire")]
    listed = [json.loads(x) for x in invoke(tiny_landing, "list", "--json").stdout.splitlines()]
    assert listed[0]["state"].startswith("retired ")
    again = invoke(tiny_landing, "retire", "2020-21", "--no-refresh")
    assert again.exit_code == 1 and "is not in" in again.stderr


def test_year_retire_checks_its_argument(tiny_landing: Path):
    result = invoke(tiny_landing, "retire", "2020/21")
    assert result.exit_code == 1 and "is not a school year like 2024-25" in result.stderr
