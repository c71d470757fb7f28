"""Every asset on a tiny landing with no coder sheets: the keyword codes stand in for final
codes, the marts count them, and the report says so."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from pipeline.definitions import build_defs
from pipeline.runner import materialize_all
from tests.conftest import make_resources


def test_years_without_human_coding_use_keyword_codes(tiny_landing: Path):
    root = tiny_landing
    resources = make_resources(root, coder_sheets_dir=root / "no-sheets")
    summary = materialize_all(build_defs(resources), str(root / "landing"),
                              instance=dg.DagsterInstance.ephemeral(), echo=lambda _: None)
    assert summary.success and summary.failed_checks == []
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        final = con.execute("select provenance, decided_by, code_id from coding.final_codes "
                            "order by code_id").fetchall()
        keyword = con.execute("select code_id from coding.code_applications "
                              "where coder = 'keyword' order by code_id").fetchall()
        sources = con.execute("select distinct coding_source from marts.code_frequencies "
                              "where n_answers > 0").fetchall()
        assert con.execute("select count(*) from coding.agreement").fetchone() == (0,)
    assert final and {(p, d) for p, d, _ in final} == {("keyword", "keyword coder")}
    assert [c for *_, c in final] == [c for (c,) in keyword]
    assert {"collaboration", "time_allocated", "follow_the_process"} <= {c for (c,) in keyword}
    assert sources == [("keyword",)]
    html = (root / "reports" / "findings.html").read_text(encoding="utf-8")
    assert 'class="note keyword-standin" data-year="2020-21"' in html


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
