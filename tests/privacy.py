"""Scan a whole warehouse (every schema but raw) and the report files for roster names."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.core.privacy.name_scan import NameScanner
from pipeline.core.privacy.redact import load_roster


def names_outside_raw(db: Path, roster_path: Path, files: list[Path] = ()) -> list[dict]:
    scanner = NameScanner(load_roster(roster_path))
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_schema <> 'raw'").fetchall()
        frames = {f"{s}.{t}": con.execute(f'select * from "{s}"."{t}"').df()
                  for s, t in tables}
    hits = scanner.scan_frames(frames)
    for path in files:
        if path.exists() and path.suffix in {".csv", ".md", ".html"}:
            if scanner.find(path.read_text(encoding="utf-8-sig")):
                hits.append({"table": path.name, "column": "", "row": ""})
    return hits
