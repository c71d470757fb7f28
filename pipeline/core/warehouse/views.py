"""SQL views for the questions analysts ask most, created from warehouse/queries/*.sql so the
files stay the single source (each file also runs on its own).

Not here: the union views of the catalog (`catalog.UNION_VIEWS`, e.g. coding.code_applications
= coding.keyword_applications + coding.human_applications), generated from the tables'
columns and created with those tables by `connection.ensure_tables`, so they exist as soon as
the tables do (these analyst views are created by the marts asset, after everything else)."""

from __future__ import annotations

from pathlib import Path

QUERIES = Path(__file__).resolve().parents[3] / "warehouse" / "queries"

# view name -> query file. Not views: queries that take a SET VARIABLE parameter, and
# 07 (it reads raw.quarantine, whose cells may quote raw text: raw layer only).
VIEWS = {
    "marts.top_codes_by_year": "01_top_codes_by_year.sql",
    "marts.codes_that_grew": "02_codes_that_grew.sql",
    "marts.agreement_by_code": "03_agreement_by_code.sql",
    "marts.answers_with_no_code": "05_answers_with_no_code.sql",
    "marts.unresolved_discrepancies": "06_unresolved_discrepancies.sql",
    "marts.keyword_precision_by_code": "08_keyword_precision_by_code.sql",
    "marts.coding_source_by_year": "10_coding_source_by_year.sql",
    "marts.coded_answers": "13_coded_answers.sql",
}


def view_sql(file_name: str) -> str:
    return (QUERIES / file_name).read_text(encoding="utf-8").strip().rstrip(";")


def create_views(con) -> list[str]:
    """(Re)create the views; every warehouse table they read is created first if a stage has
    not built it yet, so a view never fails on a missing table."""
    from pipeline.core.warehouse.connection import ensure_tables

    ensure_tables(con)
    for name, file_name in VIEWS.items():
        con.execute(f"create or replace view {name} as {view_sql(file_name)}")
    return list(VIEWS)
