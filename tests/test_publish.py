"""The published warehouse (pipeline/core/warehouse/publish.py) on small DuckDB files: every
table and view copied, the manifest, the previous copy kept until the new one is in place, a
reader of the old copy undisturbed by the swap."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import duckdb
import pytest

from pipeline.core.warehouse import publish as pub


def working_file(path: Path, years: tuple[str, ...] = ("2020-21",), version="aaaaaaaaaaaa") -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists staging; create schema if not exists coding; "
                    "create schema if not exists marts")
        con.execute("create or replace table staging.answers (answer_id varchar, school_year varchar)")
        for i, y in enumerate(years):
            con.execute("insert into staging.answers values (?, ?), (?, ?)",
                        [f"a{i}", y, f"b{i}", y])
        con.execute("create or replace table coding.codebook_codes (framework varchar, "
                    "codebook_version varchar)")
        con.execute("insert into coding.codebook_codes values ('scale', ?), ('scale', ?), "
                    "('relational_trust', 'bbbbbbbbbbbb')", [version, version])
        con.execute("create or replace view marts.answers_per_year as select school_year, "
                    "count(*) as n from staging.answers group by 1")
    return path


def test_publish_copies_tables_and_views_and_writes_the_manifest(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb", ("2020-21", "2023-24"))
    out = pub.publish(work, tmp_path / "published", run_id="run-1")
    assert out.path == tmp_path / "published" / "survey.duckdb"
    with duckdb.connect(str(out.path), read_only=True) as con:
        assert con.execute("select * from marts.answers_per_year order by 1").fetchall() == \
            [("2020-21", 2), ("2023-24", 2)]
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest == pub.read_manifest(tmp_path / "published")
    assert manifest["run_id"] == "run-1"
    assert manifest["school_years"] == ["2020-21", "2023-24"]
    assert manifest["codebook_versions"] == {"relational_trust": "bbbbbbbbbbbb",
                                             "scale": "aaaaaaaaaaaa"}
    assert manifest["row_counts"] == {"coding.codebook_codes": 3, "staging.answers": 4}
    assert manifest["views"] == ["marts.answers_per_year"]
    assert manifest["size_bytes"] == out.path.stat().st_size > 0
    assert not stat.S_IMODE(out.path.stat().st_mode) & 0o222, "the copy is read-only"
    assert sorted(p.name for p in out.path.parent.iterdir()) == ["manifest.json", "survey.duckdb"]


def test_a_failed_copy_keeps_the_previous_one(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb")
    first = pub.publish(work, tmp_path / "published", run_id="run-1")
    before = first.path.read_bytes()
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(pub.PublishError, match="could not copy"):
        pub.publish(broken, tmp_path / "published", run_id="run-2")
    assert first.path.read_bytes() == before
    assert pub.read_manifest(tmp_path / "published")["run_id"] == "run-1"
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["manifest.json",
                                                                   "survey.duckdb"]
    with pytest.raises(pub.PublishError, match="nothing to publish"):
        pub.publish(tmp_path / "missing.duckdb", tmp_path / "published")


def test_a_reader_of_the_old_copy_is_not_disturbed_by_the_swap(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb", ("2020-21",))
    target = pub.publish(work, tmp_path / "published").path
    reader = duckdb.connect(str(target), read_only=True)
    try:
        working_file(work, ("2020-21", "2023-24"), version="cccccccccccc")
        pub.publish(work, tmp_path / "published", run_id="run-2")
        # the open connection keeps its snapshot; a new one sees the new copy
        assert reader.execute("select count(*) from staging.answers").fetchone() == (2,)
    finally:
        reader.close()
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select count(*) from staging.answers").fetchone() == (4,)
    assert pub.read_manifest(tmp_path / "published")["codebook_versions"]["scale"] == \
        "cccccccccccc"


def test_leftovers_of_a_killed_publisher_are_removed(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb")
    folder = tmp_path / "published"
    folder.mkdir()
    stale = folder / f"{pub.TMP_PREFIX}99999.survey.duckdb"
    stale.write_bytes(b"half a copy")
    pub.publish(work, folder)
    assert not stale.exists()


def test_nothing_published_yet_reads_as_no_manifest(tmp_path: Path):
    assert pub.read_manifest(tmp_path / "published") is None
    assert not os.path.exists(tmp_path / "published")


def test_the_raw_layer_with_its_names_is_not_published(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb")
    with duckdb.connect(str(work)) as con:
        con.execute("create schema raw; create table raw.survey_rows (record varchar)")
        con.execute("insert into raw.survey_rows values ('{\"coach\": \"Marisol Quintero\"}')")
    out = pub.publish(work, tmp_path / "published", run_id="run-1")
    with duckdb.connect(str(out.path), read_only=True) as con:
        schemas = {s for (s,) in con.execute(
            "select schema_name from duckdb_schemas() where database_name = 'survey'").fetchall()}
    assert "raw" not in schemas and {"staging", "coding", "marts"} <= schemas
    assert not any(name.startswith("raw.") for name in out.manifest["row_counts"])
    assert b"Quintero" not in out.path.read_bytes()
    with duckdb.connect(str(work), read_only=True) as con:   # the working file keeps it
        assert con.execute("select count(*) from raw.survey_rows").fetchone() == (1,)


def test_publishing_from_a_held_connection_and_a_failure_there(tmp_path: Path, monkeypatch):
    """`survey-pipeline run` publishes from a cursor of the connection it holds (`con=`): the
    same copy; a copy that fails halfway leaves that connection as it was (the copy
    detached, its file removed), and the next publication from it works."""
    work = working_file(tmp_path / "survey.duckdb", ("2020-21", "2023-24"))
    with duckdb.connect(str(work)) as held:
        cursor = held.cursor()
        out = pub.publish(work, tmp_path / "published", run_id="run-1", con=cursor)
        assert out.manifest["row_counts"] == {"coding.codebook_codes": 3, "staging.answers": 4}
        real, calls = pub.table_row_counts, []

        def failing(con, catalog):
            calls.append(catalog)
            if len(calls) == 2:
                raise duckdb.IOException("disk full")
            return real(con, catalog)

        monkeypatch.setattr(pub, "table_row_counts", failing)
        with pytest.raises(pub.PublishError, match="disk full"):
            pub.publish(work, tmp_path / "published", run_id="run-2", con=cursor)
        monkeypatch.setattr(pub, "table_row_counts", real)
        attached = {d for (d,) in cursor.execute(
            "select database_name from duckdb_databases() where not internal").fetchall()}
        assert attached == {"survey"}
        assert sorted(p.name for p in out.path.parent.iterdir()) == ["manifest.json",
                                                                     "survey.duckdb"]
        assert pub.read_manifest(tmp_path / "published")["run_id"] == "run-1"
        again = pub.publish(work, tmp_path / "published", run_id="run-3", con=cursor)
        assert again.manifest["run_id"] == "run-3"
    with duckdb.connect(str(again.path), read_only=True) as con:
        assert con.execute("select count(*) from staging.answers").fetchone() == (4,)


def _tables(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name <> 'raw' "
            "order by 1, 2").fetchall()]
        return {n: sorted(con.execute(f"select * from {n}").fetchall(), key=repr) for n in names}


def test_a_copy_brought_up_to_date_replaces_only_the_changed_years(tmp_path: Path):
    """With the same whole-copy key, the previous copy is brought up to date: only the
    changed school years' rows (and a changed table without a school year) are copied, and
    the copy holds what the working file holds. Another key, other definitions or a copy
    grown past the limit: a whole copy."""
    work = working_file(tmp_path / "survey.duckdb", ("2020-21", "2021-22", "2023-24"))
    folder = tmp_path / "published"
    first = pub.publish(work, folder, whole_copy_key="k1")
    assert first.manifest["copied"] == "every table"
    assert first.manifest["full_copy_bytes"] == first.size_bytes
    with duckdb.connect(str(work)) as con:
        con.execute("update staging.answers set answer_id = 'new' where answer_id = 'a2'")
        con.execute("insert into staging.answers values ('c', '2024-25'), ('d', null)")
        con.execute("delete from staging.answers where school_year = '2020-21'")
        con.execute("insert into coding.codebook_codes values ('x', 'dddddddddddd')")
    second = pub.publish(work, folder, whole_copy_key="k1")
    assert sorted(second.manifest["copied"]) == [
        "coding.codebook_codes", "staging.answers [2020-21]", "staging.answers [2023-24]",
        "staging.answers [2024-25]", "staging.answers [None]"]
    assert _tables(second.path) == _tables(work)
    assert second.manifest["full_copy_bytes"] == first.size_bytes
    with duckdb.connect(str(work)) as con:
        con.execute("update staging.answers set answer_id = 'newer' where answer_id = 'new'")
    assert pub.publish(work, folder, whole_copy_key="k1").manifest["copied"] == [
        "staging.answers [2023-24]"]
    assert pub.publish(work, folder, whole_copy_key="k1").manifest["copied"] == []
    assert pub.publish(work, folder, whole_copy_key="k2").manifest["copied"] == "every table"
    assert pub.publish(work, folder).manifest["copied"] == "every table"   # no key
    pub.publish(work, folder, whole_copy_key="k2")
    with duckdb.connect(str(work)) as con:
        con.execute("alter table staging.answers add column note varchar")
        con.execute("create view marts.more as select 1 as one")
    out = pub.publish(work, folder, whole_copy_key="k2")
    assert out.manifest["copied"] == "every table"
    assert _tables(out.path) == _tables(work)
    assert out.manifest["views"] == ["marts.answers_per_year", "marts.more"]


def test_a_copy_grown_past_the_limit_is_made_whole(tmp_path: Path, monkeypatch):
    work = working_file(tmp_path / "survey.duckdb", ("2020-21", "2023-24"))
    folder = tmp_path / "published"
    pub.publish(work, folder, whole_copy_key="k")
    with duckdb.connect(str(work)) as con:
        con.execute("insert into staging.answers values ('c', '2023-24')")
    monkeypatch.setattr(pub, "GROWTH_LIMIT", 1.0)
    monkeypatch.setattr(pub, "GROWTH_SLACK", 0)
    assert pub.publish(work, folder, whole_copy_key="k").manifest["copied"] != "every table"
    with duckdb.connect(str(work)) as con:
        con.execute("insert into staging.answers select 'd' || range, '2023-24' from range(50000)")
    out = pub.publish(work, folder, whole_copy_key="k")
    assert out.manifest["copied"] == "every table"
    assert _tables(out.path) == _tables(work)


def test_an_unreadable_manifest_means_a_whole_copy(tmp_path: Path):
    work = working_file(tmp_path / "survey.duckdb", ("2020-21", "2023-24"))
    folder = tmp_path / "published"
    pub.publish(work, folder, whole_copy_key="k")
    (folder / "manifest.json").write_text("[not json")
    out = pub.publish(work, folder, whole_copy_key="k")
    assert out.manifest["copied"] == "every table"
    (folder / "manifest.json").write_text("[1, 2]")
    assert pub.publish(work, folder, whole_copy_key="k").manifest["copied"] == "every table"
