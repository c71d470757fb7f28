"""The Codebooks resource (parsed once per folder content, what every consumer reads) and the
two applications tables with their union view coding.code_applications (docs/architecture.md,
"What the graph says, and why")."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.core.warehouse import catalog
from pipeline.core.warehouse import connection as wh
from pipeline.defs import resources
from pipeline.defs.resources import Codebooks
from tests.helpers import ROOT

DEFS = ROOT / "pipeline" / "defs"


def test_codebooks_are_parsed_once_per_content(tmp_path, monkeypatch):
    folder = tmp_path / "codebooks"
    shutil.copytree(ROOT / "codebooks", folder)
    calls = []
    real = resources.load_codebooks

    def counting(files):
        calls.append(list(files))
        return real(files)

    monkeypatch.setattr(resources, "load_codebooks", counting)
    monkeypatch.setattr(resources, "_LOADED", {})
    books = Codebooks(codebook_dir=str(folder))
    first = books.load()
    assert books.load() is first                           # cached: same objects
    assert Codebooks(codebook_dir=str(folder)).load() is first   # another instance, same run
    assert len(calls) == 1
    assert set(books.versions()) == {b.framework for b in first}
    assert books.codes_frame()["code_id"].is_unique
    # an edited codebook has a new content hash: parsed again, its new version visible
    path = sorted(folder.glob("*.yaml"))[0]
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    second = books.load()
    assert len(calls) == 2 and second is not first
    assert {b.version for b in second} != {b.version for b in first}


def test_no_asset_reads_the_codebook_files_itself():
    """Only the resource loads codebooks in the Dagster layer: an asset that parsed the YAML
    itself would read them outside what the graph shows (codebooks/yaml_files)."""
    offenders = [p.name for p in DEFS.glob("*.py") if p.name != "resources.py"
                 and re.search(r"\bload_codebooks\(", p.read_text(encoding="utf-8"))]
    assert not offenders


def _apps(kind: str, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({
        "answer_id": [f"A{i:012x}" for i in range(n)], "school_year": "2020-21",
        "question_id": "worked", "coder": "keyword" if kind == "keyword" else "coder_a",
        "coder_kind": kind, "framework": "scale", "dimension": "depth",
        "code_id": "collaboration"})
    if kind == "keyword":
        frame["codebook_version"], frame["n_evidence"], frame["evidence"] = "abc", 1, "[]"
    else:
        frame["note"], frame["source_file"], frame["source_row"] = "ok", "coder_a.xlsx", 2
    return frame


def test_the_view_unions_both_tables_with_typed_nulls(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        wh.replace_rows(con, "coding.keyword_applications", _apps("keyword", 3))
        wh.replace_rows(con, "coding.human_applications", _apps("human", 2))
        view = wh.read_frame(con, "coding.code_applications")
        assert list(view.columns) == catalog.columns("coding.code_applications")
        assert view.groupby("coder_kind").size().to_dict() == {"human": 2, "keyword": 3}
        assert view.loc[view["coder_kind"] == "keyword", "note"].isna().all()
        assert view.loc[view["coder_kind"] == "human", "evidence"].isna().all()
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_schema = 'coding'").fetchall())
        assert kinds["code_applications"] == "VIEW"


def test_the_view_reads_as_empty_before_anything_is_written(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    with wh.connect(path, read_only=True) as con:
        frame = wh.read_frame(con, "coding.code_applications")
    assert frame.empty and list(frame.columns) == catalog.columns("coding.code_applications")


def test_an_old_single_table_is_split_into_the_two(tmp_path):
    """A warehouse built before the split: its coding.code_applications table is split by
    coder_kind into the two tables, then replaced by the view."""
    old = pd.concat([_apps("keyword", 3), _apps("human", 2)], ignore_index=True)
    old = old.reindex(columns=catalog.columns("coding.code_applications"))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema coding")
        con.register("_old", old)
        con.execute("create table coding.code_applications as select * from _old")
        con.unregister("_old")
        wh.ensure_tables(con, ["coding.keyword_applications"])
        assert con.execute("select count(*) from coding.keyword_applications").fetchone() == (3,)
        assert con.execute("select count(*) from coding.human_applications").fetchone() == (2,)
        assert con.execute("select count(*) from coding.code_applications").fetchone() == (5,)
        assert con.execute("select table_type from information_schema.tables where "
                           "table_name = 'code_applications'").fetchone() == ("VIEW",)
        notes = con.execute("select note from coding.human_applications").fetchall()
    assert notes == [("ok",), ("ok",)]


def test_retirement_deletes_the_year_from_both_tables(tmp_path):
    from pipeline.core.ingest import years

    tables = {t.table for t in years.year_tables()}
    assert {"coding.keyword_applications", "coding.human_applications"} <= tables
    assert "coding.code_applications" not in tables
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        wh.ensure_tables(con)
        wh.replace_rows(con, "coding.keyword_applications", _apps("keyword", 3))
        wh.replace_rows(con, "coding.human_applications", _apps("human", 2))
        row = years.retire_year(con, "2020-21", years.COMMAND)
        assert con.execute("select count(*) from coding.code_applications").fetchone() == (0,)
    deleted = row["rows_deleted"]
    deleted = deleted if isinstance(deleted, dict) else __import__("json").loads(deleted)
    assert deleted["coding.keyword_applications"] == 3
    assert deleted["coding.human_applications"] == 2


def test_each_applications_table_accepts_only_its_kind():
    keyword = catalog.model("coding.keyword_applications")
    human = catalog.model("coding.human_applications")
    keyword.validate(_apps("keyword", 2))
    human.validate(_apps("human", 2))
    for model, wrong in ((keyword, _apps("keyword", 2).assign(coder_kind="human")),
                         (human, _apps("human", 2).assign(coder_kind="keyword"))):
        try:
            model.validate(wrong)
        except Exception as exc:  # noqa: BLE001 - pandera's SchemaError
            assert "coder_kind" in str(exc)
        else:
            raise AssertionError("a row of the other coder kind passed the contract")


def test_contract_checks_cover_both_tables():
    from pipeline.defs.contracts import CONTRACTS

    written = {(c.table, c.asset) for c in CONTRACTS}
    assert ("coding.keyword_applications", "coding/keyword_applications") in written
    assert ("coding.human_applications", "coding/human_applications") in written
    assert not any(c.table == "coding.code_applications" for c in CONTRACTS)


def test_sources_never_name_a_file_after_a_person(tmp_path):
    """The observations of coder sheets carry the staging label, not the file name."""
    from pipeline.core.privacy.redact import load_roster
    from pipeline.defs.sources import CODER_SHEET_FILES, file_observations
    from tests.helpers import SAMPLE

    roster = load_roster(str(SAMPLE / "roster.csv"))
    first, last = pd.read_csv(SAMPLE / "roster.csv")["full_name"].iloc[0].split()[:2]
    sheet = tmp_path / f"codes_{first}{last}.csv"
    sheet.write_text("answer_id,code\n", encoding="utf-8")
    (obs,) = file_observations(CODER_SHEET_FILES, [sheet], roster)
    label = obs.metadata["file"].value
    assert first.lower() not in label.lower() and last.lower() not in label.lower()
    assert obs.metadata["sha256"].value == __import__("hashlib").sha256(
        sheet.read_bytes()).hexdigest()


def test_paths_have_no_codebook_folder_of_their_own():
    """One source for the codebook folder: the Codebooks resource."""
    assert "codebook_dir" not in resources.ProjectPaths.model_fields
    assert Path(resources.default_resources()["codebooks"].codebook_dir).name


def test_export_observations_carry_the_staging_label_not_the_file_name():
    """exports/survey_exports[year] observations: one per raw.export_files row, labelled as
    staging labels the file (a person's name in the file name never leaves raw)."""
    from pipeline.core.privacy.redact import load_roster
    from pipeline.defs.sources import SURVEY_EXPORTS, export_file_observations
    from tests.helpers import SAMPLE

    roster = load_roster(str(SAMPLE / "roster.csv"))
    first, last = pd.read_csv(SAMPLE / "roster.csv")["full_name"].iloc[0].split()[:2]
    files = pd.DataFrame({
        "file_name": [f"session-02_{first}{last}.csv", "session-03.csv"],
        "file_sha256": ["ab" * 32, "cd" * 32], "status": ["loaded", "refused"],
        "reader": ["google_forms", None], "n_rows": [12, None], "n_records": [12, 4],
        "n_problems": [0, 4]})
    named, plain = export_file_observations(files, roster, "2020-21")
    assert named.asset_key == SURVEY_EXPORTS and named.partition == "2020-21"
    label = named.metadata["file"].value
    assert first.lower() not in label.lower() and last.lower() not in label.lower()
    assert named.metadata["sha256"].value == "ab" * 32
    assert (named.metadata["rows"].value, named.metadata["reader"].value) == (12, "google_forms")
    assert plain.metadata["file"].value == "session-03.csv"
    assert (plain.metadata["status"].value, plain.metadata["rows"].value) == ("refused", 0)
