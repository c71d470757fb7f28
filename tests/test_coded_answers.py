"""marts.coded_answers (warehouse/queries/13_coded_answers.sql) and the workbook written from
it (pipeline.core.exchange.coded_answers): content per answer, filters, frozen header and no
cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv

import duckdb
import openpyxl
import pytest

from pipeline.core.exchange.coded_answers import COLUMNS, read_coded_answers, write_coded_answers
from tests import exchange_data as data

FORMULA_START = ("=", "+", "-", "@")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = data.build(tmp_path_factory.mktemp("wh") / "survey.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        return read_coded_answers(con)


def test_one_row_per_answer_with_labels_categories_provenance_evidence(rows):
    assert list(rows.columns) == list(COLUMNS)
    assert list(rows["answer_id"]) == [data.A, data.C, data.B, data.D]   # year, worked first
    by = rows.set_index("answer_id")
    a = by.loc[data.A]
    assert (a["n_codes"], a["codes"], a["categories"], a["provenance"], a["decided_by"]) == (
        1, "Collaboration", "Depth", "agreed", "jm+ak")
    assert a["evidence"] == 'Collaboration: "collaborated"'
    assert a["undecided"] == "Knowledgeable"       # the coders disagree, not decided yet
    b = by.loc[data.B]
    assert (b["codes"], b["provenance"], b["decided_by"]) == (
        "time allocated", "adjudicated", "Lead researcher")
    assert b["question"] == "In what ways can we improve today's coaching session?"
    d = by.loc[data.D]
    assert (d["codes"], d["provenance"]) == ("Our practice", "machine: trained suggestion")
    assert d["evidence"] == 'Our practice: "We changed our practice."'
    c = by.loc[data.C]
    assert (c["n_codes"], c["codes"], bool(c["non_substantive"])) == (0, "", True)


def test_workbook_has_filters_a_frozen_header_and_no_live_formula(rows, tmp_path):
    xlsx, csv_path = tmp_path / "coded_answers.xlsx", tmp_path / "coded_answers.csv"
    counts = write_coded_answers(rows, xlsx, csv_path)
    assert counts == {"answers": 4, "coded_answers": 3, "codes": 3, "with_undecided": 1}
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["coded answers"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(row=1, column=len(COLUMNS)).column_letter}5"
    assert [c.value for c in ws[1]] == list(COLUMNS)
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert all(c.data_type != "f" for c in cells)
    risky = [c for c in cells if isinstance(c.value, str) and c.value.startswith(FORMULA_START)]
    assert {c.value for c in risky} == {data.TEXT_1, "=more time please"}
    assert all(c.quotePrefix for c in risky)          # shown and kept as text by Excel
    n_codes = [c for c in ws[1] if c.value == "n_codes"][0].column
    assert [ws.cell(row=r, column=n_codes).value for r in range(2, 6)] == [1, 0, 1, 1]
    assert "columns" in wb.sheetnames

    with csv_path.open(encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == list(COLUMNS) and len(table) == 5
    assert not any(v.startswith(FORMULA_START) for r in table for v in r)
    text = table[0].index("answer_text")
    assert table[1][text] == "'" + data.TEXT_1


def test_a_warehouse_built_before_dimension_label_gets_the_column(tmp_path):
    """Views are created on warehouses built by an older catalog: the nullable column added
    since is added (null until the codebook stage rewrites its rows) and the view works."""
    from pipeline.core.warehouse import connection as wh
    from pipeline.core.warehouse import views

    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        old = wh.TABLES["coding.codebook_codes"].replace(', "dimension_label" VARCHAR', "")
        assert "dimension_label" not in old
        con.execute("create schema coding")
        con.execute(f"create table coding.codebook_codes ({old})")
        views.create_views(con)
        assert "dimension_label" in wh.table_columns(con, "coding.codebook_codes")
        assert con.execute("select count(*) from marts.coded_answers").fetchone() == (0,)
