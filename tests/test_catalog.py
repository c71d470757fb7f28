"""The table catalog (pipeline/core/warehouse/catalog.py) is the one declaration of every warehouse table:
the DDL, the empty frames, the pandera models, the contract checks and warehouse/README.md's
column tables all come from it or are checked against it here."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.core.coding import codebook, sheet_validation
from pipeline.core.coding import keyword as coding
from pipeline.core.ingest import raw
from pipeline.core.marts import marts, quotes, year_comparison
from pipeline.core.reconciliation import adjudications, discrepancies, final_codes
from pipeline.core.suggest import quality
from pipeline.core.warehouse import catalog
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import views as views_module
from pipeline.defs import contracts
from pipeline.schemas import MODELS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "warehouse" / "README.md"


# ----------------------------------------------------------------------------- DDL

def _information_schema(con) -> list[tuple]:
    return con.execute(
        "select table_schema || '.' || table_name, column_name, data_type, is_nullable "
        "from information_schema.columns where table_schema in ('raw', 'staging', 'coding', "
        "'marts') and table_name in (select table_name from information_schema.tables "
        "where table_type = 'BASE TABLE') order by table_schema, table_name, ordinal_position"
    ).fetchall()


def test_a_fresh_warehouse_has_exactly_the_catalogs_tables_columns_types_and_nullability(
        tmp_path):
    with wh.connect(tmp_path / "survey.duckdb") as con:
        wh.ensure_tables(con)
        actual = _information_schema(con)
    expected = [(t.name, col.name, col.type, "YES" if col.nullable else "NO")
                for t in sorted(catalog.TABLES.values(), key=lambda t: t.name)
                for col in t.columns]
    assert actual == expected


def test_tables_ddl_and_column_names_come_from_the_catalog():
    assert set(wh.TABLES) == set(catalog.TABLES)
    for name in catalog.TABLES:
        assert wh.TABLES[name] == catalog.ddl(name)
        assert wh.column_names(name) == catalog.columns(name)
    assert set(marts.MART_TABLES) == {n for n in catalog.TABLES if n.startswith("marts.")}


def test_register_table_only_accepts_the_catalogs_columns():
    for name, ddl in marts.MART_TABLES.items():
        wh.register_table(name, ddl)      # what an old caller does: a no-op
    with pytest.raises(ValueError, match="differ from the catalog"):
        wh.register_table("marts.by_coach", "level VARCHAR, extra INTEGER")


def test_empty_frames_are_typed_and_load_into_the_warehouse(tmp_path):
    with wh.connect(tmp_path / "survey.duckdb") as con:
        for name in catalog.TABLES:
            frame = wh.empty_frame(name)
            assert list(frame.columns) == catalog.columns(name) and frame.empty
            for col in catalog.table(name).columns:
                if col.type in ("INTEGER", "BIGINT", "DOUBLE"):
                    assert pd.api.types.is_numeric_dtype(frame[col.name]), (name, col.name)
            wh.replace_rows(con, name, frame)
            assert wh.read_frame(con, name).empty



def test_read_columns_reads_in_an_order_of_the_rows_own(tmp_path):
    """read_columns: the columns asked for (None: all), the rows sorted by `order_by` whatever
    order they were written in, the catalog's empty frame for a table not built yet."""
    with wh.connect(tmp_path / "survey.duckdb") as con:
        assert list(wh.read_columns(con, "marts.by_coach", None).columns) == \
            catalog.columns("marts.by_coach")
        assert list(wh.read_columns(con, "marts.by_coach", ["coach_id", "level"]).columns) == \
            ["coach_id", "level"]
        con.execute("create schema t")
        con.execute("create table t.x as select * from (values ('scale', 'c'), "
                    "('scale', 'a'), ('rt', 'b')) v(framework, code_id)")
        got = wh.read_columns(con, "t.x", ["framework", "code_id"],
                              where={"framework": "scale"}, order_by="all")
        assert got.values.tolist() == [["scale", "a"], ["scale", "c"]]
        assert wh.read_columns(con, "t.x", None, order_by="code_id")["code_id"].tolist() == \
            ["a", "b", "c"]


# ----------------------------------------------------------------------------- column lists

