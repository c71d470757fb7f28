"""A refresh of one school year gives the same warehouse as a full rebuild (issue 14.2).

The sample as a study mid-cycle: the coders' sheets cover 2020-21 only (2023-24 is coded by the
suggester, trained on 2020-21), and 2023-24's last session (session-09) arrives after a full
build. Warehouse A: full build without session-09, then session-09 lands and what the landing
sensor and the all-years automation run: one run of every school-year asset for 2023-24 (the
sensor's `school_year_refresh` job, which includes the year's suggestions and suggestion
quality: both are school-year partitions), then the all-years assets. Warehouse B: a full build
with every session. Every table of A equals B's (tools/compare_warehouses.py), so a refresh
that recomputes only 2023-24's suggestion quality (its own cross-validation folds) leaves
2020-21's rows as a full build makes them.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import dagster as dg
import openpyxl

from pipeline.definitions import build_defs
from pipeline.defs.coding import KEYWORD
from pipeline.defs.ingestion import ANSWERS, RAW_ROWS
from pipeline.defs.reconciliation import ADJUDICATIONS, AGREEMENT, FINAL, HUMAN, QUALITY
from pipeline.defs.suggestions import SUGGESTION_QUALITY, SUGGESTIONS
from pipeline.runner import materialize_all, run_order, sync_partitions
from tests.helpers import SAMPLE, make_resources
from tools.compare_warehouses import RUN_TIMES, compare
from tools.sample.synth_coding import staged_answers

LATE = "session-09.csv"
LATE_YEAR = "2023-24"


def _study(root: Path) -> Path:
    """The sample with the coders' sheets cut to 2020-21 (one CSV per coder)."""
    shutil.copytree(SAMPLE / "landing", root / "landing")
    shutil.copy(SAMPLE / "roster.csv", root / "roster.csv")
    (root / "coding").mkdir()
    shutil.copy(SAMPLE / "coding" / "adjudications.csv", root / "coding" / "adjudications.csv")
    answers = staged_answers(SAMPLE)
    first_year = set(answers.loc[answers["school_year"] == "2020-21", "answer_id"])
    wb = openpyxl.load_workbook(SAMPLE / "coding" / "coder_sheets.xlsx", read_only=True)
    for ws in wb.worksheets:
        if ws.title.startswith("_"):
            continue
        rows = [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]
        kept = [r for r in rows[1:] if r and r[0] in first_year]
        with (root / "coding" / f"{ws.title}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([rows[0], *kept])
    wb.close()
    return root


def _defs(root: Path):
    resources = make_resources(root)
    return build_defs(resources), resources


def _refresh_year(root: Path, year: str) -> dict[dg.AssetKey, dict]:
    """What the sensor requests (every school-year asset of `year`, one run), then the
    all-years automation (the unpartitioned assets downstream of them); returns each
    materialised asset's metadata."""
    defs, _resources = _defs(root)  # bound to the assets by build_defs
    repo = defs.get_repository_def()
    assets = list({id(a): a for a in [*repo.assets_defs_by_key.values(),
                                      *repo.asset_checks_defs_by_key.values()]}.values())
    _before, partitioned, after = run_order(repo.asset_graph)
    assert SUGGESTION_QUALITY in partitioned  # the year's refresh recomputes its quality
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, ["2020-21", year])
    metadata: dict[dg.AssetKey, dict] = {}
    for selection, key in ((partitioned, year), (after, None)):
        result = dg.materialize(assets, instance=instance, selection=selection,
                                partition_key=key, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        for e in result.get_asset_materialization_events():
            metadata.setdefault(e.asset_key, {}).update(
                {k: v.value for k, v in e.materialization.metadata.items()})
    return metadata


def _full(root: Path) -> None:
    defs, _resources = _defs(root)
    summary = materialize_all(defs, str(root / "landing"),
                              instance=dg.DagsterInstance.ephemeral(),
                              echo=lambda _line: None, log_level="WARNING")
    assert summary.success


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:   # docProps/core.xml of a workbook holds its creation time
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


def test_refreshing_one_year_equals_a_full_rebuild(tmp_path, monkeypatch):
    """Also the files written from pieces kept in the result cache (REFI-QDA sources per
    session, the coded answers' rows and name check per year): the refresh renders the new
    session's sources and keeps every other session's, and its files equal those of the full
    build, which starts from an empty cache."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache-a"))
    incremental = _study(tmp_path / "a")
    late = incremental / "landing" / LATE_YEAR / LATE
    held = tmp_path / LATE
    shutil.move(late, held)
    _full(incremental)
    pieces = tmp_path / "cache-a" / "results" / "refi_qda"
    def kept() -> set[str]:   # the document's parts (not the source files' or findings')
        return {p.name for p in pieces.glob("*.bin") if "." not in p.name.split("--")[0]}

    before = kept()
    sessions = {f"2020-21-session-{n}" for n in range(1, 5)} | \
        {f"{LATE_YEAR}-session-{n}" for n in range(1, 9)}
    assert {n.split("--")[0] for n in before} == sessions
    shutil.move(held, late)
    refreshed = _refresh_year(incremental, LATE_YEAR)
    # sessions 1-8: their rows left in the tables (only their state replayed); 9 staged
    assert refreshed[ANSWERS]["files_kept"] == 8
    assert refreshed[ANSWERS]["files_replayed"] == 0
    assert 0 < refreshed[ANSWERS]["answers_written"] < refreshed[ANSWERS]["dagster/row_count"]
    assert refreshed[RAW_ROWS]["files_rows_kept"] == 8   # session 9's raw rows written alone
    # the keyword codes and the suggestions: the new session's only, the others kept
    assert refreshed[KEYWORD]["sessions_coded"] == [f"{LATE_YEAR} session 9"]
    assert refreshed[SUGGESTIONS]["sessions_suggested"] == [f"{LATE_YEAR} session 9"]
    assert refreshed[SUGGESTIONS]["sessions_kept"] == 8
    # 2023-24 nobody coded: its final codes are the suggestions', the new session's written
    assert refreshed[FINAL]["sessions_computed"] == [f"{LATE_YEAR} session 9"]
    # nobody coded session 9 yet: the agreement figures are the table's already
    assert refreshed[AGREEMENT]["reused"] is True
    assert refreshed[QUALITY]["reused"] is True
    assert refreshed[ADJUDICATIONS]["reused"] is True   # the file is not read again
    assert refreshed[HUMAN]["reused"] is True   # the sheets' import: no sheet row read back
    assert refreshed[SUGGESTION_QUALITY]["reused"] is True   # its coded answers unchanged
    after = kept()
    assert [n.split("--")[0] for n in after - before] == [f"{LATE_YEAR}-session-9"]  # new
    assert after & before == before   # every other session's piece kept, its year's too

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache-b"))
    full = _study(tmp_path / "b")
    _full(full)

    problems = compare(str(incremental / "wh.duckdb"), str(full / "wh.duckdb"),
                       set(RUN_TIMES) | {"staged_at"})
    assert problems == []
    a, b = incremental / "reports", full / "reports"
    for name in ("project.qdpx", "codebooks.qdc", "coded_answers.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _members(a / "coded_answers.xlsx") == _members(b / "coded_answers.xlsx")
