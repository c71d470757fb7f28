"""Names typed by coders (notes) and adjudicators (reasons) never leave the raw inputs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipeline.core.ingest.ids import answer_id
from pipeline.definitions import build_defs
from pipeline.runner import materialize_all
from tests.helpers import make_resources
from tests.privacy import names_outside_raw


def test_notes_and_reasons_are_redacted(tiny_landing: Path):
    root = tiny_landing
    sheets = root / "coding"
    sheets.mkdir()
    a1 = answer_id("2020-21", "session-01-r2", "worked")
    for coder, note in (("coder_a", "Marisol Okafor said so in the debrief"), ("coder_b", "")):
        code = "Follow the process" if coder == "coder_a" else "Coaching support"
        (sheets / f"{coder}.csv").write_text(
            "answer_id,framework,category,code,note\n"
            f"{a1},Scale,Sustainability,{code},{note}\n", encoding="utf-8")
    resources = make_resources(root, coder_sheets_dir=sheets)
    defs = build_defs(resources)
    instance = dg.DagsterInstance.ephemeral()
    summary = materialize_all(defs, str(root / "landing"), instance=instance,
                              echo=lambda _: None)
    assert summary.success and summary.failed_checks == []
    # adjudicate the queue with a reason that names a colleague, then re-run
    queue = (root / "reports" / "discrepancy_queue.csv").read_text(encoding="utf-8-sig")
    header, *rows = queue.splitlines()
    assert rows, "the two coders disagree on two codes"
    filled = [header] + [r.rsplit(",", 3)[0] + ",apply,Vasquez-Lind and Okafor agreed,jm"
                         for r in rows]
    (sheets / "adjudications.csv").write_text("\n".join(filled) + "\n", encoding="utf-8")
    summary = materialize_all(defs, str(root / "landing"), instance=instance,
                              echo=lambda _: None)
    assert summary.success and summary.failed_checks == []
    reports = root / "reports"
    hits = names_outside_raw(root / "wh.duckdb", root / "roster.csv",
                             [reports / "discrepancy_queue.csv", reports / "findings.md",
                              reports / "findings.html"])
    assert hits == []
    import duckdb
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        notes = con.execute("select note from coding.code_applications "
                            "where coder = 'coder_a'").fetchall()
        reasons = con.execute("select distinct reason from coding.adjudications").fetchall()
        provenance = con.execute("select distinct provenance from coding.final_codes "
                                 "where answer_id = ?", [a1]).fetchall()
    assert notes == [("[External Coach name] said so in the debrief",)]
    assert reasons == [("[Name] and [External Coach name] agreed",)]
    assert provenance == [("adjudicated",)]
