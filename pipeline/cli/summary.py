"""What `survey-pipeline run` (and `make run`) prints at the end: where everything landed and
what needs a human next; and, for every check that failed or warned, its reason and its failing
rows (the check's own metadata), in the terminal rather than only in the UI.

`run_summary_lines` reads the warehouse read-only and the file system; `check_detail_lines`
reads the check evaluations of the run's Dagster runs from the instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import typer

# the queue and where a filled one is read back from (pipeline.core.coding.dual_coding)
QUEUE_XLSX = "discrepancy_queue.xlsx"
MAX_DETAIL_CHARS = 2500


def _shown(path: str | Path) -> str:
    """A path relative to the working directory when it is inside it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _counts(con) -> dict:
    from pipeline.core.warehouse.connection import table_columns

    def one(sql: str, table: str) -> int:
        return int(con.execute(sql).fetchone()[0]) if table_columns(con, table) else 0

    per_year = (con.execute("select school_year, count(*) from staging.answers group by 1 "
                            "order by 1").fetchall()
                if table_columns(con, "staging.answers") else [])
    return {
        "answers": dict(per_year),
        "quarantine": one("select count(*) from raw.quarantine", "raw.quarantine"),
        "sheet_quarantine": one("select count(*) from coding.sheet_quarantine",
                                "coding.sheet_quarantine"),
        "adjudication_problems": one("select count(*) from coding.adjudication_problems",
                                     "coding.adjudication_problems"),
        "discrepancies": one("select count(*) from coding.discrepancies",
                             "coding.discrepancies"),
        "unresolved": one("select count(*) from coding.final_codes where provenance = "
                          "'unresolved'", "coding.final_codes"),
    }


def run_summary_lines(years: list[str], warehouse: str | Path, reports: str | Path,
                      coder_sheets: str | Path) -> list[str]:
    """The closing summary of a run, one line per item."""
    from pipeline.core.warehouse.connection import connect

    with connect(warehouse, read_only=True, wait_seconds=10) as con:
        n = _counts(con)
    reports = Path(reports)
    total = sum(n["answers"].values())
    per_year = ", ".join(f"{y}: {k}" for y, k in n["answers"].items())
    q_total = n["quarantine"] + n["sheet_quarantine"] + n["adjudication_problems"]
    lines = ["", "summary",
             f"  school years built: {', '.join(years) or 'none'}",
             f"  answers: {total}" + (f" ({per_year})" if per_year else ""),
             f"  quarantined rows: {q_total} ({n['quarantine']} from the exports, "
             f"{n['sheet_quarantine']} from the coder sheets, {n['adjudication_problems']} "
             "from the adjudications); list them: survey-pipeline quarantine"]
    queue = reports / QUEUE_XLSX
    if n["discrepancies"]:
        lines.append(f"  discrepancies left to decide: {n['unresolved']} of {n['discrepancies']}"
                     f" -> {_shown(queue)} (fill in decision, reason, adjudicator; save it as "
                     f"{_shown(Path(coder_sheets) / 'adjudications.xlsx')})")
    else:
        lines.append("  discrepancies left to decide: none (no two human coders)")
    outputs = [("report", ["findings.html", "findings.md"]),
               ("coded answers", ["coded_answers.xlsx", "coded_answers.csv"]),
               ("REFI-QDA (NVivo, ATLAS.ti, MAXQDA, QualCoder)",
                ["codebooks.qdc", "project.qdpx"])]
    for what, names in outputs:
        there = [_shown(reports / f) for f in names if (reports / f).is_file()]
        lines.append(f"  {what}: {', '.join(there) if there else 'not written'}")
    lines.append(f"  warehouse: {_shown(warehouse)} (open it read-only: duckdb -readonly "
                 f"{_shown(warehouse)})")
    return lines


def _metadata_text(value) -> str:
    """A check's metadata value as terminal text (markdown tables stay as they are)."""
    inner = getattr(value, "value", value)    # every dagster MetadataValue has .value
    if isinstance(inner, (list, dict)):
        import json

        return json.dumps(inner, ensure_ascii=False, indent=1, default=str)
    return str(inner)


def check_descriptions(checks: list[str]) -> dict[str, str]:
    """'asset:check' -> what the check checks (its spec's description in the definitions)."""
    import dagster as dg

    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    out = {}
    for name in checks:
        asset, check = name.rsplit(":", 1)
        try:
            spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey.from_user_string(asset),
                                                         check))
        except Exception:  # a check the definitions do not hold: no description
            continue
        if spec.description:
            out[name] = spec.description
    return out


def check_detail_lines(checks: list[str], n_runs: int, instance=None,
                       descriptions: dict[str, str] | None = None,
                       evaluations: list | None = None) -> list[str]:
    """For each failed or warned check ('asset:check'), what it checks (`descriptions`), the
    evaluation's own description and its metadata (the failing rows it reports), read from the
    last `n_runs` runs of the Dagster instance, or taken from `evaluations` (the command's own
    runs' evaluations, newest run first: no reading back the event log). Empty when the
    instance kept no record (an ephemeral instance: DAGSTER_HOME unset)."""
    import dagster as dg

    if not checks or not (instance or os.environ.get("DAGSTER_HOME")):
        return []
    if evaluations is None:
        instance = instance or dg.DagsterInstance.get()
        evaluations = [
            entry.dagster_event.asset_check_evaluation_data
            for run in instance.get_runs(limit=n_runs)
            for entry in instance.all_logs(run.run_id,
                                           of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    else:
        # as the event log gives them back: serialised with sorted keys (metadata included)
        from dagster._serdes import deserialize_value, serialize_value

        evaluations = [deserialize_value(serialize_value(ev)) for ev in evaluations]
    wanted = set(checks)
    found: dict[str, object] = {}
    for ev in evaluations:
        name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        if name in wanted and not ev.passed and name not in found:
            found[name] = ev
    lines = []
    for name in checks:
        ev = found.get(name)
        if ev is None:
            continue
        why = [d for d in ((descriptions or {}).get(name), ev.description) if d]
        lines.append(f"{name}: " + "; ".join(why) if why else f"{name}:")
        for key, value in (ev.metadata or {}).items():
            text = _metadata_text(value)
            if len(text) > MAX_DETAIL_CHARS:
                text = text[:MAX_DETAIL_CHARS] + "\n  … (more in the UI: make dev)"
            if "\n" in text:
                lines.append(f"  {key}:")
                lines += [f"    {t}" for t in text.splitlines()]
            else:
                lines.append(f"  {key}: {text}")
    return lines


def print_run_summary(summary, echo: Callable[..., None] = typer.echo) -> None:
    """The end of `survey-pipeline run`: the failed/warned checks' reasons and rows (stderr),
    then, after a successful run, where everything landed (stdout)."""
    from pipeline import settings

    checks = [*summary.failed_checks, *summary.warnings]
    try:
        details = check_detail_lines(checks, summary.runs,
                                     descriptions=check_descriptions(checks) if checks else {},
                                     evaluations=summary.evaluations)
    except Exception as exc:  # the details are a convenience: never fail the run over them
        details = [f"(check details unavailable: {exc}; see them in the UI: make dev)"]
    if details:
        echo("why the checks above failed or warned:", err=True)
        for line in details:
            echo(line, err=True)
    if summary.success:
        for line in run_summary_lines(summary.years, settings.warehouse_path(),
                                      settings.reports_dir(), settings.coder_sheets_dir()):
            echo(line)
