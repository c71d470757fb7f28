"""Whether a table (or a slice of it) still holds what a step wrote from the same inputs.

An all-years step such as `coding/agreement` recomputes every figure from every year's rows,
yet a refresh that adds a session nobody has coded changes none of its inputs. The step keys
its inputs (DuckDB fingerprints of the rows it reads, with its settings and the code), and
after writing it records, under that key in the result cache, the fingerprint of the rows it
wrote (`rows_fingerprint`: count and sum of row hashes). Next time, when the key finds a record
and the table still has those rows, the table is current: nothing is read, computed or written.
Rows written by anything else (another code version, a hand edit) never match the record, so
they are computed again; so is everything when the record is missing or damaged.
"""

from __future__ import annotations

import json
import logging

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import rows_fingerprint

log = logging.getLogger(__name__)


def is_current(con, cache: ResultCache | None, key: str, table: str,
               where: dict | None = None, slot: str = "all") -> bool:
    """Did a run with inputs `key` write the rows `table` (its `where` slice) holds now?"""
    if cache is None:
        return False
    payload = cache.load(key, slot=slot)
    if payload is None:
        return False
    try:
        recorded = tuple(int(v) for v in json.loads(payload)["rows"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("record of %s unusable (%s): computing it again", table, exc)
        return False
    from pipeline.core.warehouse.connection import table_columns

    return bool(table_columns(con, table)) and recorded == rows_fingerprint(con, table, where)


def record(con, cache: ResultCache | None, key: str, table: str, where: dict | None = None,
           slot: str = "all") -> None:
    """Remember that inputs `key` wrote the rows `table` (its `where` slice) holds now."""
    if cache is not None:
        rows = rows_fingerprint(con, table, where)
        cache.store(key, json.dumps({"rows": list(rows)}).encode(), slot=slot)
