"""Helpers that turn the pure validators (pandera models, GX suites) into check results."""


import dagster as dg
import pandas as pd
import pandera.pandas as pa

from pipeline.core.result_cache import ResultCache
from pipeline.expectations import ERROR, Batch, run_batches
from pipeline.schemas import failure_summary, validate


def pandera_result(check_name: str, model: type[pa.DataFrameModel], frame: pd.DataFrame,
                   asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    try:
        validate(model, frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        summary = failure_summary(exc)
        return dg.AssetCheckResult(
            check_name=check_name, asset_key=asset_key, passed=False,
            metadata={"n_rows": len(frame), "n_failures": summary["n_failures"],
                      "failing_rules": dg.MetadataValue.json(summary["failing_rules"]),
                      "failing_rows_sample": dg.MetadataValue.json(summary["sample"])},
        )
    return dg.AssetCheckResult(check_name=check_name, asset_key=asset_key, passed=True,
                               metadata={"n_rows": len(frame), "model": model.__name__})


def gx_result(check_name: str, suite_name: str, batches: list[Batch], asset_key: dg.AssetKey,
              docs_dir: str | None = None, cache: ResultCache | None = None
              ) -> dg.AssetCheckResult:
    """A GX run as a check result: fails on any failed expectation, with ERROR severity when
    one of them is an error-level expectation, WARN when all failures are judgement calls.
    `cache`: the outcome of the same inputs is reused (run_batches); `reused` says so."""
    outcome = run_batches(suite_name, batches, docs_dir, cache)
    severity = (dg.AssetCheckSeverity.ERROR if outcome.severity == ERROR
                else dg.AssetCheckSeverity.WARN)
    metadata = {"suite": suite_name,
                **{b.name + "_rows": len(b.frame) for b in batches},
                **outcome.statistics,
                "reused": outcome.reused,
                "failed_expectations": dg.MetadataValue.json(outcome.failed)}
    if outcome.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(outcome.docs_url)
    return dg.AssetCheckResult(check_name=check_name, asset_key=asset_key,
                               passed=outcome.success, severity=severity, metadata=metadata)


def md_table(frame: pd.DataFrame, max_rows: int = 10) -> dg.MetadataValue:
    """A markdown preview for the UI (no tabulate dependency)."""
    frame = frame.head(max_rows)
    if frame.empty:
        return dg.MetadataValue.md("_(no rows)_")
    cells = frame.astype(str).map(lambda v: v.replace("|", "\\|").replace("\n", " ")[:80])
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return dg.MetadataValue.md("\n".join([header, sep, *body]))
