"""`survey-pipeline ingest`: summary, JSON, and one clear line for unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.helpers import SHARED_FIXTURES, write_landing

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["ingest", *map(str, args)])


def test_summary_json_counts_add_up(tiny_landing: Path):
    path = tiny_landing / "landing" / "2020-21" / "session-01.csv"
    result = invoke(path, "--roster", tiny_landing / "roster.csv", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {k: out[k] for k in ("rows", "loaded", "quarantined", "reader", "detected")} == {
        "rows": 5, "loaded": 3, "quarantined": 2, "reader": "google-forms", "detected": False}
    assert out["reasons"] == {"repeated submission": 1, "no answer to either question": 1}
    assert out["rows"] == out["loaded"] + out["quarantined"]
    assert out["names_redacted"] == 2


def test_human_summary_lists_quarantined_rows(tiny_landing: Path):
    path = tiny_landing / "landing" / "2020-21" / "session-01.csv"
    result = invoke(path, "--roster", tiny_landing / "roster.csv")
    assert result.exit_code == 0
    assert "google-forms (given)" in result.stdout
    assert "row 4: repeated submission" in result.stdout


def test_detects_the_reader_when_no_mapping(tmp_path: Path):
    # no mapping beside the file: guessed from the study's question texts
    src = (tmp_path / "x.csv")
    src.write_text("Timestamp,What worked from today's coaching session?,"
                   "In what ways can we improve today's coaching session?\n"
                   "1/15/2021 9:00:00,Coaching support,More time\n", encoding="utf-8")
    result = invoke(src, "--roster", _empty_roster(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["reader"] == "google-forms" and out["detected"] is True and out["loaded"] == 1


def test_dates_that_read_both_ways_stop_the_file_with_one_line(tmp_path: Path):
    """1/5/2021 is 5 January or 1 May: without a row or the mapping to say, nothing loads."""
    src = (tmp_path / "x.csv")
    src.write_text("Timestamp,What worked from today's coaching session?,"
                   "In what ways can we improve today's coaching session?\n"
                   "1/5/2021 9:00:00,Coaching support,More time\n", encoding="utf-8")
    result = invoke(src, "--roster", _empty_roster(tmp_path))
    assert result.exit_code == 1
    assert "every date reads both ways" in result.stderr and "date_order" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _empty_roster(tmp_path: Path) -> Path:
    p = tmp_path / "roster.csv"
    p.write_text("full_name,role\n")
    return p


@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", b"", "file is empty"),
    ("header.csv", b"Timestamp,What worked from today's coaching session?\n", "header only"),
    ("bad.csv", b"Timestamp,Q\n1/1/2021,\x81\x8d\x90 caf\xe9\n", "byte offset"),
    ("trunc.xlsx", b"PK\x03\x04\x14\x00\x00\x00", "not a readable XLSX"),
])
def test_unreadable_files_exit_non_zero_with_one_line(tmp_path: Path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    result = invoke(path, "--roster", _empty_roster(tmp_path))
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and name in lines[0] and needle in lines[0]
    assert "Traceback" not in result.output


def test_missing_question_column_names_the_column(tmp_path: Path):
    write_landing(tmp_path, {"session-01.csv": "Timestamp,Which school are you from?\n"
                                               "1/1/2021 9:00:00,Lincoln\n"})
    path = tmp_path / "landing" / "2020-21" / "session-01.csv"
    result = invoke(path, "--roster", _empty_roster(tmp_path))
    assert result.exit_code == 1
    assert "session-01.csv" in result.stderr
    assert "What worked from today's coaching session?" in result.stderr


def test_real_google_forms_export_with_a_mapping(tmp_path: Path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text('school_year: "2015-16"\nsource: google-forms\ncolumns:\n'
                       "  submitted_at: Timestamp\n"
                       "  worked: What is the official name of your course?\n"
                       "  improve: What are the names of the course instructors?\n")
    path = SHARED_FIXTURES / "google-forms" / "jupyter_2016_education_survey.csv"
    result = invoke(path, "--mapping", mapping, "--roster", _empty_roster(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["rows"] == 125 and out["loaded"] + out["quarantined"] == 125


def test_real_qualtrics_export_flags_na_as_non_substantive(tmp_path: Path):
    """The developer-data file's literal 'N/A' is staged, kept and flagged."""
    from pipeline.core.ingest import raw, staging
    from pipeline.core.ingest.mapping import load_mapping

    mapping_path = tmp_path / "m.yaml"
    mapping_path.write_text(
        'school_year: "2023-24"\nsource: qualtrics\ncolumns:\n'
        "  submitted_at: RecordedDate\n  response_id: ResponseId\n"
        "  worked: Q6 Text entry\n"
        "  improve: Please provide your feedback on the content included in the question tour.\n"
        "identifying: [IPAddress, RecipientEmail, LocationLatitude, LocationLongitude]\n")
    mapping = load_mapping(mapping_path)
    path = SHARED_FIXTURES / "qualtrics" / "qualtrics_developer_data.csv"
    data = raw.read_file(path, mapping)
    staged = staging.stage_year(data.export_files, data.survey_rows, mapping, [])
    answers = staged.answers
    na = answers[answers["answer_text"] == "N/A"]
    assert len(na) == 2 and na["non_substantive"].all()
    assert not answers.loc[answers["answer_text"] != "N/A", "non_substantive"].any()
    # every one of the 20 responses is staged or quarantined, and ids are Qualtrics' own
    assert answers["response_id"].nunique() + (staged.quarantine["level"] == "row").sum() == 20
    assert answers["response_id"].str.startswith("R_").all()
    # identifying columns never reach staging
    assert not {"IPAddress", "RecipientEmail"} & set(answers.columns)
