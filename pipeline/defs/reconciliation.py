"""Reconciliation: coder sheets -> agreement, discrepancies, adjudication, final codes."""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core.coding import dual_coding
from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.privacy.name_scan import NameScanner
from pipeline.core.privacy.redact import Redactor, load_roster
from pipeline.core.reconciliation import agreement, reconcile
from pipeline.core.warehouse import connection as wh
from pipeline.defs.checks import md_table
from pipeline.defs.coding import CODEBOOK, KEYWORD, codebook_frame
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.resources import ProjectPaths, Warehouse

HUMAN = dg.AssetKey(["coding", "human_applications"])
AGREEMENT = dg.AssetKey(["coding", "agreement"])
DISCREPANCIES = dg.AssetKey(["coding", "discrepancies"])
ADJUDICATIONS = dg.AssetKey(["coding", "adjudications"])
FINAL = dg.AssetKey(["coding", "final_codes"])
QUALITY = dg.AssetKey(["coding", "keyword_quality"])


ADJUDICATION_TEXT = ["reason", "decision_text", "adjudicator"]


class AgreementConfig(dg.Config):
    alpha_threshold: float = 0.667   # Krippendorff's customary floor for tentative conclusions
    n_boot: int = 1000
    seed: int = agreement.DEFAULT_SEED


def _read(con, *tables):
    return [wh.read_frame(con, t) for t in tables]


@dg.asset(
    key=HUMAN, deps=[ANSWERS, CODEBOOK], group_name="reconciliation", pool="warehouse",
    kinds={"duckdb", "xlsx"},
    description="The human coders' sheets, validated against the codebook and staging.answers: "
    "coding.code_applications (coder_kind 'human'), coding.coder_units, coding.sheet_quarantine.",
    check_specs=[
        dg.AssetCheckSpec("sheet_rows_accounted", asset=HUMAN, blocking=True,
                          description="every sheet row naming a code is an application or "
                          "quarantined with a reason"),
        dg.AssetCheckSpec("no_roster_names_in_sheets", asset=HUMAN, blocking=True,
                          description="coders' notes and quarantine texts carry no roster "
                          "name (they are redacted on import)"),
    ],
)
def human_applications(context: dg.AssetExecutionContext, paths: ProjectPaths,
                       warehouse: Warehouse) -> dg.MaterializeResult:
    books = load_codebooks([Path(paths.codebook_dir)])
    roster = load_roster(paths.roster_path)
    with warehouse.connect(context.log) as con:
        answers, = _read(con, "staging.answers")
        apps, units, quarantine, unaccounted = dual_coding.import_sheets(
            paths.coder_sheets_dir, answers, books, Redactor(roster))
        names = NameScanner(roster).scan_frames({"code_applications": apps,
                                                 "sheet_quarantine": quarantine})
        wh.replace_rows(con, "coding.code_applications", apps, {"coder_kind": "human"})
        wh.replace_rows(con, "coding.coder_units", units)
        wh.replace_rows(con, "coding.sheet_quarantine", quarantine)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(apps),
            "applications_per_coder": dg.MetadataValue.json(
                {k: int(v) for k, v in apps.groupby("coder").size().items()}),
            "answers_coded_per_coder": dg.MetadataValue.json(
                {k: int(v) for k, v in units.groupby("coder").size().items()}),
            "rows_quarantined": len(quarantine),
            "quarantine": md_table(quarantine[["source_file", "source_sheet", "source_row",
                                               "coder", "reason"]], 20),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="sheet_rows_accounted", asset_key=HUMAN, passed=unaccounted.empty,
                metadata={"unaccounted_rows": len(unaccounted)}),
            dg.AssetCheckResult(
                check_name="no_roster_names_in_sheets", asset_key=HUMAN, passed=not names,
                metadata={"cells_with_names": len(names),
                          "where": dg.MetadataValue.json(names[:20])}),
        ],
    )


