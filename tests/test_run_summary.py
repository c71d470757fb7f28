"""The end of `survey-pipeline run` (pipeline/cli/summary.py): where everything landed and
what needs a human next; a failed check's reason and failing rows in the terminal."""

from __future__ import annotations

import dagster as dg

from pipeline.cli.summary import check_descriptions, check_detail_lines, run_summary_lines
from tests import exchange_data as data


def test_the_summary_says_what_was_built_and_what_is_left(tmp_path):
    warehouse = data.build(tmp_path / "survey.duckdb")
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("findings.html", "coded_answers.xlsx", "coded_answers.csv", "codebooks.qdc"):
        (reports / name).write_text("x", encoding="utf-8")
    lines = run_summary_lines(["2020-21", "2024-25"], warehouse, reports, tmp_path / "coding")
    text = "\n".join(lines)
    assert "school years built: 2020-21, 2024-25" in text
    assert "answers: 4 (2020-21: 3, 2024-25: 1)" in text
    assert "quarantined rows: 1 (1 from the exports, 0 from the coder sheets, 0 from the " \
           "adjudications); list them: survey-pipeline quarantine" in text
    assert f"discrepancies left to decide: 1 of 3 -> {reports / 'discrepancy_queue.xlsx'}" in text
    assert f"report: {reports / 'findings.html'}" in text
    assert f"coded answers: {reports / 'coded_answers.xlsx'}, {reports / 'coded_answers.csv'}" \
        in text
    assert f"REFI-QDA (NVivo, ATLAS.ti, MAXQDA, QualCoder): {reports / 'codebooks.qdc'}" in text
    assert f"warehouse: {warehouse}" in text


def test_a_failed_check_prints_its_reason_and_rows():
    @dg.asset(check_specs=[dg.AssetCheckSpec("rows_valid", asset="scores")])
    def scores():
        bad = "| row | reason |\n|---|---|\n| 7 | score -3 is below 0 |"
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name="rows_valid", passed=False, description="scores must be 0 or more",
            metadata={"failing": 1, "sample": dg.MetadataValue.md(bad)})])

    @dg.asset(check_specs=[dg.AssetCheckSpec("fine", asset="other")])
    def other():
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name="fine", passed=True)])

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([scores, other], instance=instance, raise_on_error=False)
    lines = check_detail_lines(["scores:rows_valid"], 1, instance=instance,
                               descriptions={"scores:rows_valid": "every score is valid"})
    assert lines[0] == "scores:rows_valid: every score is valid; scores must be 0 or more"
    assert "  failing: 1" in lines
    assert "    | 7 | score -3 is below 0 |" in lines
    assert check_detail_lines([], 1, instance=instance) == []
    # survey-pipeline run hands over its runs' evaluations instead: the same lines
    evaluations = result.get_asset_check_evaluations()
    assert check_detail_lines(["scores:rows_valid"], 1, instance=instance,
                              descriptions={"scores:rows_valid": "every score is valid"},
                              evaluations=evaluations) == lines


def test_check_descriptions_come_from_the_definitions():
    got = check_descriptions(["coding/agreement:alpha_above_threshold", "nope:nothing"])
    assert list(got) == ["coding/agreement:alpha_above_threshold"]
    assert "alpha" in got["coding/agreement:alpha_above_threshold"]
