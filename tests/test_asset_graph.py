"""The asset graph as a snapshot: keys, groups, upstream deps, checks (with blocking), partitions.

A change of lineage is a visible diff of tests/snapshots/asset_graph.json, reviewed like code.
After an intended change, regenerate it:

    SNAPSHOT_UPDATE=1 .venv/bin/pytest tests/test_asset_graph.py

Runs on the Definitions object itself: no webserver (tests/test_webserver.py checks what the UI
serves).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from pipeline.definitions import build_defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    repo = build_defs().get_repository_def()
    graph = repo.asset_graph
    blocking = {}
    for checks_def in repo.asset_checks_defs_by_key.values():
        for spec in checks_def.check_specs:
            blocking[spec.key] = spec.blocking
    for assets_def in repo.assets_defs_by_key.values():
        for spec in assets_def.check_specs:
            blocking[spec.key] = spec.blocking
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "checks": {c.name: ("blocking" if blocking.get(c) else "non-blocking")
                       for c in sorted(node.check_keys, key=lambda c: c.name)},
        }
    return out


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("SNAPSHOT_UPDATE") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    added = sorted(set(current) - set(expected))
    removed = sorted(set(expected) - set(current))
    assert not added and not removed, f"assets added {added}, removed {removed}"
    changed = {k: {"expected": expected[k], "now": current[k]} for k in current
               if current[k] != expected[k]}
    assert not changed, json.dumps(changed, indent=1)


def test_snapshot_sees_every_stage():
    groups = {v["group"] for v in json.loads(SNAPSHOT.read_text()).values()}
    assert {"exports", "codebooks", "raw", "staging", "coding", "marts", "reports",
            "warehouse"} <= groups


def test_every_asset_group_is_its_key_prefix():
    """One key scheme: an asset's group is the first part of its key (docs/architecture.md,
    Names), for every asset of the Definitions, external ones included."""
    graph = build_defs().get_repository_def().asset_graph
    keys = list(graph.get_all_asset_keys())
    assert keys
    wrong = {key.to_user_string(): graph.get(key).group_name for key in keys
             if graph.get(key).group_name != key.path[0]}
    assert not wrong, f"group is not the key's prefix: {wrong}"


# assets in a warehouse schema's group that write files, not a table of their key's name
FILE_ASSETS = {"coding/next_cycle_coder_sheets"}


def test_an_asset_in_a_schema_group_is_named_after_its_table():
    """The prefix of an asset that writes a table is the table's schema: an asset grouped under
    raw, staging, coding or marts is the catalog table of its key (coding/final_codes writes
    coding.final_codes), and a table's contract check sits on an asset of that schema, or on
    staging/answers for the raw audit rows it writes (raw.redactions, stage-level quarantine)."""
    from pipeline.core.warehouse import catalog
    from pipeline.defs.contracts import CONTRACTS

    graph = build_defs().get_repository_def().asset_graph
    schemas = {t.schema for t in catalog.TABLES.values()}
    not_tables = [k.to_user_string() for k in graph.get_all_asset_keys()
                  if graph.get(k).is_materializable and k.path[0] in schemas
                  and ".".join(k.path) not in catalog.TABLES
                  and k.to_user_string() not in FILE_ASSETS]
    assert not not_tables, not_tables
    wrong = [(c.table, c.asset) for c in CONTRACTS
             if c.asset_key.path[0] != c.table.split(".")[0]
             and (c.asset, c.table) not in {("staging/answers", "raw.redactions"),
                                            ("staging/answers", "raw.quarantine")}]
    assert not wrong, wrong


def test_external_assets_feed_the_assets_that_read_them():
    """The files the pipeline reads are in the lineage: the yearly exports upstream of
    raw/survey_rows (same school-year partitions), the coders' sheets and the adjudication file
    upstream of the assets reading them, the codebooks upstream of every Codebooks user."""
    graph = build_defs().get_repository_def().asset_graph

    def parents(key: str) -> set[str]:
        return {p.to_user_string()
                for p in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}

    for key in ("exports/survey_exports", "exports/coder_sheets", "exports/adjudications",
                "codebooks/yaml_files"):
        assert not graph.get(dg.AssetKey.from_user_string(key)).is_materializable, key
    assert "exports/survey_exports" in parents("raw/survey_rows")
    assert graph.get(dg.AssetKey.from_user_string("exports/survey_exports")).partitions_def \
        is not None
    assert "exports/coder_sheets" in parents("coding/human_applications")
    assert "exports/adjudications" in parents("coding/adjudications")
    assert "exports/adjudications" in parents("coding/final_codes")
    for key in ("coding/keyword_applications", "coding/human_applications", "coding/agreement",
                "coding/final_codes", "marts/code_frequencies", "reports/findings"):
        assert "codebooks/yaml_files" in parents(key), key
        assert "coding/codebook_codes" not in parents(key), key
