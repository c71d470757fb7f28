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
    assert {"ingestion", "coding", "reconciliation", "marts"} <= groups
