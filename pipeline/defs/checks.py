"""Helpers that turn the pure validators (pandera models, GX suites) into check results."""


import dagster as dg
import pandas as pd
import pandera.pandas as pa

from pipeline.expectations import run_suite
from pipeline.schemas import failure_summary


def pandera_result(check_name: str, model: type[pa.DataFrameModel], frame: pd.DataFrame,
                   asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    try:
        model.validate(frame, lazy=True)
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


def gx_result(check_name: str, expectations, frame: pd.DataFrame, suite_name: str,
              asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    outcome = run_suite(frame, expectations, suite_name)
    return dg.AssetCheckResult(
        check_name=check_name, asset_key=asset_key, passed=outcome.success,
        metadata={"suite": suite_name, "n_rows": len(frame),
                  **{k: v for k, v in outcome.statistics.items() if v is not None},
                  "failed_expectations": dg.MetadataValue.json(outcome.failed)},
    )


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
