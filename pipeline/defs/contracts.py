"""Contract checks: one blocking pandera check per (table, writing asset), generated from the
table catalog (pipeline/core/warehouse/catalog.py), run on the rows the asset wrote.

Each check reads the asset's slice of the table (its school year for a partitioned asset, its
`coder_kind` or `stage` where two assets write one table) through the Warehouse resource,
read-only and in the "warehouse" pool, so it waits for a writer instead of deadlocking it; its
failure metadata names the failing rules and a sample of failing rows (checks.pandera_result).

Tables whose writer already validates the frame with its catalog model before writing it are
not checked twice: raw.survey_rows (raw_rows_schema), staging.answers (answers_schema),
coding.suggestions (suggestions_schema), coding.suggestion_quality (suggestion_quality_schema).

A slice that passed is not validated again while it holds the same rows: the pass is kept in
the result cache (`results/contracts/`) under a key of the slice's rows as DuckDB hashes them
(`rows_fingerprint`: the row count and the sum of the rows' hashes), the table's column types,
the source of the whole `pipeline` package (the models are built from the catalog and the
constants it imports), the pandera, pandas and DuckDB versions. The check's metadata says
`reused: true` then. A failure is never kept: a failing slice is validated on every run, with
its failing rows named.
"""

import re
import warnings
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
import pandera

from pipeline.core.result_cache import ResultCache
from pipeline.core.suggest.model import cache_dir
from pipeline.core.warehouse import catalog, session_rows
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse.fingerprint import fingerprint, package_digest, rows_fingerprint
from pipeline.defs.checks import pandera_result
from pipeline.defs.partitions import school_years
from pipeline.defs.resources import Warehouse

# table -> the check that already holds its contract (run on the frame before it is written)
VALIDATED_BEFORE_WRITE = {
    "raw.survey_rows": "raw/survey_rows:raw_rows_schema",
    "staging.answers": "staging/answers:answers_schema",
    "coding.suggestions": "coding/suggestions:suggestions_schema",
    "coding.suggestion_quality": "coding/suggestion_quality:suggestion_quality_schema",
    "raw.year_retirements": "raw/year_retirements:year_retirements_schema",
}


@dataclass(frozen=True)
class Contract:
    table: str
    asset: str                      # the writing asset's key, "/"-separated
    where: dict = field(default_factory=dict)   # the slice this asset replaces (besides year)
    partitioned: bool = False       # the asset is partitioned by school year: check its year

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey.from_user_string(self.asset)

    @property
    def check_name(self) -> str:
        return self.table.replace(".", "_") + "_contract"


# who writes what (grep replace_rows in pipeline/defs); tests/test_catalog.py checks that every
# catalog table is covered here or in VALIDATED_BEFORE_WRITE
CONTRACTS = (
    Contract("raw.export_files", "raw/survey_rows", partitioned=True),
    Contract("raw.quarantine", "raw/survey_rows", {"stage": "read"}, partitioned=True),
    Contract("raw.quarantine", "staging/answers", {"stage": "stage"}, partitioned=True),
    Contract("raw.redactions", "staging/answers", partitioned=True),
    Contract("coding.codebook_codes", "coding/codebook_codes"),
    Contract("coding.keyword_applications", "coding/keyword_applications", partitioned=True),
    Contract("coding.human_applications", "coding/human_applications", partitioned=True),
    Contract("coding.coder_units", "coding/human_applications", partitioned=True),
    # every year's import writes the whole table (no school_year column): checked whole
    Contract("coding.sheet_quarantine", "coding/human_applications", partitioned=True),
    Contract("coding.agreement", "coding/agreement"),
    Contract("coding.discrepancies", "coding/discrepancies", partitioned=True),
    Contract("coding.adjudications", "coding/adjudications"),
    Contract("coding.adjudication_problems", "coding/adjudications"),
    Contract("coding.final_codes", "coding/final_codes", partitioned=True),
    Contract("coding.keyword_quality", "coding/keyword_quality"),
    # the per-year marts are partitioned (catalog partition column), the others all-years
    *(Contract(name, name.replace(".", "/"), partitioned=catalog.table(name).partition is not None)
      for name in catalog.TABLES if name.startswith("marts.")),
)


PASSES_KEPT = 2000   # result-cache entries: one per (table, slice), i.e. per year of a table


