"""Shared fixtures (helpers live in tests/helpers.py), and the test levels: tests that build a
warehouse through Dagster, serve the UI or load the embedding model are marked `slow`, browser
tests `browser`; `make test-fast` runs the rest (the pure core's unit tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROSTER, SESSION_1, write_landing

SLOW_MODULES = {
    "test_automation", "test_catalog", "test_checks_expectations", "test_checks_privacy",
    "test_cli_run", "test_coding_assets", "test_ingestion_assets", "test_keyword_standin",
    "test_privacy_sheets", "test_sample_end_to_end", "test_suggest", "test_suggest_assets",
    "test_warehouse_lock", "test_webserver", "test_asset_graph", "test_jupyter_ux",
    "test_synth_coding", "test_matcher_batch", "test_cli_code", "test_coder_sheets",
    "test_run_summary",
    "test_incremental",
    "test_run_recovery", "test_published_readers", "test_crash_recovery", "test_publish_asset",
}
BROWSER_MODULES = {"test_ui_browser", "test_report_browser"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1]
        if name in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        elif name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny_landing(tmp_path: Path) -> Path:
    write_landing(tmp_path, {"session-01.csv": SESSION_1})
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return tmp_path
