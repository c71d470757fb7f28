"""Every asset on a tiny landing with no coder sheets: a machine stands in for the final
codes (the suggestions when coding.suggestions has the year, else the keyword coder), the marts
count them with the year's coding source, and the report says so."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.core.warehouse import connection as wh
from pipeline.definitions import build_defs
from pipeline.defs import coding, ingestion, marts, reconciliation, report
from pipeline.defs.coding import KEYWORD
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import Warehouse
from pipeline.runner import materialize_all
from tests.helpers import make_resources

SUGGESTIONS = dg.AssetKey(["coding", "suggestions"])
SUGGESTION_QUALITY = dg.AssetKey(["coding", "suggestion_quality"])


def stub_defs(resources: dict, source: str | None) -> dg.Definitions:
    """The pipeline with stand-ins for the suggestion assets, so these tests do not run the
    embedding model: coding/suggestions writes the keyword coder's codes as suggestions of
    `source` ('zero_shot' / 'trained'), or nothing when `source` is None."""

    @dg.asset(key=SUGGESTIONS, deps=[ANSWERS, KEYWORD], pool="warehouse",
              partitions_def=school_years)
    def suggestions(context, warehouse: Warehouse) -> None:
        year = {"school_year": context.partition_key}
        with warehouse.connect(context.log) as con:
            kw = wh.read_frame(con, "coding.keyword_applications", year)
            rows = kw.assign(probability=0.9, source=source, evidence_text=None,
                             evidence_start=None, evidence_end=None,
                             model_sha256="0123456789ab" + "f" * 52)
            wh.replace_rows(con, "coding.suggestions",
                            rows if source else wh.empty_frame("coding.suggestions"), year)

    @dg.asset(key=SUGGESTION_QUALITY, deps=[SUGGESTIONS], pool="warehouse")
    def suggestion_quality(context, warehouse: Warehouse) -> None:
        with warehouse.connect(context.log) as con:
            wh.replace_rows(con, "coding.suggestion_quality",
                            wh.empty_frame("coding.suggestion_quality"))

    assets = dg.load_assets_from_modules([ingestion, coding, reconciliation, marts, report])
    return dg.Definitions(assets=[*assets, suggestions, suggestion_quality],
                          resources=resources)


def run(root: Path, source: str | None) -> None:
    resources = make_resources(root, coder_sheets_dir=root / "no-sheets")
    summary = materialize_all(stub_defs(resources, source), str(root / "landing"),
                              instance=dg.DagsterInstance.ephemeral(), echo=lambda _: None)
    assert summary.success and summary.failed_checks == []


def test_years_without_human_coding_use_keyword_codes(tiny_landing: Path):
    """No suggestions in the warehouse: the keyword coder stands in, as before."""
    root = tiny_landing
    run(root, None)
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        final = con.execute("select provenance, decided_by, code_id from coding.final_codes "
                            "order by code_id").fetchall()
        keyword = con.execute("select code_id from coding.code_applications "
                              "where coder = 'keyword' order by code_id").fetchall()
        sources = con.execute("select distinct coding_source from marts.code_frequencies "
                              "where n_answers > 0").fetchall()
        assert con.execute("select count(*) from coding.agreement").fetchone() == (0,)
        assert con.execute("select count(*) from coding.suggestions").fetchone() == (0,)
    assert final and {(p, d) for p, d, _ in final} == {("keyword", "keyword coder")}
    assert [c for *_, c in final] == [c for (c,) in keyword]
    assert {"collaboration", "time_allocated", "follow_the_process"} <= {c for (c,) in keyword}
    assert sources == [("keyword",)]
    html = (root / "reports" / "findings.html").read_text(encoding="utf-8")
    assert 'class="note keyword-standin" data-year="2020-21"' in html


@pytest.mark.parametrize("source", ["zero_shot", "trained"])
def test_years_without_human_coding_use_the_suggestions(tiny_landing: Path, source: str):
    root = tiny_landing
    run(root, source)
    provenance = f"{source}_suggestion"
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        final = con.execute("select distinct provenance, decided_by from coding.final_codes"
                            ).fetchall()
        n_final = con.execute("select count(*) from coding.final_codes").fetchone()[0]
        n_suggested = con.execute("select count(*) from coding.suggestions").fetchone()[0]
        sources = con.execute("select distinct coding_source from marts.code_frequencies"
                              ).fetchall()
        by_year = con.execute("select school_year, coding_source "
                              "from marts.coding_source_by_year").fetchall()
        yoy = con.execute("select count(*) from marts.year_over_year").fetchone()
        quote = con.execute("select provenance, reason from marts.exemplar_quotes limit 1"
                            ).fetchone()
    assert final == [(provenance, "suggester 0123456789ab")]
    assert n_final == n_suggested > 0
    assert sources == [(provenance,)] and by_year == [("2020-21", provenance)]
    assert yoy == (0,)   # one school year: nothing to compare
    model = {"zero_shot": "zero-shot", "trained": "trained"}[source]
    assert quote[0] == provenance and f"suggested by the {model} model" in quote[1]
    html = (root / "reports" / "findings.html").read_text(encoding="utf-8")
    assert ('class="note suggestion-standin" data-year="2020-21" '
            f'data-coding-source="{provenance}"') in html
    assert f"codes suggested by the {model} model standing in for the two researchers" in html
    assert f'class="machine-coded" data-year="2020-21" data-coding-source="{provenance}"' in html


def test_build_defs_wires_the_suggestions_into_the_final_codes():
    graph = build_defs().get_repository_def().asset_graph
    assert SUGGESTIONS in graph.get(dg.AssetKey(["coding", "final_codes"])).parent_keys
    assert SUGGESTION_QUALITY in graph.get(dg.AssetKey(["reports", "findings"])).parent_keys


def test_all_years_assets_do_not_need_the_published_codebook_table(tiny_landing: Path):
    """Under `make dev` the automation may build the all-years assets before
    coding/codebook_codes: they read the codebook from its YAML source."""
    from pipeline.runner import run_order, sync_partitions

    root = tiny_landing
    defs = build_defs(make_resources(root, coder_sheets_dir=root / "no-sheets"))
    repo = defs.get_repository_def()
    before, partitioned, after = run_order(repo.asset_graph)
    assets = list({id(a): a for a in repo.assets_defs_by_key.values()}.values())
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, ["2020-21"])
    assert dg.materialize(assets, instance=instance, selection=partitioned,
                          partition_key="2020-21").success
    result = dg.materialize(assets, instance=instance, selection=after)   # no codebook table
    assert result.success
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.code_frequencies "
                           "where n_answers > 0").fetchone()[0] > 0
        # never published in this run: the views created it empty
        assert con.execute("select count(*) from coding.codebook_codes").fetchone() == (0,)
