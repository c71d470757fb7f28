"""Whether tables still hold what a step wrote from the same inputs.

An all-years step such as `coding/agreement` recomputes every figure from every year's rows,
yet a refresh that adds a session nobody has coded changes none of its inputs. The step keys
its inputs (DuckDB fingerprints of the rows it reads, with its settings and the code), and
after writing it records, under that key in the result cache, the fingerprint of the rows it
wrote to each of its tables (`rows_fingerprint`: count and sum of row hashes), with anything
else it found (`extra`: a check's findings). Next time, when the key finds a record and the
tables still have those rows, they are current: nothing is read, computed or written, and the
record's `extra` stands for what the check would find again. Rows written by anything else
(another code version, a hand edit) never match the record, so they are computed again; so is
everything when the record is missing or damaged.
"""

from __future__ import annotations

import json
import logging

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import rows_fingerprint

log = logging.getLogger(__name__)


def _prints(con, tables: list[str], where: dict | None) -> list[list[int]] | None:
    from pipeline.core.warehouse.connection import table_columns

    if not all(table_columns(con, t) for t in tables):
        return None
    return [list(rows_fingerprint(con, t, where)) for t in tables]


def kept(con, cache: ResultCache | None, key: str, tables: str | list[str],
         slot: str = "all", where: dict | None = None) -> dict | None:
    """The record's `extra` when a run with inputs `key` wrote the rows `tables` hold now
    (their `where` slice: column -> value); None when they must be computed."""
    tables = [tables] if isinstance(tables, str) else list(tables)
    payload = cache.load(key, slot=slot) if cache is not None else None
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        recorded, extra = [[int(v) for v in r] for r in data["rows"]], data["extra"]
        if not isinstance(extra, dict):
            raise TypeError("extra is not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("record of %s unusable (%s): computing it again", ", ".join(tables), exc)
        return None
    return extra if recorded == _prints(con, tables, where) else None


def is_current(con, cache: ResultCache | None, key: str, tables: str | list[str],
               slot: str = "all", where: dict | None = None) -> bool:
    """Did a run with inputs `key` write the rows `tables` hold now?"""
    return kept(con, cache, key, tables, slot, where) is not None


def record(con, cache: ResultCache | None, key: str, tables: str | list[str],
           extra: dict | None = None, slot: str = "all", where: dict | None = None) -> None:
    """Remember that inputs `key` wrote the rows `tables` (their `where` slice) hold now, and
    `extra`."""
    tables = [tables] if isinstance(tables, str) else list(tables)
    prints = _prints(con, tables, where) if cache is not None else None
    if prints is not None:
        cache.store(key, json.dumps({"rows": prints, "extra": extra or {}}).encode(),
                    slot=slot)
