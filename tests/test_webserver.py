"""The real Dagster webserver, started on a free localhost port with the project's workspace.yaml,
asked over its GraphQL API for the asset graph: every stage's assets, their upstream edges and
their checks.

EXPECTED_GRAPH is the one place that lists the lineage: extend it as stages land (coding,
reconciliation, marts, report). Every listed asset must be served with exactly these upstream
edges and checks; an asset served but not listed is reported so the list stays complete.

The server is shared with tests/test_ui_browser.py (tests/ui_server.py).
"""

from __future__ import annotations

import pytest

from tests.ui_server import UIServer, ui_server

# the codebooks are read through the Codebooks resource: the external asset codebooks/yaml_files
CODEBOOKS = "codebooks/yaml_files"
MART_UPSTREAM = {"coding/final_codes", "staging/answers", CODEBOOKS}

# asset -> (upstream assets, checks). Stages in data-flow order.
EXPECTED_GRAPH: dict[str, tuple[set[str], set[str]]] = {
    # the files the pipeline reads: external assets (pipeline/defs/sources.py)
    "exports/survey_exports": (set(), set()),
    "exports/coder_sheets": (set(), set()),
    "exports/adjudications": (set(), set()),
    CODEBOOKS: (set(), set()),
    # ingestion
    "raw/survey_rows": ({"exports/survey_exports"},
                        {"raw_rows_schema", "raw_export_files_contract",
                         "raw_quarantine_contract"}),
    "staging/answers": ({"raw/survey_rows"},
                        {"answers_schema", "answers_expectations", "rows_reconcile",
                         "no_roster_names", "raw_quarantine_contract",
                         "raw_redactions_contract"}),
    "raw/year_retirements": (set(), {"year_retirements_schema"}),
    # coding
    "coding/codebook_codes": ({CODEBOOKS}, {"coding_codebook_codes_contract"}),
    "coding/keyword_applications": ({"staging/answers", CODEBOOKS},
                                    {"codes_in_codebook", "evidence_spans_match",
                                     "coding_keyword_applications_contract"}),
    # reconciliation
    "coding/human_applications": ({"staging/answers", CODEBOOKS, "exports/coder_sheets"},
                                  {"sheet_rows_accounted", "no_roster_names_in_sheets",
                                   "coding_human_applications_contract",
                                   "coding_coder_units_contract",
                                   "coding_sheet_quarantine_contract"}),
    "coding/agreement": ({"coding/human_applications", "coding/keyword_applications",
                          CODEBOOKS}, {"alpha_above_threshold", "coding_agreement_contract"}),
    "coding/discrepancies": ({"coding/human_applications", "coding/keyword_applications",
                              "staging/answers"}, {"coding_discrepancies_contract"}),
    "coding/adjudications": ({"coding/discrepancies", "exports/adjudications", CODEBOOKS},
                             {"adjudication_rows_valid",
                                                        "no_roster_names_in_adjudications",
                                                        "coding_adjudications_contract",
                                                        "coding_adjudication_problems_contract"}),
    "coding/final_codes": ({"coding/human_applications", "coding/keyword_applications",
                            "staging/answers", "coding/suggestions", "exports/adjudications",
                            CODEBOOKS},
                           {"final_codes_valid", "no_unresolved_discrepancies",
                            "coding_final_codes_contract"}),
    "coding/keyword_quality": ({"coding/final_codes", "coding/keyword_applications",
                                "coding/human_applications", CODEBOOKS},
                               {"coding_keyword_quality_contract"}),
    # assisted coding
    "coding/suggestions": ({"staging/answers", CODEBOOKS, "coding/human_applications",
                            "exports/adjudications"},
                           {"suggestions_schema", "suggester_available"}),
    "coding/suggestion_quality": ({"coding/suggestions", "coding/final_codes",
                                   "coding/keyword_applications", "coding/human_applications",
                                   CODEBOOKS},
                                  {"suggestion_quality_schema", "suggestion_kappa_floor"}),
    "coding/next_cycle_coder_sheets": ({"staging/answers", CODEBOOKS,
                                        "coding/suggestions"}, set()),
    # marts
    "marts/code_frequencies": (MART_UPSTREAM, {"marts_reconcile_with_final_codes",
                                               "uncounted_codes",
                                               "no_roster_names_in_year_marts",
                                               "marts_code_frequencies_contract"}),
    "marts/code_trends": (MART_UPSTREAM, {"marts_code_trends_contract"}),
    "marts/year_over_year": ({"marts/code_frequencies"}, {"marts_year_over_year_contract"}),
    "marts/by_school": (MART_UPSTREAM, {"marts_by_school_contract"}),
    "marts/by_coach": (MART_UPSTREAM, {"marts_by_coach_contract"}),
    "marts/exemplar_quotes": (MART_UPSTREAM | {"coding/keyword_applications",
                                               "coding/codebook_codes"},
                              {"no_roster_names_in_marts",
                               "marts_exemplar_quotes_contract"}),
    # report
    "reports/findings": ({"marts/code_frequencies", "marts/code_trends",
                          "marts/year_over_year", "marts/by_school", "marts/by_coach",
                          "marts/exemplar_quotes", "coding/agreement",
                          "coding/keyword_quality", "coding/final_codes",
                          "coding/suggestion_quality", CODEBOOKS, "raw/survey_rows",
                          "staging/answers"},
                         {"no_roster_names_in_report"}),
    # what researchers read and exchange (pipeline/defs/exchange.py)
    "reports/coded_answers": ({"marts/code_frequencies", "coding/final_codes", "staging/answers",
                               "coding/codebook_codes", "coding/keyword_applications",
                               "coding/suggestions"}, {"no_roster_names_in_coded_answers"}),
    "reports/refi_qda": ({"coding/final_codes", "staging/answers", CODEBOOKS},
                         {"no_roster_names_in_refi_qda"}),
    # publishing: the read-only copy for analysts, after every sink of the graph
    "warehouse/published": ({"reports/findings", "coding/next_cycle_coder_sheets",
                              "reports/coded_answers", "reports/refi_qda",
                              "raw/year_retirements", "coding/adjudications"}, set()),
}
# a key's prefix is its group (tests/test_asset_graph.py asserts it for every asset)
EXPECTED_GROUPS = {key: key.split("/")[0] for key in EXPECTED_GRAPH}
PARTITIONED = {"exports/survey_exports", "raw/survey_rows", "staging/answers", "coding/keyword_applications",
               "coding/human_applications", "coding/suggestions", "coding/discrepancies",
               "coding/final_codes", "coding/suggestion_quality", "marts/code_frequencies",
               "marts/code_trends", "marts/by_school", "marts/by_coach"}

