"""pandera models: the column contract of every warehouse table, generated from the table
catalog (pipeline/core/warehouse/catalog.py: dtypes, nullability, keys, allowed values, value rules).

`MODELS` holds one per table. The blocking contract checks (pipeline/defs/contracts.py, and
the checks of the assets that validate their frame before writing it) run them; the failure
metadata names the failing rule and the rows it failed on.
"""

from __future__ import annotations

import pandera.pandas as pa

from pipeline.core.warehouse import catalog
from pipeline.core.warehouse.catalog import SCHOOL_YEAR  # noqa: F401  (kept for importers)

MODELS: dict[str, type[pa.DataFrameModel]] = catalog.models()

# the models the assets that validate before writing import by name
RawSurveyRows = MODELS["raw.survey_rows"]
StagingAnswers = MODELS["staging.answers"]
Suggestions = MODELS["coding.suggestions"]
SuggestionQuality = MODELS["coding.suggestion_quality"]


def validate(model: type[pa.DataFrameModel], frame, lazy: bool = True) -> None:
    """`model.validate(frame, lazy=lazy)` (raises its SchemaErrors), leaving no reference
    cycle behind. pandera validates a copy of the frame (the models coerce) and caches its
    `.pandera` accessor on the copy and on the frame; the accessor points back at its frame,
    so both would wait for the collector's full collections (rare in a long build, which
    tunes them: pipeline/process_gc.py) instead of being freed when the last reference goes.
    At a million answers one coder-sheet import left its 292,410-row copy waiting so."""
    checked = frame
    try:
        checked = model.validate(frame, lazy=lazy)
    finally:
        for obj in (frame, checked):
            vars(obj).pop("pandera", None)


def failure_summary(exc: pa.errors.SchemaErrors, limit: int = 20) -> dict:
    """The failing rules and a sample of failing rows, for asset-check metadata."""
    cases = exc.failure_cases
    rules = (cases.groupby(["column", "check"], dropna=False).size()
             .reset_index(name="n_failures").sort_values("n_failures", ascending=False))
    return {
        "n_failures": int(len(cases)),
        "failing_rules": rules.to_dict("records"),
        "sample": cases.head(limit)[["column", "check", "failure_case", "index"]]
        .astype(str).to_dict("records"),
    }
