"""A real browser on the real UI: headless Chromium opens the raw group's lineage view
and the rendered page (a single-page app: it renders after its GraphQL calls return) shows
every raw asset as a node of the graph.

Uses the webserver shared with tests/test_webserver.py (tests/ui_server.py). Chromium is Debian's
package (.ci/run installs it); without /usr/bin/chromium the test is skipped, saying so.
"""

from __future__ import annotations

import html
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.ui_server import UIServer, ui_server

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,900"]
LINEAGE = "/locations/pipeline.definitions/asset-groups/{group}/lineage"
GRAPH_NODE = re.compile(r"<foreignObject\b[^>]*>(.*?)</foreignObject>", re.S)  # nodes in the SVG
GROUP_ASSETS = """
query GroupAssets { assetNodes { assetKey { path } groupName } }
"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is absent (apt-get install chromium; "
                                       ".ci/run does it)")


def chromium(url: str, *args: str, budget_ms: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}",
             f"--virtual-time-budget={budget_ms}", *args, url],
            capture_output=True, text=True, timeout=120)


def node_texts(dom: str) -> list[str]:
    """The visible text of each node drawn in the lineage graph (SVG foreignObjects)."""
    texts = (re.sub(r"<[^>]+>", " ", block) for block in GRAPH_NODE.findall(dom))
    return [" ".join(html.unescape(t).split()) for t in texts]


def drawn(name: str, texts: list[str]) -> bool:
    return any(re.search(rf"(^|\s){re.escape(name)}(\s|$)", text) for text in texts)


def render(url: str, names: set[str]) -> tuple[list[str], str]:
    """Dump the rendered DOM; retried with more time while the app is still loading."""
    texts, dom = [], ""
    for budget_ms in (10_000, 20_000, 40_000):
        dom = chromium(url, "--dump-dom", budget_ms=budget_ms).stdout
        texts = node_texts(dom)
        if all(drawn(n, texts) for n in names):
            break
    return texts, dom


@pytest.fixture(scope="module")
def server() -> UIServer:
    return ui_server()


def test_lineage_view_shows_the_raw_assets(server: UIServer, tmp_path_factory):
    nodes = server.graphql(GROUP_ASSETS)["assetNodes"]
    # the graph labels a node with the last part of its key (raw/survey_rows -> survey_rows)
    expected = {n["assetKey"]["path"][-1] for n in nodes if n["groupName"] == "raw"}
    assert {"survey_rows", "year_retirements"} <= expected
    url = server.url + LINEAGE.format(group="raw")
    texts, dom = render(url, expected)
    missing = sorted(n for n in expected if not drawn(n, texts))
    assert not missing, f"not drawn in the lineage graph: {missing}; nodes drawn: {texts}"
    assert re.search(r"<title[^>]*>[^<]*raw", dom), "not the group page"
    shot = tmp_path_factory.mktemp("ui") / "lineage-raw.png"
    chromium(url, f"--screenshot={shot}", budget_ms=15_000)
    assert shot.exists() and shot.stat().st_size > 10_000, "no screenshot of the lineage view"
    print(f"screenshot: {shot}")