@dg.asset(
    key=AGREEMENT, deps=[HUMAN, KEYWORD], group_name="reconciliation", pool="warehouse",
    kinds={"duckdb"},
    description="Inter-coder agreement on code presence (unit: a code on an answer) for every "
    "coder pair, per code, dimension, framework, question, school year and overall: percent "
    "agreement, Cohen's kappa, Krippendorff's alpha, Gwet's AC1, PABAK, bootstrap 95% CIs. "
    "Always from before reconciliation.",
    check_specs=[dg.AssetCheckSpec("alpha_above_threshold", asset=AGREEMENT, blocking=False,
                                   description="warns on codes whose human-pair alpha falls "
                                   "below the configured threshold (default 0.667)")],
)
def agreement_figures(context: dg.AssetExecutionContext, config: AgreementConfig,
                      paths: ProjectPaths, warehouse: Warehouse) -> dg.MaterializeResult:
    codes = codebook_frame(paths)
    with warehouse.connect(context.log) as con:
        answers, apps, units = _read(con, "staging.answers", "coding.code_applications",
                                     "coding.coder_units")
        all_units = pd.concat([units, dual_coding.keyword_units(answers)], ignore_index=True)
        humans = sorted(units["coder"].unique())
        apps = apps.merge(all_units[["answer_id", "coder"]], on=["answer_id", "coder"])
        table = (agreement.agreement_table(apps, all_units, codes,
                                           dual_coding.coder_pairs(humans),
                                           n_boot=config.n_boot, seed=config.seed)
                 if humans else wh.empty_frame("coding.agreement"))
        wh.replace_rows(con, "coding.agreement", table)
    frameworks = table[table["level"] == "framework"]
    low = table[(table["level"] == "code") & (table["coder_b"] != dual_coding.KEYWORD)
                & (table["krippendorff_alpha"] < config.alpha_threshold)]
    summary = {f"{r.coder_a} vs {r.coder_b} / {r.framework}": {
        "kappa": _num(r.cohen_kappa), "alpha": _num(r.krippendorff_alpha),
        "ac1": _num(r.gwet_ac1)} for r in frameworks.itertuples()}
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(table), "coders": dg.MetadataValue.json(humans),
                  "by_framework": dg.MetadataValue.json(summary),
                  **{f"kappa/{k}": v["kappa"] for k, v in summary.items()
                     if v["kappa"] is not None},
                  **{f"alpha/{k}": v["alpha"] for k, v in summary.items()
                     if v["alpha"] is not None}},
        check_results=[dg.AssetCheckResult(
            check_name="alpha_above_threshold", asset_key=AGREEMENT, passed=low.empty,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"threshold": config.alpha_threshold, "codes_below": len(low),
                      "codes": md_table(low[["coder_a", "coder_b", "code_id", "n_units",
                                             "krippendorff_alpha", "cohen_kappa"]], 30)})],
    )


@dg.asset(
    key=DISCREPANCIES, deps=[HUMAN, KEYWORD], group_name="reconciliation", pool="warehouse",
    kinds={"duckdb", "xlsx"},
    description="One row per (answer, code) where the two human coders disagree, with the "
    "answer text and the keyword coder's evidence.",
)
def discrepancies(context: dg.AssetExecutionContext,
                  warehouse: Warehouse) -> dg.MaterializeResult:
    with warehouse.connect(context.log) as con:
        answers, apps, units = _read(con, "staging.answers", "coding.code_applications",
                                     "coding.coder_units")
        humans = sorted(units["coder"].unique())
        if len(humans) != 2:
            context.log.warning(f"discrepancies need exactly two human coders; found {humans}")
            table = wh.empty_frame("coding.discrepancies")
        else:
            human = apps[apps["coder_kind"] == "human"]
            keyword = apps[apps["coder_kind"] == "keyword"]
            table = reconcile.discrepancies(human, units, answers, keyword, *humans)
        wh.replace_rows(con, "coding.discrepancies", table)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table),
        "by_code": md_table(table.groupby("code_id").size().sort_values(ascending=False)
                            .reset_index(name="discrepancies"), 20),
    })