@pytest.mark.parametrize(("listed", "table"), [
    (raw.EXPORT_FILE_COLUMNS, "raw.export_files"),
    (raw.SURVEY_ROW_COLUMNS, "raw.survey_rows"),
    (raw.QUARANTINE_COLUMNS, "raw.quarantine"),
    (coding.APPLICATION_COLUMNS, "coding.code_applications"),
    (coding.KEYWORD_COLUMNS, "coding.keyword_applications"),
    (coding.HUMAN_COLUMNS, "coding.human_applications"),
    (codebook.CODES_COLUMNS, "coding.codebook_codes"),
    (sheet_validation.UNIT_COLUMNS, "coding.coder_units"),
    (sheet_validation.QUARANTINE_COLUMNS, "coding.sheet_quarantine"),
    (discrepancies.DISCREPANCY_COLUMNS, "coding.discrepancies"),
    (adjudications.ADJUDICATION_COLUMNS, "coding.adjudications"),
    (adjudications.PROBLEM_COLUMNS, "coding.adjudication_problems"),
    (final_codes.FINAL_COLUMNS, "coding.final_codes"),
    (quality.QUALITY_COLUMNS, "coding.suggestion_quality"),
    (year_comparison.YOY_COLUMNS, "marts.year_over_year"),
    (quotes.QUOTE_COLUMNS, "marts.exemplar_quotes"),
])
def test_column_lists_of_core_modules_equal_the_catalogs(listed, table):
    # these modules are imported by the catalog (for their allowed values) or write their
    # frames before the catalog is importable there: their lists stay, and must agree
    assert list(listed) == catalog.columns(table)


def test_the_catalogs_views_are_the_views_created():
    assert {n: v.query_file for n, v in catalog.VIEWS.items()} == views_module.VIEWS
    assert all(v.description for v in catalog.VIEWS.values())


# ----------------------------------------------------------------------------- models

def test_every_table_has_a_pandera_model_and_a_contract_check():
    assert set(MODELS) == set(catalog.TABLES)
    for name, model in MODELS.items():
        schema = model.to_schema()
        assert list(schema.columns) == catalog.columns(name)
        for col in catalog.table(name).columns:
            assert schema.columns[col.name].nullable == col.null_ok
    checked = {c.table for c in contracts.CONTRACTS} | set(contracts.VALIDATED_BEFORE_WRITE)
    assert checked == set(catalog.TABLES)
    assert not {c.table for c in contracts.CONTRACTS} & set(contracts.VALIDATED_BEFORE_WRITE)


def test_every_table_has_a_description_and_every_column_a_meaning():
    for t in catalog.TABLES.values():
        assert t.description, t.name
        assert all(col.description for col in t.columns), t.name
        assert t.partition in (None, "school_year")


def test_every_table_a_defs_module_writes_is_in_the_catalog_with_its_writer_checked():
    written = set()
    for path in (ROOT / "pipeline" / "defs").glob("*.py"):
        written |= set(re.findall(r'replace_rows\(\s*con,\s*"([a-z_]+\.[a-z_]+)"',
                                  path.read_text()))
    assert written, "no replace_rows call found"
    assert written <= set(catalog.TABLES)


def _final_codes(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "answer_id": [f"A{i:012x}" for i in range(n)], "school_year": "2020-21",
        "question_id": "worked", "framework": "scale", "dimension": "depth",
        "code_id": "collaboration", "provenance": "agreed", "decided_by": "a+b",
        "discrepancy_id": None})


@pytest.fixture
def final_codes_db(tmp_path):
    path = tmp_path / "survey.duckdb"

    def write(frame: pd.DataFrame) -> Path:
        with wh.connect(path) as con:
            wh.replace_rows(con, "coding.final_codes", frame)
        return path
    return write


FINAL = next(c for c in contracts.CONTRACTS if c.table == "coding.final_codes")


def _run(path: Path, contract=FINAL, partition_key=None) -> dg.AssetCheckResult:
    with wh.connect(path, read_only=True) as con:
        return contracts.contract_result(contract, con, partition_key)


def test_contract_passes_on_good_rows(final_codes_db):
    result = _run(final_codes_db(_final_codes()))
    assert result.passed and result.metadata["n_rows"].value == 3


