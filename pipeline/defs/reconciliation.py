"""Reconciliation: coder sheets -> agreement, discrepancies, adjudication, final codes."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.coding import dual_coding, keyword_sessions
from pipeline.core.coding.coder_sheets import coder_sheet_files
from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.privacy.name_scan import names_in_frames
from pipeline.core.privacy.redact import Redactor, load_roster, roster_fingerprint
from pipeline.core.reconciliation import agreement
from pipeline.core.reconciliation.adjudications import decisions_for, read_adjudications
from pipeline.core.reconciliation.discrepancies import discrepancies, in_answer_order
from pipeline.core.reconciliation.final_codes import (
    FINAL_COLUMNS,
    PROVENANCES,
    STANDIN_COLUMNS,
    final_codes,
    keyword_standin,
    reconciliation_summary,
    standin_by_year,
    suggestion_standin,
)
from pipeline.core.reconciliation.queue import inputs_key, kept_queue, write_queue
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import session_rows, table_record
from pipeline.core.warehouse.fingerprint import queries_fingerprint
from pipeline.defs.checks import md_table
from pipeline.defs.coding import KEYWORD
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse, codebooks_digest
from pipeline.defs.sources import (
    ADJUDICATION_FILE,
    CODEBOOK_FILES,
    CODER_SHEET_FILES,
    file_observations,
)

HUMAN = dg.AssetKey(["coding", "human_applications"])
SUGGESTIONS = dg.AssetKey(["coding", "suggestions"])  # built in pipeline.defs.suggestions
AGREEMENT = dg.AssetKey(["coding", "agreement"])
DISCREPANCIES = dg.AssetKey(["coding", "discrepancies"])
ADJUDICATIONS = dg.AssetKey(["coding", "adjudications"])
FINAL = dg.AssetKey(["coding", "final_codes"])
QUALITY = dg.AssetKey(["coding", "keyword_quality"])


ADJUDICATION_TEXT = ["reason", "decision_text", "adjudicator"]
# the coders' sheets cover every year: a year's import validates them against every year's
# staged answers (so a row of another year is not an "unknown answer")
EVERY_YEAR = dg.AllPartitionMapping()


class AgreementConfig(dg.Config):
    alpha_threshold: float = 0.667   # Krippendorff's customary floor for tentative conclusions
    n_boot: int = 1000
    seed: int = agreement.DEFAULT_SEED


def _read(con, *tables):
    return [wh.read_frame(con, t) for t in tables]


def _discrepancies(con) -> pd.DataFrame:
    """coding.discrepancies in answer order, whatever order the year's writes left the rows
    in: the queue lists them so, the same after a rebuild and after a refresh."""
    return in_answer_order(wh.read_frame(con, "coding.discrepancies"))


APP_COLUMNS = "answer_id, school_year, coder, coder_kind, framework, dimension, code_id"
# both coders' applications: the view over coding.keyword_applications and
# coding.human_applications (pipeline/core/warehouse/catalog.py, UNION_VIEWS)
BOTH_CODERS = "coding.code_applications"


def _select(con, table: str, columns: str) -> pd.DataFrame:
    """Some columns of a table (a table not built yet reads as empty)."""
    if not wh.table_columns(con, table):
        return wh.empty_frame(table)[[c.strip() for c in columns.split(",")]]
    return con.execute(f"select {columns} from {table}").df()


@dg.asset(
    key=HUMAN, deps=[dg.AssetDep(ANSWERS, partition_mapping=EVERY_YEAR), CODEBOOK_FILES,
                     CODER_SHEET_FILES],
    group_name="coding", pool="warehouse", partitions_def=school_years,
    kinds={"duckdb", "xlsx"},
    description="The human coders' sheets, validated against the codebook and staging.answers "
    "(every year's): the year's coding.human_applications and "
    "coding.coder_units; coding.sheet_quarantine (all years: the sheets are one set).",
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
                       codebooks: Codebooks, warehouse: Warehouse) -> dg.MaterializeResult:
    year = context.partition_key
    books = codebooks.load()
    roster = load_roster(paths.roster_path)
    redactor = Redactor(roster)
    records = ResultCache(cache_dir() / "results" / "human_applications",
                          max_files=HUMAN_YEARS_KEPT)
    where = {"school_year": year}
    with warehouse.connect(context.log) as con:
        # kept while the sheets, the answers they can refer to, the codebooks, the roster and
        # the code are the same (table_record): a refresh that adds a session nobody coded
        # reads none of the import back
        refs = dual_coding.sheet_refs(Path(paths.coder_sheets_dir))
        key = dual_coding.import_key(con, refs, books, redactor)
        found = table_record.kept(con, records, key, HUMAN_YEAR_TABLES, slot=year,
                                  where=where)
        if found is not None and table_record.is_current(
                con, records, key, "coding.sheet_quarantine", slot=f"{year}.quarantine"):
            apps, units = (con.execute(f"select coder from {t} where school_year = ?",
                                       [year]).df() for t in HUMAN_YEAR_TABLES)
            quarantine = wh.read_frame(con, "coding.sheet_quarantine")   # as written
            names, unaccounted, reused = found["names"], found["unaccounted"], True
        else:
            # the import of every year's sheets, kept under `key` with its applications and
            # units per year (the first year to run parses the sheets; the others read their
            # own slice back); on a miss the answers the sheets refer to (and their sessions)
            # are read by one query
            apps, units, quarantine, unaccounted_rows = dual_coding.import_sheets(
                paths.coder_sheets_dir,
                lambda ids: dual_coding.warehouse_sheet_answers(con, ids), books, redactor,
                refs=refs, key=key, year=year)
            names = names_in_frames(roster, {"human_applications": apps,
                                             "sheet_quarantine": quarantine})
            wh.replace_many(con, [
                ("coding.human_applications", apps, where),
                ("coding.coder_units", units, where),
                # every year's import writes the same whole table (all sheets x all answers)
                ("coding.sheet_quarantine", quarantine, None)])
            unaccounted, reused = len(unaccounted_rows), False
            if not names and not unaccounted:   # a failing check is found again every run
                table_record.record(con, records, key, HUMAN_YEAR_TABLES,
                                    {"names": [], "unaccounted": 0}, slot=year, where=where)
                table_record.record(con, records, key, "coding.sheet_quarantine",
                                    slot=f"{year}.quarantine")
    sheets = coder_sheet_files([Path(paths.coder_sheets_dir)]) \
        if Path(paths.coder_sheets_dir).is_dir() else []
    for observation in file_observations(CODER_SHEET_FILES, sheets, roster):
        context.log_event(observation)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(apps),
            "reused": reused,
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
                check_name="sheet_rows_accounted", asset_key=HUMAN, passed=not unaccounted,
                metadata={"unaccounted_rows": unaccounted}),
            dg.AssetCheckResult(
                check_name="no_roster_names_in_sheets", asset_key=HUMAN, passed=not names,
                metadata={"cells_with_names": len(names),
                          "where": dg.MetadataValue.json(names[:20])}),
        ],
    )


HUMAN_YEAR_TABLES = ["coding.human_applications", "coding.coder_units"]
HUMAN_YEARS_KEPT = 400   # result-cache records: two per school year


@dg.asset(
    key=AGREEMENT, deps=[HUMAN, KEYWORD, CODEBOOK_FILES], group_name="coding",
    pool="warehouse",
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
                      codebooks: Codebooks, warehouse: Warehouse) -> dg.MaterializeResult:
    codes = codebooks.codes_frame()
    kept = ResultCache(cache_dir() / "results" / "agreement", max_files=20)
    with warehouse.connect(context.log) as con:
        # the table is kept while what it is computed from is the same (agreement_key): a
        # refresh that adds a session nobody coded reads none of the years' rows
        key = agreement_key(con, codes, config)
        reused = table_record.is_current(con, kept, key, "coding.agreement")
        if reused:
            table = wh.read_frame(con, "coding.agreement")
            units = wh.read_columns(con, "coding.coder_units", ["coder"])
        else:
            # only the columns used: no answer text, no keyword evidence JSON (memory at scale)
            answers = _select(con, "staging.answers",
                              "answer_id, question_id, school_year, non_substantive")
            apps = _select(con, BOTH_CODERS, APP_COLUMNS)
            units, = _read(con, "coding.coder_units")
            all_units = pd.concat([units, dual_coding.keyword_units(answers)],
                                  ignore_index=True)
            humans = sorted(units["coder"].unique())
            apps = apps.merge(all_units[["answer_id", "coder"]], on=["answer_id", "coder"])
            table = (agreement.agreement_table(apps, all_units, codes,
                                               dual_coding.coder_pairs(humans),
                                               n_boot=config.n_boot, seed=config.seed)
                     if humans else wh.empty_frame("coding.agreement"))
            wh.replace_rows(con, "coding.agreement", table)
            table_record.record(con, kept, key, "coding.agreement")
        humans = sorted(units["coder"].unique())
    frameworks = table[table["level"] == "framework"]
    low = table[(table["level"] == "code") & (table["coder_b"] != dual_coding.KEYWORD)
                & (table["krippendorff_alpha"] < config.alpha_threshold)]
    summary = {f"{r.coder_a} vs {r.coder_b} / {r.framework}": {
        "kappa": _num(r.cohen_kappa), "alpha": _num(r.krippendorff_alpha),
        "ac1": _num(r.gwet_ac1)} for r in frameworks.itertuples()}
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(table), "coders": dg.MetadataValue.json(humans),
                  "reused": reused,
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
    key=ADJUDICATIONS, deps=[DISCREPANCIES, ADJUDICATION_FILE, CODEBOOK_FILES],
    group_name="coding", pool="warehouse",
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
                  codebooks: Codebooks, warehouse: Warehouse) -> dg.MaterializeResult:
    path = dual_coding.first_existing(paths.coder_sheets_dir, dual_coding.ADJUDICATION_NAMES)
    roster = load_roster(paths.roster_path)
    outputs = ["coding.adjudications", "coding.adjudication_problems"]
    records = ResultCache(cache_dir() / "results" / "adjudications", max_files=20)
    queue_kept = ResultCache(cache_dir() / "results" / "adjudication_queue", max_files=8)
    out = Path(paths.reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    queue_paths = [out / name for name in dual_coding.QUEUE_NAMES]
    with warehouse.connect(context.log) as con:
        disc = None   # read only when the decisions or the queue must be made again
        # the decisions as read last time while the file, the discrepancies and the roster
        # are the same (and the tables still hold them): the file is not parsed again
        key = frame_memo.key(
            "coding.adjudications/1",
            queries_fingerprint(con, "select * from coding.discrepancies"),
            file_sha256(path) if path else "no adjudication file", roster_fingerprint(roster))
        found = table_record.kept(con, records, key, outputs)
        if found is not None:
            adj, problems = (wh.read_frame(con, t) for t in outputs)
            names = found.get("names", [])
        else:
            disc = _discrepancies(con)
            if path is None:
                adj = wh.empty_frame("coding.adjudications")
                problems = wh.empty_frame("coding.adjudication_problems")
            else:
                redactor = Redactor(roster)
                adj, problems = read_adjudications(path, disc)
                adj = dual_coding.redact_columns(adj, redactor, ADJUDICATION_TEXT)
                problems = dual_coding.redact_columns(problems, redactor, ["reason"])
            names = names_in_frames(roster, {"adjudications": adj,
                                             "adjudication_problems": problems})
            wh.replace_many(con, [(t, frame, None)
                                  for t, frame in zip(outputs, (adj, problems), strict=True)])
            table_record.record(con, records, key, outputs, {"names": names})
        # the queue is made of the discrepancies and the decisions (both in `key`) and the
        # codebooks: its files last written are copied while those are the same, without
        # reading the discrepancies
        queue_key = inputs_key(key, codebooks_digest(codebooks.files()))
        queue = kept_queue(queue_kept, queue_key, *queue_paths)
        queue_reused = queue is not None
        if queue is None:
            if disc is None:
                disc = _discrepancies(con)
            queue = write_queue(disc, *queue_paths, adj if path else None,
                                codebooks=list(codebooks.load()), kept=queue_kept,
                                key=queue_key)
    if path is not None:
        for observation in file_observations(ADJUDICATION_FILE, [path],
                                             load_roster(paths.roster_path),
                                             {path.name: len(adj) + len(problems)}):
            context.log_event(observation)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(adj), "file": str(path), "problems": len(problems),
                  "reused": found is not None, "queue_reused": queue_reused,
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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(DISCREPANCIES, deps=[HUMAN, KEYWORD, ANSWERS], kinds={"duckdb"},
                     description="One row per (answer, code) where the two human coders "
                     "disagree, with the answer text and the keyword coder's evidence."),
        dg.AssetSpec(FINAL, deps=[HUMAN, KEYWORD, ANSWERS, SUGGESTIONS, ADJUDICATION_FILE,
                                  CODEBOOK_FILES], kinds={"duckdb"},
                     description="Agreed and adjudicated code applications with provenance "
                     "(agreed, adjudicated, unresolved) and who decided (the decisions are read "
                     "from the adjudication file in <coder sheets>); in a school year with no "
                     "human coding, the meaning-based suggestions stand in "
                     "(trained_suggestion / zero_shot_suggestion, from coding.suggestions), or "
                     "the keyword coder's codes (keyword) in a year coding.suggestions does not "
                     "cover (e.g. a warehouse without suggestions)."),
    ],
    group_name="coding", pool="warehouse", partitions_def=school_years,
    check_specs=[
        dg.AssetCheckSpec("final_codes_valid", asset=FINAL, blocking=True,
                          description="every final code exists in the codebook and every "
                          "answer id in staging.answers"),
        dg.AssetCheckSpec("no_unresolved_discrepancies", asset=FINAL,
                          description="warns while discrepancies remain undecided"),
    ],
)
def reconcile_year(context: dg.AssetExecutionContext, paths: ProjectPaths,
                   codebooks: Codebooks, warehouse: Warehouse):
    """One school year's discrepancies and final codes, written in one transaction: the
    warehouse never holds this year's new discrepancies with its old final codes. (A year
    nobody coded by hand, holding no discrepancies, has its final codes written session by
    session: machine_coded_year.)"""
    year = context.partition_key
    codes = codebooks.codes_frame()
    with warehouse.connect(context.log) as con:
        where = {"school_year": year}
        humans = sorted(r[0] for r in con.execute(
            "select distinct coder from coding.coder_units where school_year = ?",
            [year]).fetchall()) if wh.table_columns(con, "coding.coder_units") else []
        if humans and len(humans) != 2:
            context.log.warning(f"{year}: discrepancies need exactly two human coders; "
                                f"found {humans}")
        if not humans and not _has_year_rows(con, "coding.discrepancies", year):
            # nobody coded the year by hand: the machine's codes, session by session
            disc, summary, computed = machine_coded_year(con, year)
        else:
            disc, adj, final = _reconciled_year(con, paths, codes, year, humans)
            computed = "the whole year"
            wh.replace_many(con, [("coding.discrepancies", disc, where),
                                  (FINAL_TABLE, final, where)])
            summary = reconciliation_summary(disc, adj, final)
        # what the table holds now, however it was written
        unknown_codes = len(keyword_sessions.unknown_codes(con, year, codes, FINAL_TABLE))
        (unknown_answers,) = con.execute(
            f"select count(*) from {FINAL_TABLE} where school_year = ? and answer_id not in "
            "(select answer_id from staging.answers where school_year = ?)",
            [year, year]).fetchall()[0]
        n_suggestions = con.execute(f"select count(*) from {SUGGESTIONS_TABLE} "
                                    "where school_year = ?", [year]).fetchone()[0] \
            if wh.table_columns(con, SUGGESTIONS_TABLE) else 0
    yield dg.MaterializeResult(asset_key=DISCREPANCIES, metadata={
        "dagster/row_count": len(disc),
        "by_code": md_table(disc.groupby("code_id").size().sort_values(ascending=False)
                            .reset_index(name="discrepancies"), 20),
    })
    yield dg.MaterializeResult(asset_key=FINAL, metadata={
        "dagster/row_count": summary["n_final_codes"] + summary["n_unresolved"],
        **{k: v for k, v in summary.items() if isinstance(v, int)},
        "by_provenance": dg.MetadataValue.json(summary["by_provenance"]),
        "suggestion_rows": int(n_suggestions),
        "sessions_computed": dg.MetadataValue.json(computed)})
    yield dg.AssetCheckResult(
        check_name="final_codes_valid", asset_key=FINAL,
        passed=not unknown_codes and not unknown_answers,
        metadata={"unknown_codes": unknown_codes, "unknown_answer_ids": unknown_answers})
    yield dg.AssetCheckResult(
        check_name="no_unresolved_discrepancies", asset_key=FINAL,
        passed=summary["n_unresolved"] == 0, severity=dg.AssetCheckSeverity.WARN,
        metadata={"unresolved": summary["n_unresolved"],
                  "discrepancies": summary["n_discrepancies"]})


def _reconciled_year(con, paths: ProjectPaths, codes: pd.DataFrame, year: str,
                     humans: list[str]):
    """(discrepancies, adjudications, final codes) of a year as a whole: a year coded by
    hand, kept by what it is made of (coded_year_key, from the rows' fingerprints in DuckDB):
    a refresh that adds a session nobody coded yet reads it back without reading the year's
    rows."""
    where = {"school_year": year}
    key = coded_year_key(con, paths, codes, year) if humans else None
    stored = [frame_memo.load("reconciled_year", f"{key}-{part}") for part in RECONCILED] \
        if key else [None]
    if all(frame is not None for frame in stored):
        disc, adj, final = stored
        final = final.astype(object).where(final.notna(), None)
        return disc, adj, final
    answers, units, human, keyword = (wh.read_frame(con, t, where) for t in YEAR_INPUTS)
    disc = discrepancies(human, units, answers, keyword, *humans) \
        if len(humans) == 2 else wh.empty_frame("coding.discrepancies")
    adj = year_adjudications(paths, disc)
    if humans:
        # a year coded by hand takes none of the machine's codes (final_codes keeps the
        # stand-in's rows in years without coder units only): not read nor made, so the
        # suggestions' source is not checked here either (their contract does)
        standin = pd.DataFrame(columns=STANDIN_COLUMNS)
    else:
        # suggestions where coding.suggestions has the year; else the keyword coder
        standin = standin_by_year(wh.read_frame(con, SUGGESTIONS_TABLE, where), keyword,
                                  answers)
    final = final_codes(human, units, adj, disc, standin, answers)
    if key:
        for part, frame in zip(RECONCILED, (disc, adj, final), strict=True):
            frame_memo.store("reconciled_year", f"{key}-{part}", frame)
    return disc, adj, final


def machine_coded_year(con, year: str) -> tuple[pd.DataFrame, dict, list[str]]:
    """A year nobody coded by hand (and with no discrepancies left from when somebody did):
    its final codes are the machine's stand-in, the suggestions where coding.suggestions has
    the year, else the keyword coder's codes, answer by answer. So they are worked out and
    written session by session (session_rows): a refresh adding one session's export reads
    and writes that session's rows only. The same rows as `_reconciled_year` gives, up to
    their order in the table. Returns (the year's discrepancies: none, the summary, the
    sessions worked out)."""
    tables = [t for t in (SUGGESTIONS_TABLE, KEYWORD_TABLE) if wh.table_columns(con, t)]
    covered = _has_year_rows(con, SUGGESTIONS_TABLE, year)
    kept = ResultCache(cache_dir() / "results" / "final_code_sessions",
                       max_files=SESSIONS_KEPT)
    plan = session_rows.plan(con, kept, "final_codes", FINAL_TABLE, year, MACHINE_INPUTS,
                             frame_memo.key("machine final codes/1", f"covered={covered}"),
                             tuple(tables))
    answers = session_rows.read_answers(con, year, plan.stale, MACHINE_INPUTS)

    def rows(table: str) -> pd.DataFrame:
        return session_rows.read_rows(con, table, year, plan.stale) if table in tables \
            else wh.empty_frame(table)

    standin = suggestion_standin(rows(SUGGESTIONS_TABLE)) if covered \
        else keyword_standin(rows(KEYWORD_TABLE))
    disc = wh.empty_frame("coding.discrepancies")
    final = final_codes(wh.empty_frame("coding.human_applications"),
                        wh.empty_frame("coding.coder_units"),
                        wh.empty_frame("coding.adjudications"), disc, standin,
                        answers[MACHINE_INPUTS])
    wh.replace_rows(con, "coding.discrepancies", disc, {"school_year": year})
    session_rows.write(con, plan, final, {}, kept, FINAL_COLUMNS)
    by_provenance = dict(con.execute(
        f"select provenance, count(*) from {FINAL_TABLE} where school_year = ? group by all",
        [year]).fetchall())
    (n_answers,) = con.execute(
        f"select count(distinct answer_id) filter (where provenance <> 'unresolved') "
        f"from {FINAL_TABLE} where school_year = ?", [year]).fetchall()[0]
    unresolved = by_provenance.get("unresolved", 0)
    summary = {"n_discrepancies": 0, "n_decided_apply": 0, "n_decided_do_not_apply": 0,
               "n_unresolved": unresolved,
               "n_final_codes": sum(by_provenance.values()) - unresolved,
               "by_provenance": {p: int(by_provenance.get(p, 0)) for p in PROVENANCES},
               "n_answers_coded": int(n_answers)}
    return disc, summary, plan.computed


def _has_year_rows(con, table: str, year: str) -> bool:
    return bool(wh.table_columns(con, table)) and con.execute(
        f"select count(*) > 0 from {table} where school_year = ?", [year]).fetchall()[0][0]


MACHINE_INPUTS = ["answer_id", "school_year", "question_id"]   # what final_codes reads of them
FINAL_TABLE = "coding.final_codes"
KEYWORD_TABLE = "coding.keyword_applications"
SESSIONS_KEPT = 4000   # result-cache records: one per session, for years of sessions


def agreement_key(con, codes: pd.DataFrame, config: AgreementConfig) -> str:
    """What coding.agreement is computed from: a unit is an answer both coders of a pair coded,
    and every pair has a human coder, so the human coders' units and applications, and the
    keyword codes and the answers' question, year and substance of the answers in those units
    (DuckDB fingerprints of the rows); the codebook, the bootstrap's settings and the code."""
    seen = "select answer_id from coding.coder_units"
    rows = queries_fingerprint(
        con, "select * from coding.coder_units", "select * from coding.human_applications",
        f"select {APP_COLUMNS} from coding.keyword_applications where answer_id in ({seen})",
        "select answer_id, question_id, school_year, non_substantive "
        f"from staging.answers where answer_id in ({seen})")
    return frame_memo.key("coding.agreement/1", rows, codes, f"{config.n_boot} {config.seed}")


RECONCILED = ("discrepancies", "adjudications", "final_codes")
YEAR_INPUTS = ("staging.answers", "coding.coder_units", "coding.human_applications",
               "coding.keyword_applications")
SUGGESTIONS_TABLE = "coding.suggestions"   # read for years nobody coded by hand


def coded_year_key(con, paths: ProjectPaths, codes: pd.DataFrame, year: str) -> str:
    """What a hand-coded year's discrepancies and final codes are made of: its coder units and
    human applications, the keyword codes and answer rows of the answers in those units (the
    discrepancies show their text and the keyword coder's evidence), the adjudication file's
    bytes, the roster (adjudicators' notes are redacted), the codebook and the pipeline's
    code. The stand-in codes (suggestions, keyword) only ever fill years nobody coded, and
    answers outside the units get no final code, so neither is part of it.

    The rows enter as DuckDB fingerprints (count and sum of row hashes: the same rows in any
    order give the same key), so a refresh reads none of them to find its year unchanged."""
    path = dual_coding.first_existing(paths.coder_sheets_dir, dual_coding.ADJUDICATION_NAMES)
    seen = "select answer_id from coding.coder_units where school_year = ?"
    rows = queries_fingerprint(
        con, ("select * from coding.coder_units where school_year = ?", [year]),
        ("select * from coding.human_applications where school_year = ?", [year]),
        *((f"select * from {table} where school_year = ? and answer_id in ({seen})",
           [year, year]) for table in ("coding.keyword_applications", "staging.answers")))
    return frame_memo.key(
        "reconciled coded year/2", rows,
        file_sha256(path) if path else "no adjudication file",
        roster_fingerprint(load_roster(paths.roster_path)), codes)


YearRows = pd.DataFrame | Callable[[str], pd.DataFrame]   # rows of some years, or one year's


def human_final_codes(paths: ProjectPaths, apps: YearRows, units: YearRows, answers: YearRows,
                      coders: dict[str, list[str]], only: set | None = None) -> pd.DataFrame:
    """The final codes without a stand-in (agreed, adjudicated, unresolved) of the school years
    in `coders` (each with its two human coders), computed as `reconcile_year` does from the
    human applications and the adjudication file, not read from coding.final_codes: the
    suggestions train on them, and final codes take the suggestions as a stand-in (reading the
    table would make a cycle). `apps`, `units` and `answers`: coding.human_applications,
    coding.coder_units and staging.answers rows, or functions giving one year's.

    `only`: the answer ids whose codes are wanted. The rows given may be those answers' alone:
    an answer's final codes depend only on its own applications, units, discrepancies and
    adjudications, so just those are reconciled. A year's suggester trains on 20,000 of the
    other years' answers (stage.TRAIN_MAX_ANSWERS): at a million answers, 3% of their coded
    ones."""
    parts = []
    for year in sorted(coders):
        final = _human_year_final(paths, _year_rows(apps, year), _year_rows(units, year),
                                  _year_rows(answers, year), coders[year])
        if only is not None:
            final = final[final["answer_id"].isin(only)]
        parts.append(final.astype(object).where(final.notna(), None))
    return (pd.concat(parts, ignore_index=True) if parts
            else wh.empty_frame("coding.final_codes"))


def _human_year_final(paths: ProjectPaths, human: pd.DataFrame, units: pd.DataFrame,
                      answers: pd.DataFrame, humans: list[str]) -> pd.DataFrame:
    """One year's final codes from its two coders' applications and the adjudication file,
    with no stand-in."""
    disc = discrepancies(human, units, answers, human.iloc[:0], *humans)
    no_standin = human.iloc[:0].assign(provenance=None, decided_by=None)
    return final_codes(human, units, year_adjudications(paths, disc), disc, no_standin, answers,
                       coders=humans)


def _year_rows(rows: YearRows, year: str) -> pd.DataFrame:
    return rows(year) if callable(rows) else rows[rows["school_year"] == year]


def year_adjudications(paths: ProjectPaths, disc: pd.DataFrame) -> pd.DataFrame:
    """The adjudication file's rows read against one year's discrepancies, redacted as
    coding/adjudications writes them (decided_by is the adjudicator as stored there)."""
    path = dual_coding.first_existing(paths.coder_sheets_dir, dual_coding.ADJUDICATION_NAMES)
    if path is None or disc.empty:
        return wh.empty_frame("coding.adjudications")
    return dual_coding.redact_columns(decisions_for(path, disc),
                                      Redactor(load_roster(paths.roster_path)), ADJUDICATION_TEXT)


@dg.asset(
    key=QUALITY, deps=[FINAL, KEYWORD, HUMAN, CODEBOOK_FILES], group_name="coding",
    pool="warehouse",
    kinds={"duckdb"},
    description="Keyword coder against the final human codes (agreed + adjudicated): "
    "precision, recall and F1 per code and overall, over human-coded answers.",
)
def keyword_quality(context: dg.AssetExecutionContext, codebooks: Codebooks,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    codes = codebooks.codes_frame()
    kept = ResultCache(cache_dir() / "results" / "keyword_quality", max_files=20)
    with warehouse.connect(context.log) as con:
        # kept while its inputs are the same (the human-coded answers' rows): see agreement_key
        key = keyword_quality_key(con, codes)
        reused = table_record.is_current(con, kept, key, "coding.keyword_quality")
        if reused:
            table = wh.read_frame(con, "coding.keyword_quality")
        else:
            keyword = _select(con, "coding.keyword_applications", APP_COLUMNS)
            units, final = _read(con, "coding.coder_units", "coding.final_codes")
            reference = final[final["provenance"].isin(REFERENCE)]
            human_units = units.drop_duplicates("answer_id")
            table = agreement.keyword_quality(keyword, reference, human_units, codes)
            wh.replace_rows(con, "coding.keyword_quality", table)
            table_record.record(con, kept, key, "coding.keyword_quality")
    overall = table[table["code_id"].isna()]
    worst = table[table["code_id"].notna() & table["f1"].notna()].sort_values("f1").head(10)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table), "reused": reused,
        **({"precision": _num(overall.iloc[0]["precision"]),
            "recall": _num(overall.iloc[0]["recall"]), "f1": _num(overall.iloc[0]["f1"])}
           if len(overall) else {}),
        "lowest_f1": md_table(worst[["code_id", "tp", "fp", "fn", "precision", "recall", "f1"]]),
    })


REFERENCE = ("agreed", "adjudicated")   # the final codes the keyword coder is measured on


def keyword_quality_key(con, codes: pd.DataFrame) -> str:
    """What coding.keyword_quality is computed from: the keyword codes, and the agreed and
    adjudicated final codes, of the answers some coder's units hold (the only answers it
    scores), those units, the codebook and the code (DuckDB fingerprints of the rows)."""
    seen = "select answer_id from coding.coder_units"
    rows = queries_fingerprint(
        con, "select * from coding.coder_units",
        f"select {APP_COLUMNS} from coding.keyword_applications where answer_id in ({seen})",
        f"select * from coding.final_codes where provenance in {REFERENCE} "
        f"and answer_id in ({seen})")
    return frame_memo.key("coding.keyword_quality/1", rows, codes)


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)
