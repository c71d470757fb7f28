"""Sentence vectors kept on disk, one row per text, so no run embeds a text an earlier one did.

One SQLite file per model under cache_dir() (`embeddings-<model sha256[:16]>.sqlite3`, WAL
journal): key = sha256 of (model sha256, tokenizer sha256, pooling, onnxruntime version, text),
value = the float32
vector's bytes exactly as the model gave them (little-endian), so a vector read back is
bit-identical to the one computed. Every asset, run and process (the multiprocess executor, the
test workers) shares it.

Never a reason for a run to fail: a locked file (another process writing for longer than the
busy timeout) means those texts are embedded again and not written this time; a damaged file is
moved aside (`*.damaged-<pid>`) and a fresh one started. Growth: one row per distinct text ever
embedded with that model (about 1.6 KB for a 384-dimension model, so ~1.6 GB per million
distinct units). Deleting any `embeddings-*.sqlite3` file (with its `-wal` / `-shm` files) is
always safe: the next run embeds again. A file whose model is no longer used is never read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
CHUNK = 500  # keys per SELECT ... IN (...): under SQLite's variable limit everywhere


class VectorCache:
    """get(texts) -> {text: vector} for those stored; put(texts, vectors) stores new ones."""

    def __init__(self, path: Path, identity: str, dim: int):
        self.path = Path(path)
        self.identity = identity  # model sha256, tokenizer sha256 and pooling
        self.dim = dim
        self._con: sqlite3.Connection | None = None
        self._pid = 0  # the process that opened _con (a forked child opens its own)
        self._broken = False  # after an unrecoverable error: this process stops using it

    @classmethod
    def for_model(cls, directory: Path, model_sha256: str, tokenizer_sha256: str, pooling: str,
                  dim: int, runtime: str = "") -> VectorCache:
        """`runtime`: what computes the vectors (onnxruntime's version): another one may round
        differently, so it never reads this one's vectors."""
        return cls(Path(directory) / f"embeddings-{model_sha256[:16]}.sqlite3",
                   "\x00".join([model_sha256, tokenizer_sha256, pooling, runtime]), dim)

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.identity}\x00{text}".encode()).digest()

    # ------------------------------------------------------------------------------ reading

    def get(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those texts that have one (a miss is simply absent)."""
        if not texts:
            return {}
        con = self._connect()
        if con is None:
            return {}
        keys = {self.key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        items = list(keys)
        try:
            for start in range(0, len(items), CHUNK):
                chunk = items[start:start + CHUNK]
                rows = con.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype="<f4")
                    if vec.shape == (self.dim,):
                        found[keys[key]] = vec.astype(np.float32, copy=False)
        except sqlite3.Error as exc:
            self._failed(exc, "read")
            return {}
        return found

    # ------------------------------------------------------------------------------ writing

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        if not texts:
            return
        con = self._connect()
        if con is None:
            return
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        rows = [(self.key(t), vectors[i].tobytes()) for i, t in enumerate(texts)]
        try:
            with con:  # one transaction; INSERT OR IGNORE: a text another process wrote wins
                con.executemany("INSERT OR IGNORE INTO vectors (key, vec) VALUES (?, ?)", rows)
        except sqlite3.Error as exc:
            self._failed(exc, "write")

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            except sqlite3.Error:
                pass
            self._con = None

    # ------------------------------------------------------------------------------ plumbing

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._con is not None and self._pid == os.getpid():
            return self._con
        self._con = None  # opened by the parent of a forked process: never shared
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                  check_same_thread=False)
            try:
                con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = NORMAL")
                con.execute("CREATE TABLE IF NOT EXISTS vectors "
                            "(key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID")
            except BaseException:
                con.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            self._failed(exc, "open")
            return None
        self._con, self._pid = con, os.getpid()
        return con

    def _failed(self, exc: Exception, what: str) -> None:
        """A locked file: skip this time. A damaged one: move it aside, start afresh next
        time. Anything else (read-only home, full disk): stop using the cache in this process."""
        self.close()
        message = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in message:
            log.warning("embedding cache %s is locked (%s): embedding without it", self.path,
                        what)
            return
        damaged = isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in message or "malformed" in message or "corrupt" in message)
        if damaged:
            aside = self.path.with_name(f"{self.path.name}.damaged-{os.getpid()}")
            log.warning("embedding cache %s is damaged (%s); moved to %s", self.path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                except OSError:
                    pass
            return
        log.warning("embedding cache %s unusable (%s: %s): embedding without it", self.path,
                    what, exc)
        self._broken = True