@dg.asset(
    key=ADJUDICATIONS, deps=[DISCREPANCIES], group_name="reconciliation", pool="warehouse",
    kinds={"duckdb", "csv"},
    description="The researchers' decisions re-imported from the filled queue "
    "(<coder sheets>/adjudications.xlsx or .csv); bad rows in coding.adjudication_problems. "
    "Writes the queue for the next round (reports/discrepancy_queue.xlsx and .csv): every "
    "discrepancy, with the decisions made so far pre-filled.",
    check_specs=[
        dg.AssetCheckSpec("adjudication_rows_valid", asset=ADJUDICATIONS,
                          description="warns on adjudication rows that could not be used "
                          "(bad decision, unknown id, no adjudicator)"),
        dg.AssetCheckSpec("no_roster_names_in_adjudications", asset=ADJUDICATIONS,
                          blocking=True, description="reasons typed by adjudicators carry no "
                          "roster name (they are redacted on import)"),
    ],
)
def adjudications(context: dg.AssetExecutionContext, paths: ProjectPaths,
                  warehouse: Warehouse) -> dg.MaterializeResult:
    path = dual_coding.first_existing(paths.coder_sheets_dir, dual_coding.ADJUDICATION_NAMES)
    with warehouse.connect(context.log) as con:
        disc, = _read(con, "coding.discrepancies")
        if path is None:
            adj = wh.empty_frame("coding.adjudications")
            problems = wh.empty_frame("coding.adjudication_problems")
        else:
            redactor = Redactor(load_roster(paths.roster_path))
            adj, problems = reconcile.read_adjudications(path, disc)
            adj = dual_coding.redact_columns(adj, redactor, ADJUDICATION_TEXT)
            problems = dual_coding.redact_columns(problems, redactor, ["reason"])
        names = NameScanner(load_roster(paths.roster_path)).scan_frames(
            {"adjudications": adj, "adjudication_problems": problems})
        wh.replace_rows(con, "coding.adjudications", adj)
        wh.replace_rows(con, "coding.adjudication_problems", problems)
    out = Path(paths.reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    queue_paths = [out / name for name in dual_coding.QUEUE_NAMES]
    queue = reconcile.write_queue(disc, *queue_paths, adj if path else None)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(adj), "file": str(path), "problems": len(problems),
                  "queue_xlsx": dg.MetadataValue.path(str(queue_paths[0])),
                  **{f"queue_{k}": int(v) for k, v in queue.items()}},
        check_results=[dg.AssetCheckResult(
            check_name="adjudication_rows_valid", asset_key=ADJUDICATIONS,
            passed=problems.empty, severity=dg.AssetCheckSeverity.WARN,
            metadata={"problems": md_table(problems, 20)}),
            dg.AssetCheckResult(
                check_name="no_roster_names_in_adjudications", asset_key=ADJUDICATIONS,
                passed=not names, metadata={"cells_with_names": len(names),
                                            "where": dg.MetadataValue.json(names[:20])})],
    )


