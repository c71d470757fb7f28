"""Great Expectations (GX Core 1.x) suites run as Dagster asset checks.

dagster-ge only supports great_expectations < 1.0, so the checks call GX directly: an
ephemeral context, a pandas dataframe asset, `batch.validate(suite)`, and the result's
statistics and failed expectations as check metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from pipeline.core.ids import QUESTION_IDS

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass
class SuiteOutcome:
    success: bool
    statistics: dict
    failed: list[dict]


def staging_answers_expectations(E) -> list:
    """E is `great_expectations.expectations`; imported lazily (about 3 s)."""
    return [
        E.ExpectColumnValuesToBeUnique(column="answer_id"),
        E.ExpectColumnValuesToNotBeNull(column="answer_id"),
        E.ExpectColumnValuesToMatchRegex(column="school_year", regex=r"^\d{4}-\d{2}$"),
        E.ExpectColumnValuesToBeInSet(column="question_id", value_set=list(QUESTION_IDS)),
        E.ExpectColumnValuesToNotBeNull(column="question_id"),
        E.ExpectColumnValuesToBeInSet(column="non_substantive", value_set=[True, False]),
        # substantive answers always carry text (rows flagged non-substantive are kept too)
        E.ExpectColumnValuesToNotBeNull(
            column="answer_text", row_condition='non_substantive == False',
            condition_parser="pandas"),
        E.ExpectColumnValueLengthsToBeBetween(
            column="answer_text", min_value=1, row_condition='non_substantive == False',
            condition_parser="pandas"),
    ]


def run_suite(frame: pd.DataFrame, expectations, name: str) -> SuiteOutcome:
    """Validate `frame` against the expectations built by `expectations(E)`."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for exp in expectations(gx.expectations):
        suite.add_expectation(exp)
    source = context.data_sources.add_pandas(f"{name}_source")
    asset = source.add_dataframe_asset(name=name)
    batch_def = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite)
    failed = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        detail = r.result or {}
        failed.append({
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column"),
            "unexpected_count": detail.get("unexpected_count"),
            "partial_unexpected_list": [str(v) for v in
                                        (detail.get("partial_unexpected_list") or [])[:10]],
        })
    stats = {k: (float(v) if v is not None else None) for k, v in result.statistics.items()}
    return SuiteOutcome(success=bool(result.success), statistics=stats, failed=failed)
