"""table_record: a table is current only while it holds the rows recorded for the same inputs."""

from __future__ import annotations

import duckdb

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse import table_record


def test_a_table_is_current_only_with_the_recorded_rows_for_the_same_key(tmp_path):
    cache = ResultCache(tmp_path / "kept")
    con = duckdb.connect()
    con.execute("create schema coding")
    assert not table_record.is_current(con, cache, "a" * 64, "coding.t")   # no table, no record
    con.execute("create table coding.t as select * from range(5) r(x)")
    assert not table_record.is_current(con, cache, "a" * 64, "coding.t")   # no record
    table_record.record(con, cache, "a" * 64, "coding.t")
    assert table_record.is_current(con, cache, "a" * 64, "coding.t")
    assert not table_record.is_current(con, cache, "b" * 64, "coding.t")   # other inputs
    assert not table_record.is_current(con, None, "a" * 64, "coding.t")    # no cache
    con.execute("update coding.t set x = 7 where x = 3")                   # written by another
    assert not table_record.is_current(con, cache, "a" * 64, "coding.t")
    con.execute("update coding.t set x = 3 where x = 7")
    assert table_record.is_current(con, cache, "a" * 64, "coding.t")
    for f in (tmp_path / "kept").glob("*.bin"):
        f.write_bytes(f.read_bytes()[:-2])                                  # damaged record
    assert not table_record.is_current(con, cache, "a" * 64, "coding.t")
    table_record.record(con, cache, "a" * 64, "coding.t")
    assert table_record.is_current(con, cache, "a" * 64, "coding.t")
    con.execute("drop table coding.t")
    assert not table_record.is_current(con, cache, "a" * 64, "coding.t")   # table gone


def test_the_all_years_keys_hold_on_a_warehouse_without_coder_units():
    """coding/agreement and coding/keyword_quality run before any coder sheet was imported:
    their keys say the units are missing instead of failing."""
    import pandas as pd

    from pipeline.core.warehouse import connection as wh
    from pipeline.defs.reconciliation import AgreementConfig, agreement_key, keyword_quality_key

    con = duckdb.connect()
    wh.ensure_tables(con, ["staging.answers", "coding.keyword_applications"])
    codes = pd.DataFrame({"framework": ["scale"], "dimension": ["depth"],
                          "code_id": ["collaboration"]})
    assert agreement_key(con, codes, AgreementConfig()) != keyword_quality_key(con, codes)
    wh.ensure_tables(con, ["coding.coder_units"])
    assert agreement_key(con, codes, AgreementConfig()) == agreement_key(con, codes,
                                                                         AgreementConfig())


def test_a_query_on_a_table_not_built_yet_counts_as_missing():
    from pipeline.core.warehouse.fingerprint import queries_fingerprint

    con = duckdb.connect()
    con.execute("create schema coding")
    before = queries_fingerprint(con, "select * from coding.t", ("select ? as x", [1]))
    con.execute("create table coding.t as select 1 as x")
    after = queries_fingerprint(con, "select * from coding.t", ("select ? as x", [1]))
    assert before != after
    assert after == queries_fingerprint(con, "select * from coding.t", ("select ? as x", [1]))
    assert after != queries_fingerprint(con, "select * from coding.t", ("select ? as x", [2]))