def contract_result(contract: Contract, con, partition_key: str | None = None,
                    cache: ResultCache | None = None) -> dg.AssetCheckResult:
    """Validate the contract's slice of its table (read from `con`) with the catalog model.
    `cache`: a pass of the same rows is reused (the module doc says what the key holds)."""
    where = dict(contract.where)
    if (contract.partitioned and partition_key is not None
            and "school_year" in catalog.columns(contract.table)):
        where["school_year"] = partition_key
    about = {"table": dg.MetadataValue.text(contract.table),
             "slice": dg.MetadataValue.json(where)}
    key = slot = None
    if cache is not None and "school_year" in where and session_wise(contract.table) \
            and wh.table_columns(con, contract.table) \
            and wh.table_columns(con, session_rows.ANSWERS):
        return _sessions_result(contract, con, where, cache, about)
    if cache is not None and wh.table_columns(con, contract.table):
        rows = rows_fingerprint(con, contract.table, where or None)   # (count, sum of hashes)
        key = fingerprint("contract passed", contract.table, sorted(where.items()), rows,
                          _column_types(con, contract.table), package_digest(),
                          pandera.__version__, pd.__version__)
        slot = _slot(contract.table, where)
        if cache.load(key, slot=slot) is not None:
            return dg.AssetCheckResult(
                check_name=contract.check_name, asset_key=contract.asset_key, passed=True,
                metadata={"n_rows": rows[0], "model": catalog.model(contract.table).__name__,
                          **about, "reused": True})
    frame = wh.read_frame(con, contract.table, where or None)
    result = pandera_result(contract.check_name, catalog.model(contract.table), frame,
                            contract.asset_key)
    if key is not None and result.passed:
        cache.store(key, b"passed", slot=slot)
    return dg.AssetCheckResult(
        check_name=result.check_name, asset_key=result.asset_key, passed=result.passed,
        metadata={**result.metadata, **about,
                  **({"reused": False} if cache is not None else {})})


def session_wise(table: str) -> bool:
    """A table whose key includes the answer: its rows can be validated session by session
    (two sessions never hold rows with the same key)."""
    return "answer_id" in catalog.table(table).key


def _sessions_result(contract: Contract, con, where: dict, cache: ResultCache,
                     about: dict) -> dg.AssetCheckResult:
    """The year's slice validated session by session: a pass is kept per session's rows
    (grouped by their answer's session; rows of answers not staged in the year form one more
    group, always validated), so a refresh validates the new session's rows, not the year's."""
    year, table = where["school_year"], contract.table
    extra = {k: v for k, v in where.items() if k != "school_year"}
    prints = session_rows.table_prints(con, table, year, extra)
    versions = (_column_types(con, table), package_digest(), pandera.__version__,
                pd.__version__)
    keys = {s: fingerprint("contract passed/session", table, sorted(where.items()), s, rows,
                           *versions) for s, rows in prints.items()}
    base = _slot(table, where)[:50]
    slots = {s: f"{base}-s{session_rows.slot_part(s)}" for s in prints}
    todo = [s for s in prints if cache.load(keys[s], slot=slots[s]) is None]
    frame = session_rows.read_rows(con, table, year, todo, extra, with_unstaged=True)
    result = pandera_result(contract.check_name, catalog.model(table), frame,
                            contract.asset_key)
    if result.passed:
        for s in todo:
            cache.store(keys[s], b"passed", slot=slots[s])
    n_rows = sum(rows for rows, _hash in prints.values()) + session_rows.unstaged_rows(
        con, table, year, extra)
    return dg.AssetCheckResult(
        check_name=result.check_name, asset_key=result.asset_key, passed=result.passed,
        metadata={**result.metadata, **about, "n_rows": n_rows,
                  "sessions_validated": len(todo), "sessions_reused": len(prints) - len(todo),
                  "reused": not todo})


def _column_types(con, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return con.execute(
        "select column_name, data_type from duckdb_columns() where schema_name = ? "
        "and table_name = ? order by column_index", [schema, name]).fetchall()


def _slot(table: str, where: dict) -> str:
    """The cache slot of a table's slice: one kept pass per slice."""
    text = "-".join([table, *(str(where[k]) for k in sorted(where))])
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64]


def _build(contract: Contract) -> dg.AssetChecksDefinition:
    spec = catalog.table(contract.table)
    rules = f"pandera contract of {contract.table} (pipeline/core/warehouse/catalog.py): types, " \
        "nullability, key, allowed values"
    slice_text = ", ".join(f"{k} = {v!r}" for k, v in contract.where.items())

    @dg.asset_check(
        asset=contract.asset_key, name=contract.check_name, blocking=True, pool="warehouse",
        partitions_def=school_years if contract.partitioned else None,
        description=rules + (f"; the rows with {slice_text}" if slice_text else "")
        + (f". {spec.description}" if spec.description else ""),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse
               ) -> dg.AssetCheckResult:
        key = context.partition_key if contract.partitioned else None
        with warehouse.connect(context.log, read_only=True) as con:
            return contract_result(contract, con, key, ResultCache(
                cache_dir() / "results" / "contracts", max_files=PASSES_KEPT))

    return _check


with warnings.catch_warnings():
    # partitions_def on an asset check is a Dagster preview feature (1.13): the check of a
    # partitioned asset validates the partition's school year, in the run that wrote it
    warnings.simplefilter("ignore", dg.PreviewWarning)
    checks: list[dg.AssetChecksDefinition] = [_build(c) for c in CONTRACTS]
