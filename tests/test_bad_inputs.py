"""tests/fixtures/bad_inputs/: every small bad export and mapping gets the behaviour its README
promises, and every data row ends loaded or quarantined with a reason (issue 12, items 2-6)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.aliases import load_aliases
from pipeline.core.ingest.mapping import MappingError, load_mapping
from pipeline.core.privacy.labels import withheld_response_id
from pipeline.core.privacy.name_scan import FuzzyNameScan, NameScanner
from pipeline.core.privacy.redact import load_roster

HERE = Path(__file__).parent / "fixtures" / "bad_inputs"
EXPORTS = HERE / "exports"
MAPPING = load_mapping(HERE / "mapping.yaml")
ROSTER = load_roster(HERE / "roster.csv")

# file -> (status, text that must appear in the file's error or one of its quarantine reasons)
EXPECT = {
    "good.csv": ("loaded", None),
    "semicolon.csv": ("unreadable", "looks semicolon-delimited"),
    "truncated.csv": ("loaded", "the file ends in the middle of this row"),
    "unclosed_quote.csv": ("loaded", "a quoted cell is never closed"),
    "mixed_encoding.csv": ("unreadable", "mixes two text encodings: line 2 is UTF-8"),
    "cp1252.csv": ("loaded", None),
    "utf16.csv": ("unreadable", "looks UTF-16 or UTF-32 encoded"),
    "qualtrics_missing_importid.csv": ("unreadable", "the ImportId row"),
    "qualtrics_missing_labels.csv": ("unreadable", "the question-text row"),
    "duplicate_columns.csv": ("refused", "2 times (columns 7, 9)"),
    "second_sheet.xlsx": ("unreadable", "they are on worksheet 'Responses'"),
    "two_sheets.xlsx": ("unreadable", "answers on several worksheets"),
    "day_month_conflict.csv": ("refused", "row(s) 4 read only month-first"),
    "ambiguous_dates.csv": ("refused", "set `date_order: month-first` or `day-first`"),
    "day_first.csv": ("loaded", None),
    "excel_serial.csv": ("loaded", None),
    "last_year_dates.csv": ("refused", "3 of 3 submission dates fall outside the school "
                            "year 2024-25 (2024-07-01 to 2025-06-30)"),
    "some_dates_outside.csv": ("loaded", "outside the school year 2024-25"),
    "bad_sessions.csv": ("loaded", "is not a whole positive number"),
    "huge_cell.csv": ("loaded", "over the limit of 20,000"),
    "session-02_MarisolQuintero.csv": ("loaded", None),
    "invisible_names.csv": ("loaded", None),
    "header_repeated.csv": ("loaded", "repeats the header"),
    "school_variants.csv": ("loaded", "is not in aliases.csv (did you mean 'Lincoln "
                            "Elementary'?)"),
}


def load(name: str, others: raw.OtherYears | None = None, path: Path | None = None):
    path = path or EXPORTS / name
    data = raw.read_file(path, MAPPING, others=others)
    aliases = load_aliases(HERE / "aliases.csv") if name == "school_variants.csv" else None
    staged = staging.stage_year(data.export_files, data.survey_rows, MAPPING, ROSTER,
                                aliases=aliases)
    return data, staged


def test_every_file_is_listed_in_the_readme_and_expected_here():
    files = sorted(p.name for p in EXPORTS.iterdir())
    assert files == sorted(EXPECT)
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    for name in [*files, *(p.name for p in (HERE / "mappings").iterdir())]:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_each_bad_export_gets_its_behaviour_and_every_row_is_counted(name):
    status, needle = EXPECT[name]
    data, staged = load(name)
    entry = data.export_files.iloc[0]
    assert entry["status"] == status, entry["error"]
    texts = [entry["error"] or "", *data.quarantine["reason"], *staged.quarantine["reason"]]
    if needle:
        assert any(needle in t for t in texts), texts
    if status == "unreadable":
        assert len(data.quarantine) == 1 and data.quarantine.iloc[0]["level"] == "file"
        assert "\n" not in entry["error"] and entry["error"].startswith(name)
        return
    # every record: staged, or quarantined (row level) with a reason
    rows_out = pd_rows(data.quarantine) + pd_rows(staged.quarantine)
    respondents = staged.answers["response_id"].nunique()
    assert int(entry["n_records"]) == respondents + rows_out
    if status == "refused":
        assert respondents == 0 and rows_out == int(entry["n_records"]) > 0
        assert data.survey_rows.empty


def pd_rows(quarantine) -> int:
    return int((quarantine["level"] == "row").sum())


def test_dates_are_read_one_way_per_file():
    _, staged = load("day_first.csv")
    assert sorted(staged.answers["submitted_at"].dt.date.astype(str).unique()) == [
        "2024-09-14", "2024-10-03"]                      # 3/10/2024 read day-first too
    _, staged = load("excel_serial.csv")
    assert staged.answers["submitted_at"].min() == datetime(2024, 9, 16, 15, 1, 52)
    _, staged = load("some_dates_outside.csv")
    old = staged.answers[staged.answers["row_number"] == 5]
    assert old["submitted_at"].isna().all() and len(old) == 2   # kept, its time emptied


def test_cp1252_is_decoded_whole():
    data, staged = load("cp1252.csv")
    assert data.export_files.iloc[0]["encoding"] == "cp1252"
    assert "Café talk, “smart” quotes" in set(staged.answers["answer_text"])


def test_session_numbers_must_be_whole_positive_numbers():
    _, staged = load("bad_sessions.csv")
    sessions = dict(zip(staged.answers["row_number"], staged.answers["session_number"],
                        strict=False))
    assert sessions[6] == 3 and sessions[7] == 4
    assert all(sessions[r] is None or str(sessions[r]) == "<NA>" for r in (2, 3, 4, 5, 8))
    flagged = staged.quarantine[staged.quarantine["column_name"] == "Session"]
    assert sorted(flagged["row_number"]) == [2, 3, 4, 5, 8]
    assert set(flagged["level"]) == {"cell"}


def test_a_huge_cell_is_quarantined_alone():
    data, staged = load("huge_cell.csv")
    [cell] = data.quarantine.to_dict("records")
    assert (cell["row_number"], cell["level"]) == (2, "cell")
    assert "25,000 characters" in cell["reason"]
    row2 = staged.answers[staged.answers["row_number"] == 2]
    assert list(row2["question_id"]) == ["improve"]        # the rest of the row is staged
    assert len(staged.answers) == 5


def test_a_name_in_the_file_name_never_leaves_raw():
    data, staged = load("session-02_MarisolQuintero.csv")
    check, scan = FuzzyNameScan(ROSTER), NameScanner(ROSTER)
    for column in ("file_name", "response_id"):
        for value in staged.answers[column].unique():
            assert not check.find(value) and not scan.find(value), value
    assert set(staged.answers["file_name"]) == {"session-02_[External Coach name].csv"}
    assert staged.answers["response_id"].str.startswith(
        "session-02_[External Coach name]-r").all()
    assert set(data.survey_rows["file_name"]) == {"session-02_MarisolQuintero.csv"}   # raw


def test_invisible_characters_do_not_hide_a_name():
    data, staged = load("invisible_names.csv")
    check, scan = FuzzyNameScan(ROSTER), NameScanner(ROSTER)
    for text in staged.answers["answer_text"]:
        assert not check.find(text) and not scan.find(text), text
    originals = set(staged.redactions["original"])
    assert "Mari\u00adsol" in originals and "Quin\u200btero" in originals
    assert "Teodora\u00a0Vasquez-Lind" in originals
    # each span points at exactly those characters of the answer before redaction (cleaned:
    # NFC, trimmed), invisible characters included
    records = {int(n): json.loads(r) for n, r in zip(data.survey_rows["row_number"],
                                                     data.survey_rows["record"], strict=True)}
    column = MAPPING.columns["worked"]
    for r in staged.redactions.itertuples():
        original = staging.clean_text(records[r.row_number][column])
        assert original[r.start:r.end] == r.original


def test_school_and_coach_names_reconciled_through_the_alias_table():
    _, staged = load("school_variants.csv")
    by_row = staged.answers.drop_duplicates("row_number").set_index("row_number")
    lincoln = {by_row.loc[r, "school_id"] for r in (2, 3, 5, 6)}
    assert len(lincoln) == 1 and None not in lincoln              # 4 spellings, one school
    assert by_row.loc[4, "school_id"] is None                      # "Lincon Elementary"
    assert by_row.loc[8, "school_id"] is None                      # unknown school
    assert by_row.loc[7, "coach_id"] == by_row.loc[2, "coach_id"]  # "Ms Q" is the coach
    assert by_row.loc[8, "coach_id"] is None                       # "Marisl"
    reasons = list(staged.quarantine["reason"])
    assert any("'Westgate Elementary' is not in aliases.csv" in r for r in reasons)
    assert any("'Marisl' is neither a roster coach nor an alias in aliases.csv (did you mean "
               "'Marisol Quintero'?)" in r for r in reasons)
    unknown = {n["variant"]: n["canonical"] for n in staged.names if n["status"] == "unknown"}
    assert unknown["Lincon Elementary"] == "Lincoln Elementary"
    assert unknown["Marisl"] == "Marisol Quintero"


def test_without_an_alias_table_spellings_are_suggested_not_merged():
    _, staged = load("no aliases", path=EXPORTS / "school_variants.csv")
    ids = staged.answers.drop_duplicates("row_number").set_index("row_number")["school_id"]
    assert ids.loc[2] == ids.loc[5]                      # same name_key: case and spacing
    assert ids.loc[2] != ids.loc[3]                      # "lincoln elem." kept apart...
    suggested = {n["variant"]: n for n in staged.names if n["field"] == "school"}
    assert suggested["lincoln elem."]["status"] == "variant?"   # ...but suggested for review
    assert suggested["lincoln elem."]["canonical"] == "Lincoln Elementary"


def test_an_export_already_loaded_for_another_year_is_refused_naming_it():
    others = raw.OtherYears(files={raw.file_sha256(EXPORTS / "good.csv"):
                                   ("2023-24", "session-01.csv")})
    data, staged = load("good.csv", others=others)
    assert data.export_files.iloc[0]["status"] == "refused"
    assert set(data.quarantine["reason"]) == {
        f"file refused: the same file (sha256 {raw.file_sha256(EXPORTS / 'good.csv')[:12]}) "
        "was already loaded for 2023-24 as session-01.csv"}
    assert len(data.quarantine) == 3 and staged.answers.empty


@pytest.mark.parametrize("fetched", [False, True])
def test_a_response_id_loaded_for_another_year_is_quarantined_naming_it(tmp_path: Path,
                                                                        fetched: bool):
    """The other years' ids given whole, or fetched for the staged file's ids only (as the
    warehouse gives them: defs/ingestion.loaded_elsewhere), each id in both the forms
    staging may have stored it in."""
    path = tmp_path / "2024-25" / "export.csv"
    path.parent.mkdir()
    path.write_text("Timestamp,ResponseId,Session,What worked from today's coaching session?,"
                    "In what ways can we improve today's coaching session?\n"
                    "2024-09-16 10:00:00,R_old,1,Planning,Time\n"
                    "2024-09-16 10:05:00,R_new,1,Data,More time\n", encoding="utf-8")
    mapping = load_mapping(HERE / "mapping.yaml")
    mapping = type(mapping)(**{**mapping.__dict__, "columns": {
        **{k: None for k in mapping.columns}, "submitted_at": "Timestamp",
        "response_id": "ResponseId", "session": "Session",
        "worked": mapping.columns["worked"], "improve": mapping.columns["improve"]}})
    data = raw.read_file(path, mapping)
    loaded = {"R_old": ("2023-24", "session-03.csv", 17)}
    asked = []

    def fetch(ids: list[str]) -> dict:
        asked.append(ids)
        return {rid: loaded[rid] for rid in ids if rid in loaded}

    others = raw.OtherYears(fetch=fetch, ids_digest="rows of the other years") if fetched \
        else raw.OtherYears(response_ids=loaded)
    staged = staging.stage_year(data.export_files, data.survey_rows, mapping, ROSTER,
                                others=others)
    assert set(staged.answers["response_id"]) == {"R_new"}
    [reason] = staged.quarantine["reason"]
    assert reason == "response id R_old was already loaded for 2023-24 (session-03.csv row 17)"
    assert asked == ([["R_old", withheld_response_id("R_old"),
                       "R_new", withheld_response_id("R_new")]] if fetched else [])


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_symbolic_link_leaving_the_landing_folder_is_refused(tmp_path: Path):
    outside = tmp_path / "secret.csv"
    outside.write_bytes((EXPORTS / "good.csv").read_bytes())
    year = tmp_path / "landing" / "2024-25"
    year.mkdir(parents=True)
    (year / "mapping.yaml").write_text((HERE / "mapping.yaml").read_text())
    (year / "linked.csv").symlink_to(outside)
    (year / "inside.csv").write_bytes((EXPORTS / "good.csv").read_bytes().replace(b"15:02",
                                                                                  b"15:03"))
    (year / "alias-inside.csv").symlink_to(year / "inside.csv")
    data = raw.read_year(year)
    status = dict(zip(data.export_files["file_name"], data.export_files["status"], strict=True))
    # a link inside the landing folder is read; here it is the same bytes as inside.csv, so
    # the second of the two (by name) is refused as a repeat
    assert status == {"linked.csv": "refused", "alias-inside.csv": "loaded",
                      "inside.csv": "refused"}
    reasons = set(data.quarantine[data.quarantine["file_name"] == "linked.csv"]["reason"])
    assert reasons == {"linked.csv: is a symbolic link to a file outside the landing folder; "
                       "not read (copy the file itself into the year folder)"}   # never opened


@pytest.mark.parametrize("name,needle", [
    ("typo_key.yaml", "unknown key(s) at the top level: 'timestamp_fromat' (did you mean "
                      "'timestamp_format'?)"),
    ("typo_field.yaml", "unknown field(s) under columns: 'shool' (did you mean 'school'?)"),
    ("typo_source.yaml", "source 'qualtrix' is not a reader kind (did you mean 'qualtrics'?)"),
    ("bad_yaml.yaml", "invalid YAML at line"),
    ("bad_window.yaml", "submission_window starts (2025-06-30) after it ends (2024-07-01)"),
])
def test_bad_mappings_fail_with_one_line(name, needle):
    with pytest.raises(MappingError) as err:
        load_mapping(HERE / "mappings" / name)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_check_landing_gives_one_line_reasons(tmp_path: Path):
    with pytest.raises(raw.LandingError, match="does not exist"):
        raw.check_landing(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(raw.LandingError, match="holds no school-year folder"):
        raw.check_landing(tmp_path / "empty")
    year = tmp_path / "landing" / "2024-25"
    year.mkdir(parents=True)
    (year / "mapping.yaml").write_text((HERE / "mappings" / "typo_key.yaml").read_text())
    with pytest.raises(MappingError, match="did you mean 'timestamp_format'"):
        raw.check_landing(tmp_path / "landing")
    assert raw.check_landing(tmp_path / "landing", mappings=False) == ["2024-25"]
    elsewhere = tmp_path / "elsewhere" / "2023-24"
    elsewhere.mkdir(parents=True)
    (elsewhere / "mapping.yaml").write_text('school_year: "2023-24"\n')
    (tmp_path / "landing" / "2023-24").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(raw.LandingError, match="outside the landing folder"):
        raw.check_landing(tmp_path / "landing", mappings=False)


def test_a_bad_alias_table_fails_check_landing_with_one_line(tmp_path: Path):
    year = tmp_path / "landing" / "2024-25"
    year.mkdir(parents=True)
    (year / "mapping.yaml").write_text((HERE / "mapping.yaml").read_text())
    (year / "aliases.csv").write_text("field,variant,canonical\nschool,Lincoln Elem,Lincoln\n"
                                      "schol,Park,Park Middle\n")
    with pytest.raises(MappingError) as err:
        raw.check_landing(tmp_path / "landing")
    assert str(err.value).endswith("aliases.csv: row 3: field 'schol' is not one of school, "
                                   "coach")


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_a_kept_read_equals_a_fresh_one(name, tmp_path: Path, monkeypatch):
    """raw.read_file_kept: a loaded file's frames read back from the memo (restamped with
    the new read's time) equal a fresh read; files that did not load are read every time."""
    import pandas as pd

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    first, again = datetime(2026, 1, 1, 9, 0), datetime(2026, 1, 2, 17, 30)
    read = lambda at: raw.read_file_kept(EXPORTS / name, MAPPING, at, raw.OtherYears(),  # noqa: E731
                                         EXPORTS.parent)
    read(first)
    kept = list((tmp_path / "cache" / raw.KEPT_KIND).glob("*.parquet"))
    assert len(kept) == (3 if EXPECT[name][0] == "loaded" else 0)
    fresh = raw.read_file(EXPORTS / name, MAPPING, again, raw.OtherYears(), EXPORTS.parent)
    back = read(again)
    for part in raw.KEPT_PARTS:
        pd.testing.assert_frame_equal(getattr(back, part), getattr(fresh, part))
