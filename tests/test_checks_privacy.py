"""no_roster_names: an independent scan that fails where the redactor (and staging's own
NameScanner, which shares its folding and name variants) let a name through."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import MAPPING_FILE_NAME, load_mapping
from pipeline.core.privacy.name_scan import FuzzyNameScan, NameScanner, normalise_for_check
from pipeline.core.privacy.redact import Redactor, load_roster
from pipeline.defs import ingestion
from tests.helpers import GF_HEADER, SAMPLE, make_resources, write_landing

ROSTER = load_roster(SAMPLE / "roster.csv")

# invisible characters inside a name: the redactor normalises them away before matching
# (issue 12), so these no longer reach the check
INVISIBLE = [
    ("Mari\u200bsol kept us on task", "zero-width space inside the first name"),
    ("Quin\u00adtero modelled the routine", "soft hyphen inside the last name"),
    ("Thanks to Hal\u2060vorsen", "word joiner inside the last name"),
]

# (text as typed, why the redactor misses it)
SMUGGLED = [
    ("wojciekowski covered the lesson", "two edits from Wojciechowski, lower case"),
    ("marisl helped with data", "one edit, but no capital (the redactor wants one)"),
    ("Mari sol was great", "a first name split by a space"),
    ("Ach-terberg's slides", "a last name split by a hyphen"),
]


@pytest.mark.parametrize(("text", "why"), SMUGGLED)
def test_independent_scan_catches_what_the_redactor_misses(text, why):
    redacted, found = Redactor(ROSTER).redact(text)
    assert found == [] and redacted == text, why          # the redactor lets it through
    assert NameScanner(ROSTER).find(redacted) == [], why  # and so does staging's own scan
    assert FuzzyNameScan(ROSTER).find(redacted), why      # the check does not


@pytest.mark.parametrize(("text", "why"), INVISIBLE)
def test_the_redactor_now_sees_through_invisible_characters(text, why):
    redacted, found = Redactor(ROSTER).redact(text)
    assert found, why
    assert FuzzyNameScan(ROSTER).find(redacted) == [], (why, redacted)
    assert NameScanner(ROSTER).find(text), why           # later stages' scan sees it too


@pytest.mark.parametrize("text", [
    "[External Coach name] helped us plan", "Thanks to [Name]'s data slides",
    "The expander and the pettiness", "We set goals for the term", "Soled shoes", "",
])
def test_placeholders_and_ordinary_words_pass(text):
    assert FuzzyNameScan(ROSTER).find(text) == []


def test_normalisation_strips_invisible_characters_and_accents():
    assert normalise_for_check("Gie\u200ddr\u0117\u00ad X") == "giedre x"
    assert "|" in normalise_for_check("[External Coach name] and [Name]")


@lru_cache
def _sample_answers():
    import pandas as pd

    frames = []
    for year_dir in sorted((SAMPLE / "landing").iterdir()):
        data = raw.read_year(year_dir)
        mapping = load_mapping(year_dir / MAPPING_FILE_NAME)
        staged = staging.stage_year(data.export_files, data.survey_rows, mapping, ROSTER)
        frames.append(staged.answers)
    return pd.concat(frames, ignore_index=True)


def test_bundled_sample_passes():
    answers = _sample_answers()
    assert len(answers) > 700
    assert ingestion.name_leaks(answers, FuzzyNameScan(ROSTER)) == []


def test_bundled_sample_fails_once_a_name_is_smuggled_in():
    answers = _sample_answers().copy()
    answers.loc[3, "answer_text"] += " Thanks, szymansky!"
    [hit] = ingestion.name_leaks(answers, FuzzyNameScan(ROSTER))
    assert hit["answer_id"] == answers.loc[3, "answer_id"]
    # where it is: table, column, file and row (never the name itself)
    assert (hit["table"], hit["column"], hit["file"], hit["row"]) == (
        "staging.answers", "answer_text", answers.loc[3, "file_name"],
        answers.loc[3, "row_number"])
    assert "szyman" not in ingestion.describe_leak(hit).casefold()


SMUGGLING_EXPORT = "\r\n".join([
    GF_HEADER,
    '9/14/2020 15:02:11,a@x.org,Lincoln Elementary,Marisol Okafor,Teacher,'
    '"marisl helped us follow the process.","We ran out of time"',
    '9/14/2020 15:09:00,d@x.org,Park Middle,Marisol Okafor,Teacher,'
    '"Thanks to the data slides",none',
]) + "\r\n"


def test_asset_check_fails_with_error_and_withholds_the_answer(tmp_path: Path):
    write_landing(tmp_path, {"session-01.csv": SMUGGLING_EXPORT})
    (tmp_path / "roster.csv").write_text("full_name,role\nMarisol Okafor,external coach\n",
                                         encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    result = dg.materialize([ingestion.raw_survey_rows, ingestion.staging_answers],
                            resources=make_resources(tmp_path), instance=instance,
                            partition_key="2020-21", raise_on_error=False)
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    check = evaluations["no_roster_names"]
    assert check.passed is False
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["answers_withheld"].value == 1
    [where] = check.metadata["where"].value
    assert where.startswith("staging.answers.answer_text: file session-01.csv (sha256 ")
    assert where.split(", ")[-2] == "row 2"
    assert not result.success     # blocking: nothing downstream runs on it
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        texts = [t for (t,) in con.execute("select answer_text from staging.answers").fetchall()]
    assert "We ran out of time" in texts
    assert not any("marisl" in t for t in texts)   # never written