@dg.asset(
    # coding/suggestions is spelled out: importing its key from pipeline.defs.suggestions
    # would be circular
    key=FINAL, deps=[ADJUDICATIONS, DISCREPANCIES, HUMAN, KEYWORD,
                     dg.AssetKey(["coding", "suggestions"])],
    group_name="reconciliation", pool="warehouse", kinds={"duckdb"},
    description="Agreed and adjudicated code applications with provenance (agreed, "
    "adjudicated, unresolved) and who decided; in a school year with no human coding, the "
    "meaning-based suggestions stand in (trained_suggestion / zero_shot_suggestion, from "
    "coding.suggestions), or the keyword coder's codes (keyword) in a year coding.suggestions "
    "does not cover (e.g. a warehouse without suggestions).",
    check_specs=[
        dg.AssetCheckSpec("final_codes_valid", asset=FINAL, blocking=True,
                          description="every final code exists in the codebook and every "
                          "answer id in staging.answers"),
        dg.AssetCheckSpec("no_unresolved_discrepancies", asset=FINAL,
                          description="warns while discrepancies remain undecided"),
    ],
)
def final_codes(context: dg.AssetExecutionContext, paths: ProjectPaths,
                warehouse: Warehouse) -> dg.MaterializeResult:
    codes = codebook_frame(paths)
    with warehouse.connect(context.log) as con:
        answers, apps, units, adj, disc = _read(
            con, "staging.answers", "coding.code_applications", "coding.coder_units",
            "coding.adjudications", "coding.discrepancies")
        suggestions, = _read(con, "coding.suggestions")
        human = apps[apps["coder_kind"] == "human"]
        # suggestions where coding.suggestions has the year; else (table not built, or the
        # year missing from it) the keyword coder stands in
        standin = reconcile.standin_by_year(
            suggestions, apps[apps["coder_kind"] == "keyword"], answers)
        final = reconcile.final_codes(human, units, adj, disc, standin, answers)
        wh.replace_rows(con, "coding.final_codes", final)
    summary = reconcile.reconciliation_summary(disc, adj, final)
    unknown_codes = final.merge(codes[["framework", "dimension", "code_id"]], how="left",
                                indicator=True).query("_merge == 'left_only'")
    unknown_answers = final[~final["answer_id"].isin(answers["answer_id"])]
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(final),
                  **{k: v for k, v in summary.items() if isinstance(v, int)},
                  "by_provenance": dg.MetadataValue.json(summary["by_provenance"]),
                  "suggestion_rows_read": len(suggestions)},
        check_results=[
            dg.AssetCheckResult(
                check_name="final_codes_valid", asset_key=FINAL,
                passed=unknown_codes.empty and unknown_answers.empty,
                metadata={"unknown_codes": len(unknown_codes),
                          "unknown_answer_ids": len(unknown_answers)}),
            dg.AssetCheckResult(
                check_name="no_unresolved_discrepancies", asset_key=FINAL,
                passed=summary["n_unresolved"] == 0, severity=dg.AssetCheckSeverity.WARN,
                metadata={"unresolved": summary["n_unresolved"],
                          "discrepancies": summary["n_discrepancies"]}),
        ],
    )


@dg.asset(
    key=QUALITY, deps=[FINAL, KEYWORD], group_name="reconciliation", pool="warehouse",
    kinds={"duckdb"},
    description="Keyword coder against the final human codes (agreed + adjudicated): "
    "precision, recall and F1 per code and overall, over human-coded answers.",
)
def keyword_quality(context: dg.AssetExecutionContext, paths: ProjectPaths,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    codes = codebook_frame(paths)
    with warehouse.connect(context.log) as con:
        apps, units, final = _read(con, "coding.code_applications", "coding.coder_units",
                                   "coding.final_codes")
        reference = final[final["provenance"].isin(["agreed", "adjudicated"])]
        keyword = apps[apps["coder_kind"] == "keyword"]
        human_units = units.drop_duplicates("answer_id")
        table = agreement.keyword_quality(keyword, reference, human_units, codes)
        wh.replace_rows(con, "coding.keyword_quality", table)
    overall = table[table["code_id"].isna()]
    worst = table[table["code_id"].notna() & table["f1"].notna()].sort_values("f1").head(10)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table),
        **({"precision": _num(overall.iloc[0]["precision"]),
            "recall": _num(overall.iloc[0]["recall"]), "f1": _num(overall.iloc[0]["f1"])}
           if len(overall) else {}),
        "lowest_f1": md_table(worst[["code_id", "tp", "fp", "fn", "precision", "recall", "f1"]]),
    })


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)
