"""Issue 15.1 with real processes: analysts read warehouse/published/survey.duckdb in a loop
while `survey-pipeline run` refreshes; no read fails, the run is not held up, and every snapshot
a reader sees reconciles (marts against final codes, quotes against staged answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import GF_HEADER, ROOT

READER = r"""
import json, sys, time, duckdb
from pathlib import Path
from pipeline.core.marts.marts import reconcile_marts_with_final_codes

path, stop = sys.argv[1], Path(sys.argv[2])
seen, failures, attempts = {}, [], 0
while not stop.exists():
    attempts += 1
    try:
        with duckdb.connect(path, read_only=True) as con:
            freq = con.execute("select * from marts.code_frequencies").df()
            final = con.execute("select * from coding.final_codes").df()
            answers = con.execute("select * from staging.answers").df()
            bad_marts = len(reconcile_marts_with_final_codes(freq, final, answers))
            bad_quotes = con.execute(
                "select count(*) from marts.exemplar_quotes q left join staging.answers a "
                "using (answer_id) where a.answer_id is null "
                "or trim(a.answer_text) <> q.quote").fetchone()[0]
            view_rows = con.execute("select count(*) from marts.top_codes_by_year").fetchone()[0]
        key = str(len(answers))
        s = seen.setdefault(key, {"reads": 0, "bad_marts": 0, "bad_quotes": 0, "views": 0})
        s["reads"] += 1
        s["bad_marts"] += bad_marts
        s["bad_quotes"] += bad_quotes
        s["views"] += view_rows > 0
    except Exception as exc:  # every failure is recorded, none expected
        failures.append(f"{type(exc).__name__}: {exc}")
    time.sleep(0.05)
print(json.dumps({"attempts": attempts, "failures": failures, "seen": seen}))
"""

SESSION_2 = "\r\n".join([
    GF_HEADER,
    '10/05/2020 15:02:11,e@x.org,Lincoln Elementary,Marisol Okafor,Teacher,'
    '"The coaching helped us plan lessons together and use student data.","More time to '
    'practice"',
    '10/05/2020 15:04:00,f@x.org,Park Middle,Marisol Okafor,Teacher,'
    '"Clear feedback on my questioning techniques","Shorter sessions"',
    '10/05/2020 15:06:00,g@x.org,Park Middle,Marisol Okafor,Principal,'
    '"We collaborated on the improvement plan","Follow up sooner"',
]) + "\r\n"


def env_for(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(SURVEY_LANDING_DIR=str(root / "landing"), SURVEY_ROSTER=str(root / "roster.csv"),
               SURVEY_WAREHOUSE=str(root / "wh" / "survey.duckdb"),
               SURVEY_CODER_SHEETS=str(root / "no-sheets"), SURVEY_REPORTS=str(root / "reports"),
               PYTHONPATH=str(ROOT))
    return env


def run_pipeline(root: Path) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).parent / "survey-pipeline"
    return subprocess.run([str(cli), "run", "--log-level", "WARNING"], env=env_for(root),
                          capture_output=True, text=True, timeout=900)


def test_readers_of_the_published_copy_never_fail_and_always_see_a_consistent_state(
        tiny_landing: Path):
    root = tiny_landing
    first = run_pipeline(root)
    assert first.returncode == 0, first.stderr
    published = root / "wh" / "published" / "survey.duckdb"
    assert published.exists()
    # a second export arrives; a reader loops on the published copy during the refresh
    (root / "landing" / "2020-21" / "session-02.csv").write_bytes(SESSION_2.encode())
    stop = root / "stop-reading"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(published), str(stop)],
                              env=env_for(root), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        second = run_pipeline(root)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert second.returncode == 0, second.stderr
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert result["failures"] == []
    assert result["attempts"] >= 20
    # both the previous and the new copy were read, each whole and reconciled
    assert set(result["seen"]) == {"5", "11"}, result["seen"]   # 3 rows x 2 questions more
    for snapshot in result["seen"].values():
        assert snapshot["bad_marts"] == 0 and snapshot["bad_quotes"] == 0
        assert snapshot["views"] == snapshot["reads"]
    manifest = json.loads((published.parent / "manifest.json").read_text())
    assert manifest["row_counts"]["staging.answers"] == 11
