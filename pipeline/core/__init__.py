"""The pure core: no Dagster here. One package per stage, in data-flow order; pipeline/defs/ wires
each into assets and checks (the Dagster layer), pipeline/cli/ into commands.

    ingest/          landing exports -> raw.* (verbatim + provenance) -> staging.answers
    privacy/         names redacted before anything leaves the raw layer; scans for leaks
    coding/          codebooks, keyword coder, human coders' sheets    -> coding.keyword_applications,
                                                                          coding.human_applications
    suggest/         codes suggested by meaning (offline embeddings)   -> coding.suggestions
    reconciliation/  agreement, discrepancies, adjudication            -> coding.final_codes
    marts/           longitudinal aggregates and quotes                 -> marts.*
    report/          the findings report                                -> reports/findings.*
    warehouse/       the table catalog, connections, views (every stage reads and writes here)

docs/architecture.md draws the same map with where a new table, check, export format or
codebook goes.
"""