ASSET_GRAPH_QUERY = """
query AssetGraph {
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    groupName
    isPartitioned
    partitionDefinition { name }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


@pytest.fixture(scope="session")
def dagster_ui() -> UIServer:
    return ui_server()


def served_graph(server: UIServer) -> dict[str, dict]:
    nodes = server.graphql(ASSET_GRAPH_QUERY)["assetNodes"]
    graph = {}
    for node in nodes:
        checks = node["assetChecksOrError"].get("checks", [])
        graph["/".join(node["assetKey"]["path"])] = {
            "deps": {"/".join(d["path"]) for d in node["dependencyKeys"]},
            "checks": {c["name"] for c in checks},
            "blocking": {c["name"] for c in checks if c["blocking"]},
            "group": node["groupName"],
            "partitions": (node["partitionDefinition"] or {}).get("name"),
        }
    return graph


def test_every_stage_is_served_with_its_upstream_edges_and_checks(dagster_ui: UIServer):
    graph = served_graph(dagster_ui)
    missing = sorted(set(EXPECTED_GRAPH) - set(graph))
    assert not missing, f"assets not served: {missing}; served: {sorted(graph)}"
    served = {key: (graph[key]["deps"], graph[key]["checks"]) for key in EXPECTED_GRAPH}
    assert served == EXPECTED_GRAPH
    for key, group in EXPECTED_GROUPS.items():
        assert graph[key]["group"] == group
    for key in PARTITIONED:
        assert graph[key]["partitions"] == "school_year"
    # the ingestion checks are blocking: a failure stops downstream assets
    assert graph["staging/answers"]["blocking"] == EXPECTED_GRAPH["staging/answers"][1]


def test_served_assets_are_all_listed(dagster_ui: UIServer):
    unlisted = sorted(set(served_graph(dagster_ui)) - set(EXPECTED_GRAPH))
    assert not unlisted, f"served but not in EXPECTED_GRAPH (extend it): {unlisted}"


def test_edges_point_at_served_assets(dagster_ui: UIServer):
    graph = served_graph(dagster_ui)
    dangling = {key: node["deps"] - set(graph) for key, node in graph.items()
                if node["deps"] - set(graph)}
    assert not dangling, f"upstream edges to assets nobody defines: {dangling}"