def test_a_pass_is_reused_only_while_the_slice_holds_the_same_rows(final_codes_db, tmp_path):
    """With the result cache: validated, then reused on the same rows; a changed row is
    validated again (and a change back too: one pass kept per slice); a failure is never
    kept."""
    from pipeline.core.result_cache import ResultCache

    cache = ResultCache(tmp_path / "passes")

    def run(path):
        with wh.connect(path, read_only=True) as con:
            result = contracts.contract_result(FINAL, con, None, cache)
        return result.passed, result.metadata["reused"].value, result.metadata["n_rows"].value

    good = _final_codes()
    path = final_codes_db(good)
    assert run(path) == (True, False, 3)
    assert run(path) == (True, True, 3)
    edited = good.assign(decided_by=["a+c", "a+b", "a+b"])
    assert run(final_codes_db(edited)) == (True, False, 3)
    assert run(final_codes_db(good)) == (True, False, 3)   # one kept pass per slice
    bad = good.assign(provenance=["agreed", "guessed", "agreed"])
    assert run(final_codes_db(bad))[:2] == (False, False)
    assert run(final_codes_db(bad))[:2] == (False, False)


def test_a_year_keyed_by_answer_is_validated_session_by_session(tmp_path):
    """A table whose key holds the answer (coding.final_codes) is validated per session of the
    year: a refresh that changes one session validates that session's rows only; a bad row
    fails whichever session holds it; rows of answers not staged in the year are validated on
    every run."""
    from pipeline.core.result_cache import ResultCache

    cache = ResultCache(tmp_path / "passes")
    path = tmp_path / "survey.duckdb"
    good = _final_codes(6)
    staged = pd.DataFrame({"answer_id": good["answer_id"], "school_year": "2020-21",
                           "session_number": [1, 1, 2, 2, None, 3]})
    with duckdb.connect(str(path)) as con:
        con.execute("create schema staging")
        con.register("frame", staged)
        con.execute("create table staging.answers as select * from frame")

    def run(frame):
        with wh.connect(path) as con:
            wh.replace_rows(con, "coding.final_codes", frame)
        with wh.connect(path, read_only=True) as con:
            result = contracts.contract_result(FINAL, con, "2020-21", cache)
        m = result.metadata
        return (result.passed, m["sessions_validated"].value, m["sessions_reused"].value,
                m["n_rows"].value)

    assert run(good) == (True, 4, 0, 6)        # sessions 1, 2, 3 and the one without a number
    assert run(good) == (True, 0, 4, 6)
    edited = good.assign(decided_by=["a+b", "a+b", "a+c", "a+b", "a+b", "a+b"])
    assert run(edited) == (True, 1, 3, 6)      # session 2 only
    bad = edited.assign(provenance=["agreed"] * 5 + ["guessed"])
    assert run(bad)[:2] == (False, 1)          # session 3's row
    assert run(bad)[:2] == (False, 1)          # a failure is never kept
    assert run(edited) == (True, 0, 4, 6)      # session 3 as it was: its pass still kept
    stray = pd.concat([edited, _final_codes(1).assign(answer_id="Anotstaged",
                                                      provenance="guessed")])
    assert run(stray)[:2] == (False, 0)        # not staged: validated every run, and fails
    assert run(stray.iloc[:-1])[:3] == (True, 0, 4)


@pytest.mark.parametrize(("change", "rule"), [
    (lambda f: f.assign(code_id=[None, "collaboration", "trust"]), "not_nullable"),
    (lambda f: f.assign(answer_id=f["answer_id"].iloc[0]), "unique"),
    (lambda f: f.assign(provenance=["agreed", "guessed", "agreed"]), "isin"),
    (lambda f: f.assign(school_year="2020/21"), "matches"),
], ids=["null in a NOT NULL column", "duplicate key", "value outside the allowed set",
        "pattern"])
def test_contract_fails_on_bad_rows_naming_rule_and_rows(final_codes_db, change, rule):
    bad = change(_final_codes())
    if rule == "not_nullable":
        # the DDL itself refuses the null: the contract must too, on a frame
        with pytest.raises(duckdb.ConstraintException):
            final_codes_db(bad)
        with pytest.raises(pa.errors.SchemaErrors, match="not_nullable|nullable"):
            catalog.model("coding.final_codes").validate(bad, lazy=True)
        return
    result = _run(final_codes_db(bad))
    assert not result.passed
    rules = result.metadata["failing_rules"].value
    assert any(rule in str(r["check"]) or rule in str(r["column"]) or
               (rule == "unique" and "unique" in str(r)) for r in rules), rules
    assert result.metadata["failing_rows_sample"].value


