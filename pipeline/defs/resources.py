"""Resources: the project's paths, the codebooks (loaded once per process) and the DuckDB
warehouse connection."""


import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from pipeline import settings
from pipeline.core.coding.codebook import codebook_codes_frame, codebook_files, load_codebooks
from pipeline.core.warehouse import connection as warehouse


class ProjectPaths(dg.ConfigurableResource):
    """Inputs of the pipeline. Defaults come from pipeline.settings (env overrides). The
    codebook folder is the `Codebooks` resource's."""

    landing_dir: str
    roster_path: str
    coder_sheets_dir: str
    reports_dir: str
    pseudonym_salt: str


# (resolved folder, sha256 of every codebook file's name and bytes) -> the loaded codebooks.
# Process-wide: a run's steps share one process (in_process_executor), so every asset of a run
# reads the same parsed codebooks; an edited file has a new hash, so it is read again.
_LOADED: dict[tuple[str, str], tuple] = {}
_LOCK = threading.Lock()


def codebooks_digest(files: list[Path]) -> str:
    """sha256 over the codebook files' names and contents (the cache key's content part)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class Codebooks(dg.ConfigurableResource):
    """The YAML codebooks every coding, reconciliation, marts and report asset reads: parsed
    and validated once per process for a given folder content (`load`), shared by every step
    of a run, never re-read from disk by an asset itself. In the asset graph they are the
    external asset `codebooks/yaml_files` (pipeline/defs/sources.py), upstream of each asset
    that uses this resource; `coding/codebook_codes` writes them to the warehouse with their
    versions."""

    codebook_dir: str

    def files(self) -> list[Path]:
        return codebook_files([Path(self.codebook_dir)])

    def load(self) -> tuple:
        """The frozen codebooks (a tuple of `Codebook`), cached per folder and content hash:
        the files are hashed on each call (a few KB), parsed only when the hash is new."""
        files = self.files()
        key = (str(Path(self.codebook_dir).resolve()), codebooks_digest(files))
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = tuple(load_codebooks(files))
            return _LOADED[key]

    def codes_frame(self) -> pd.DataFrame:
        """coding.codebook_codes' rows for the loaded codebooks (a fresh frame per call)."""
        return codebook_codes_frame(self.load())

    def versions(self) -> dict[str, str]:
        return {book.framework: book.version for book in self.load()}


DEFAULT_WAIT_SECONDS = 120.0


def warehouse_wait_seconds() -> float:
    """How long a writer waits for another process to release the working file
    (env SURVEY_WAREHOUSE_WAIT_SECONDS, default 120)."""
    return float(os.environ.get("SURVEY_WAREHOUSE_WAIT_SECONDS") or DEFAULT_WAIT_SECONDS)


# resolved warehouse path -> the connection a series of in-process runs holds (Warehouse.hold)
_HELD: dict[str, duckdb.DuckDBPyConnection] = {}


def _held_key(path: str) -> str:
    return str(Path(path).resolve())


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file. DuckDB allows one writer process: a connection waits (with backoff,
    logged) while another process holds the file, up to `wait_seconds`, then fails clearly.
    No connection is opened when definitions load, only inside a run.

    `survey-pipeline run` holds the file open across its in-process runs (`hold`): a step's
    `connect` then gets a cursor of that connection instead of opening the file. Opening a
    DuckDB file costs 30-100 ms on this machine (a new database instance: its threads and
    buffer pool, the catalog read; closing it checkpoints), and a run of the sample opens it
    about 130 times. Each step still has its own transaction: closing a cursor rolls back
    what it did not commit, as closing a connection does."""

    path: str
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    # the read-only copy for analysts (pipeline/defs/publish.py); default: published/ beside
    # the working file
    published_dir: str | None = None

    def published_path(self) -> str:
        return self.published_dir or str(Path(self.path).parent / "published")

    @contextmanager
    def connect(self, log=None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own, or a cursor of the held one (`hold`). A cursor cannot be
        read-only (DuckDB sets that per database, and the holder writes): `read_only` steps
        (the checks, the exports) only read, and in a held series no other process can open
        the file anyway."""
        held = _HELD.get(_held_key(self.path))
        if held is not None:
            cursor = held.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        on_wait = log.warning if log is not None else None
        with warehouse.connect(self.path, read_only=read_only, wait_seconds=self.wait_seconds,
                               on_wait=on_wait) as con:
            yield con

    @contextmanager
    def hold(self, on_wait=None) -> Iterator[None]:
        """Open the file read-write once (waiting as `connect` does) and serve every `connect`
        in this process from it until the block ends, when it is closed (and checkpointed).
        While held, another process cannot open the file, even read-only, and a step in this
        process cannot ATTACH it (the published copy's step copies from `connect` instead).
        Nested holds of one file share the outer one."""
        key = _held_key(self.path)
        if key in _HELD:
            yield
            return
        with warehouse.connect(self.path, wait_seconds=self.wait_seconds,
                               on_wait=on_wait) as con:
            _HELD[key] = con
            try:
                yield
            finally:
                del _HELD[key]


def default_resources() -> dict:
    return {
        "paths": ProjectPaths(
            landing_dir=settings.landing_dir(),
            roster_path=settings.roster_path(),
            coder_sheets_dir=settings.coder_sheets_dir(),
            reports_dir=settings.reports_dir(),
            pseudonym_salt=settings.pseudonym_salt(),
        ),
        "codebooks": Codebooks(codebook_dir=settings.codebook_dir()),
        "warehouse": Warehouse(path=settings.warehouse_path(),
                               wait_seconds=warehouse_wait_seconds()),
    }
