"""Results of deterministic work kept on disk as plain files, keyed by exactly what they were
computed from.

A refresh of one school year leaves the other years' inputs unchanged, so an all-years step can
keep what it computed per year (a rendered XML fragment, a year's rows of a workbook) under
`<cache folder>/<kind>/<key>.bin` and reuse it while the key is the same. The key is a digest of
everything the piece depends on: the fingerprint of the year's rows
(`pipeline.core.warehouse.fingerprint`), the code's format version, the settings and codebook
versions (`fingerprint.fingerprint(...)` builds it).

Each file holds a short header (a magic line with the key and the payload's sha256) and the
payload; a missing, damaged or mismatching file means computing again, a file that cannot be
written is skipped (both logged). Files are written to a temporary name and renamed over the
target (atomic), so a concurrent reader sees the old file or the new one. Growth: at most
`max_files` per kind (the least recently used are deleted); deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_MAGIC = b"survey-result-cache 1\n"


class ResultCache:
    """Byte payloads of one kind of work under `folder`, keyed by a hex digest."""

    def __init__(self, folder: str | Path, max_files: int = 50):
        self.folder = Path(folder)
        self.max_files = max_files

    def _path(self, key: str) -> Path:
        if not key or not all(ch in "0123456789abcdef" for ch in key):
            raise ValueError(f"a cache key is a lowercase hex digest, not {key!r}")
        return self.folder / f"{key}.bin"

    def load(self, key: str) -> bytes | None:
        """The payload stored under `key`, or None (missing, damaged or another key's)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("result cache %s unreadable (%s): computing again", path, exc)
            return None
        header_end = data.find(b"\n", len(_MAGIC))
        if not data.startswith(_MAGIC) or header_end < 0:
            log.warning("result cache %s damaged: computing again", path)
            return None
        stored_key, _, digest = data[len(_MAGIC):header_end].decode("ascii", "replace"
                                                                    ).partition(" ")
        payload = data[header_end + 1:]
        if stored_key != key or hashlib.sha256(payload).hexdigest() != digest:
            log.warning("result cache %s damaged: computing again", path)
            return None
        try:
            os.utime(path)  # recently used: kept by the pruning
        except OSError:
            pass
        return payload

    def store(self, key: str, payload: bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
        header = _MAGIC + f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode("ascii")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(header)
                fh.write(payload)
            os.replace(tmp, path)
            self._prune()
        except OSError as exc:
            log.warning("result cache %s not written (%s)", path, exc)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def get_or_compute(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, bool]:
        """(payload, whether it came from the cache): the stored payload, else `compute()`,
        stored under `key`."""
        payload = self.load(key)
        if payload is not None:
            return payload, True
        payload = compute()
        self.store(key, payload)
        return payload, False

    def _prune(self) -> None:
        files = []
        for f in self.folder.glob("*.bin"):
            try:
                files.append((f.stat().st_mtime, f.name, f))
            except OSError:
                continue
        for _, _, f in sorted(files)[: max(0, len(files) - self.max_files)]:
            try:
                f.unlink()
            except OSError:
                pass