def test_contract_of_a_partitioned_writer_checks_its_year_and_slice_only(tmp_path):
    contract = next(c for c in contracts.CONTRACTS
                    if c.table == "raw.quarantine" and c.asset == "staging/answers")
    rows = pd.DataFrame({
        "school_year": ["2020-21", "2023-24", "2020-21"], "file_name": "s.csv",
        "row_number": [3, 4, 5], "column_name": None, "stage": ["stage", "stage", "read"],
        "level": ["row", "bogus", "bogus"], "reason": "x", "quarantined_at": None})
    path = tmp_path / "survey.duckdb"
    with wh.connect(path) as con:
        wh.replace_rows(con, "raw.quarantine", rows)
    assert _run(path, contract, "2020-21").passed       # the bad rows are another slice
    assert not _run(path, contract, "2023-24").passed


def test_contract_checks_are_blocking_in_the_warehouse_pool_and_execute(tmp_path):
    by_key = {}
    for check_def in contracts.checks:
        for spec in check_def.check_specs:
            assert spec.blocking
            by_key[(spec.asset_key.to_user_string(), spec.name)] = check_def
        assert check_def.node_def.pool == "warehouse"
    assert len(by_key) == len(contracts.CONTRACTS)
    # run one through Dagster against a warehouse holding a bad row
    path = tmp_path / "survey.duckdb"
    with wh.connect(path) as con:
        wh.replace_rows(con, "coding.final_codes", _final_codes().assign(provenance="guessed"))
    check_def = by_key[("coding/final_codes", "coding_final_codes_contract")]
    # coding/final_codes is a school-year partition: its contract checks its year
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])

    @dg.asset(key=dg.AssetKey(["coding", "final_codes"]), partitions_def=contracts.school_years)
    def final_codes_stub() -> None: ...

    result = dg.materialize(
        [final_codes_stub, check_def],
        instance=instance,  # the stub and the check run, the stub writes nothing
        partition_key="2020-21",
        resources={"warehouse": contracts.Warehouse(path=str(path), wait_seconds=1)},
        raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.check_name == "coding_final_codes_contract"


# ----------------------------------------------------------------------------- README

def test_readme_holds_the_catalogs_generated_column_tables():
    generated = catalog.markdown()
    text = README.read_text(encoding="utf-8")
    assert generated in text, ("warehouse/README.md is out of date: regenerate its column "
                               "tables with `python -m pipeline.core.warehouse.catalog --markdown`")
    for t in catalog.TABLES.values():
        for col in t.columns:
            assert f"| {col.name} | {col.type} |" in text, (t.name, col.name)


def test_markdown_cli(capsys):
    assert catalog.main(["--markdown"]) == 0
    assert capsys.readouterr().out == catalog.markdown()
    assert catalog.main([]) == 2


def test_partitioned_writers_and_their_contract_checks_run_together_and_pass(tiny_landing):
    """In one partitioned run the asset writes, then its checks read the year's slice
    read-only (no deadlock with the writer, which has closed its connection)."""
    from pipeline.defs import ingestion
    from tests.helpers import make_resources

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    assets = dg.load_assets_from_modules([ingestion])
    keys = [dg.AssetKey(["raw", "survey_rows"]), dg.AssetKey(["staging", "answers"])]
    mine = [c for c in contracts.checks
            if any(s.asset_key in keys for s in c.check_specs)]
    result = dg.materialize([*assets, *mine], instance=instance, partition_key="2020-21",
                            selection=dg.AssetSelection.assets(*keys)
                            | dg.AssetSelection.checks(*mine),
                            resources=make_resources(tiny_landing, wait_seconds=5))
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()
                   if e.check_name.endswith("_contract")}
    assert set(evaluations) == {"raw_export_files_contract", "raw_quarantine_contract",
                                "raw_redactions_contract"}
    assert all(e.passed for e in evaluations.values())
    assert evaluations["raw_redactions_contract"].metadata["n_rows"].value > 0
