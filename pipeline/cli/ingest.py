"""`survey-pipeline ingest FILE`: validate one export without touching the warehouse."""

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from pipeline import settings
from pipeline.cli import app, fail
from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.exports import READER_KINDS, ExportReadError, read_export
from pipeline.core.ingest.mapping import (
    MAPPING_FILE_NAME,
    Mapping,
    MappingError,
    guess_mapping,
    load_mapping,
    valid_school_year,
)
from pipeline.core.privacy.redact import RosterError, load_roster


def _mapping_for(path: Path, mapping_path: Path | None, source: str | None) -> Mapping:
    beside = path.parent / MAPPING_FILE_NAME
    if mapping_path or beside.is_file():
        mapping = load_mapping(mapping_path or beside)
        return Mapping(**{**mapping.__dict__, "source": source or mapping.source})
    table = read_export(path, source)
    year = path.parent.name if valid_school_year(path.parent.name) else "unknown"
    return guess_mapping(table.columns, table.labels, year, source)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="An export: CSV or XLSX")],
    source: Annotated[str | None, typer.Option(
        help=f"Reader kind, one of {', '.join(READER_KINDS)}; detected from headers if omitted"
    )] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="mapping.yaml for the export (default: the one beside the file, else guessed "
        "from the study's question texts)")] = None,
    roster: Annotated[Path | None, typer.Option(help="Roster CSV (full_name, role)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Validate one export and print what would load and what would be quarantined."""
    if source is not None and source not in READER_KINDS:
        fail(f"--source {source!r} is not one of {', '.join(READER_KINDS)}")
    try:
        the_mapping = _mapping_for(file, mapping, source)
        for q in ("worked", "improve"):
            if not the_mapping.columns.get(q):
                raise MappingError(f"{file}: no column found for question '{q}'; "
                                   "pass --mapping", column=q)
        people = _roster(roster)
        data = raw.read_file(file, the_mapping)
        entry = data.export_files.iloc[0]
        if entry["status"] != "loaded":
            fail(entry["error"])
        staged = staging.stage_year(data.export_files, data.survey_rows, the_mapping, people)
    except (ExportReadError, MappingError, RosterError) as exc:
        fail(str(exc))
    quarantine = [*data.quarantine.to_dict("records"), *staged.quarantine.to_dict("records")]
    rows_out = [q for q in quarantine if q["level"] == "row"]
    summary = {
        "file": str(file),
        "reader": entry["reader"],
        "detected": bool(entry["detected"]),
        "encoding": entry["encoding"],
        "rows": int(entry["n_records"]),
        "loaded": int(staged.answers["response_id"].nunique()),
        "answered": len(staged.answers),
        "non_substantive": int(staged.answers["non_substantive"].sum()),
        "quarantined": len(rows_out),
        "reasons": dict(Counter(_reason_kind(q["reason"]) for q in rows_out)),
        "cells_flagged": len(quarantine) - len(rows_out),
        "names_redacted": len(staged.redactions),
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    how = "detected" if summary["detected"] else "given"
    typer.echo(f"{file}: {summary['reader']} ({how}), {summary['encoding']}")
    typer.echo(f"  rows: {summary['rows']}  loaded: {summary['loaded']}  "
               f"answered: {summary['answered']} ({summary['non_substantive']} non-substantive)"
               f"  quarantined: {summary['quarantined']}")
    for q in rows_out:
        where = f"row {q['row_number']}" if q["row_number"] is not None else "file"
        typer.echo(f"  - {where}: {q['reason']}")
    if summary["cells_flagged"]:
        typer.echo(f"  cells flagged: {summary['cells_flagged']}")
    typer.echo(f"  names redacted: {summary['names_redacted']}")


def _roster(path: Path | None) -> list:
    if path is None and not Path(settings.roster_path()).is_file():
        typer.echo("warning: no roster found; names are not redacted in this summary", err=True)
        return []
    return load_roster(path or settings.roster_path())


def _reason_kind(reason: str) -> str:
    """Group reasons for counting: the text before any detail."""
    return reason.split(":")[0].split(" (")[0]
