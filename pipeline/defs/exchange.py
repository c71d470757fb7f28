"""What researchers read and exchange: reports/coded_answers.xlsx + .csv, and the REFI-QDA
files reports/codebooks.qdc and reports/project.qdpx (core: pipeline/core/exchange)."""

from pathlib import Path

import dagster as dg

from pipeline.core.exchange import coded_answers, qdc, qdpx, qdpx_sessions
from pipeline.core.files import atomic_write_bytes
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import load_roster, roster_fingerprint
from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.defs.coding import CODEBOOK, KEYWORD
from pipeline.defs.ingestion import ANSWERS
from pipeline.defs.marts import FREQ
from pipeline.defs.reconciliation import FINAL
from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
from pipeline.defs.sources import CODEBOOK_FILES

CODED_ANSWERS = dg.AssetKey(["reports", "coded_answers"])
REFI_QDA = dg.AssetKey(["reports", "refi_qda"])
# built in pipeline.defs.suggestions (spelled out, as in defs/report.py)
SUGGESTIONS = dg.AssetKey(["coding", "suggestions"])


def _withheld(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@dg.asset(
    key=CODED_ANSWERS,
    # FREQ: the marts asset creates the views, marts.coded_answers among them; the view reads
    # the final codes, answers, coding.codebook_codes, keyword applications and suggestions
    deps=[FREQ, FINAL, ANSWERS, CODEBOOK, KEYWORD, SUGGESTIONS],
    group_name="reports",
    pool="warehouse",
    kinds={"xlsx", "csv"},
    description="One row per answer with its final codes as labels, the category of each, how "
    "each was decided (agreed, adjudicated, machine) and its evidence: the view "
    "marts.coded_answers as reports/coded_answers.xlsx (filters, frozen header) and .csv.",
    check_specs=[dg.AssetCheckSpec("no_roster_names_in_coded_answers", asset=CODED_ANSWERS,
                                   blocking=True,
                                   description="no roster name in the coded answers")],
)
def coded_answers_workbook(context: dg.AssetExecutionContext, paths: ProjectPaths,
                           warehouse: Warehouse) -> dg.MaterializeResult:
    roster = load_roster(paths.roster_path)
    xlsx, csv_path = coded_answers.written_paths(paths.reports_dir)
    # the connection stays open while the files are written: a session's rows are read from
    # it only when its check or rendering is not kept (coded_answers.ViewRows). A writer
    # outside Dagster (the pool keeps the other steps out) waits for it as for any reader.
    with warehouse.connect(context.log, read_only=True) as con:
        rows = coded_answers.ViewRows(con, ResultCache(
            cache_dir() / "results" / "coded_answers_counts",
            max_files=coded_answers.CACHE_FILES))
        # checked per session; an unchanged session's result comes from the cache
        hits = coded_answers.names_in_coded_answers(
            rows, roster, ResultCache(cache_dir() / "results" / "coded_answers_names",
                                      max_files=coded_answers.CACHE_FILES))
        if hits:   # never written with a name in it
            _withheld([xlsx, csv_path])
            counts = {}
        else:
            counts = coded_answers.write_coded_answers(
                rows, xlsx, csv_path,
                ResultCache(cache_dir() / "results" / "coded_answers_rows",
                            max_files=coded_answers.CACHE_FILES))
            counts["sessions_read"] = rows.read_sessions()
    return dg.MaterializeResult(
        metadata={**counts, "written": not hits,
                  **({"xlsx": dg.MetadataValue.path(str(xlsx)),
                      "csv": dg.MetadataValue.path(str(csv_path))} if not hits else {})},
        check_results=[dg.AssetCheckResult(
            check_name="no_roster_names_in_coded_answers", asset_key=CODED_ANSWERS,
            passed=not hits, metadata={"cells_with_names": len(hits)})])


@dg.asset(
    key=REFI_QDA,
    deps=[FINAL, ANSWERS, CODEBOOK_FILES],
    group_name="reports",
    pool="warehouse",
    kinds={"xml"},
    description="The REFI-QDA interchange files: reports/codebooks.qdc (the codebooks, "
    "framework > category > code, with each code's meaning) and reports/project.qdpx (every "
    "answer as a text source, each final code as a coded selection by whoever decided it), "
    "for NVivo, ATLAS.ti, MAXQDA, QualCoder.",
    check_specs=[dg.AssetCheckSpec("no_roster_names_in_refi_qda", asset=REFI_QDA,
                                   blocking=True,
                                   description="no roster name in the .qdc or .qdpx")],
)
def refi_qda_files(context: dg.AssetExecutionContext, paths: ProjectPaths,
                   codebooks: Codebooks, warehouse: Warehouse) -> dg.MaterializeResult:
    books = list(codebooks.load())
    roster = load_roster(paths.roster_path)
    cache = ResultCache(cache_dir() / "results" / "refi_qda", max_files=qdpx_sessions.MAX_FILES)
    kept, pieces = [], []
    try:
        with warehouse.connect(context.log, read_only=True) as con:
            # each session's key: DuckDB fingerprints of what its sources are rendered from
            keys = qdpx_sessions.warehouse_keys(con, qdpx.code_labels(books),
                                                roster_fingerprint(roster))
            sessions = qdpx_sessions.sessions_of(keys)
            kept = qdpx_sessions.open_kept(cache, sessions)
            # every exported code's codebook entry and deciders (the users), in DuckDB; the
            # answers and final codes of the sessions not kept only, in the document's order
            # (sorted by DuckDB, not pandas; each answer's codes by framework and code)
            pairs, decisions = qdpx.read_decisions(con)
            qdpx.check_codes(books, pairs)
            qdpx.check_unique_answers(con)
            rows = qdpx_sessions.rows_to_plan(sessions, kept)
            answers, final = qdpx.read_answers(con, rows), qdpx.read_final_codes(con, rows)
        qdc_bytes = qdc.qdc_bytes(books)
        users = qdpx.users_of(decisions)
        project = qdpx.plan(books, answers, final, in_order=True, users=users)
        scan = FuzzyNameScan(roster)
        # each session's sources rendered and checked once, kept while its rows are unchanged
        pieces = qdpx_sessions.session_sources(project, scan, roster_fingerprint(roster),
                                               cache, keys, kept)
        whole = qdpx_sessions.outline(books, users, pieces)
        # the same count as names_in_texts(roster, qdc, qde, *sources), the document streamed
        found = qdpx_sessions.names_in_project(scan, qdc_bytes.decode("utf-8"), whole, pieces)
        out = Path(paths.reports_dir)
        qdc_path, qdpx_path = out / "codebooks.qdc", out / "project.qdpx"
        metadata: dict = {"written": not found,
                          "sessions_reused": sum(p.reused for p in pieces),
                          "sessions_rendered": [p.label for p in pieces if not p.reused]}
        if found:
            _withheld([qdc_path, qdpx_path])
        else:
            atomic_write_bytes(qdc_path, qdc_bytes)
            metadata.update(qdpx.write_qdpx(books, answers, final, qdpx_path, project,
                                            [p.parts() for p in pieces], whole))
            metadata["codes"] = sum(len(b.codes) for b in books)
            metadata["qdc"] = dg.MetadataValue.path(str(qdc_path))
            metadata["qdpx"] = dg.MetadataValue.path(str(qdpx_path))
    finally:
        for piece in [*kept, *pieces]:   # the kept parts' files (closing twice is harmless)
            if piece is not None:
                piece.close()
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="no_roster_names_in_refi_qda", asset_key=REFI_QDA, passed=not found,
            metadata={"names_found": found})])
