"""Results of deterministic work kept on disk as plain files, keyed by exactly what they were
computed from.

A refresh of one school year leaves the other years' inputs unchanged, so an all-years step can
keep what it computed per year (a rendered XML fragment, a year's rows of a workbook) under
`<folder>/<slot>--<key>.bin` and reuse it while the key is the same. The key is a digest of
everything the piece depends on: the year's rows (or their fingerprint,
`pipeline.core.warehouse.fingerprint`), the code's format version, the settings and codebook
versions; `fingerprint.fingerprint(...)` builds one. The slot names what the entry is for (a
school year): storing a new entry in a slot deletes the slot's older ones, so a refreshed
year's superseded piece does not linger.

Each file holds one header line (a magic word, the key and the payload's sha256) and the
payload. A missing, damaged or mismatching file means computing again; a file that cannot be
written is skipped (both logged, never raised). Files are written to a temporary name and
renamed over the target (atomic): a concurrent reader sees the old file or the new one. Growth:
one entry per slot, at most `max_files` in the folder (the least recently used go); deleting the
folder is always safe.

Payloads can be large (a school year's part of the REFI-QDA project is ~130 MB at 66,000
answers), so both directions stream: `store` takes chunks, `open` verifies the digest in a first
pass and returns the file positioned at the payload.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from pipeline.core.files import store_cache_file

log = logging.getLogger(__name__)

_MAGIC = b"survey-result-cache/1 "
_KEY = re.compile(r"[0-9a-f]{16,128}")
_SLOT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_BLOCK = 1 << 20


class ResultCache:
    """Byte payloads of one kind of work under `folder`, keyed by a hex digest."""

    def __init__(self, folder: str | Path, max_files: int = 50):
        self.folder = Path(folder)
        self.max_files = max_files

    def _path(self, key: str, slot: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"a cache key is a lowercase hex digest, not {key!r}")
        if not _SLOT.fullmatch(slot) or slot.startswith("."):
            raise ValueError(f"not a slot name: {slot!r}")
        return self.folder / f"{slot}--{key}.bin"

    def _header(self, key: str, digest: str) -> bytes:
        return _MAGIC + f"{key} {digest}\n".encode("ascii")

    def open(self, key: str, slot: str = "all") -> BinaryIO | None:
        """The entry's file, positioned at its payload, once its digest is checked (the caller
        closes it); None when missing, damaged or another key's."""
        path = self._path(key, slot)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("result cache %s unreadable (%s): computing again", path, exc)
            return None
        try:
            line = fh.readline(len(_MAGIC) + 200)
            stored_key, _, digest = line[len(_MAGIC):].rstrip(b"\n").decode(
                "ascii", "replace").partition(" ")
            if line.startswith(_MAGIC) and line.endswith(b"\n") and stored_key == key:
                start, h = fh.tell(), hashlib.sha256()
                for block in iter(lambda: fh.read(_BLOCK), b""):
                    h.update(block)
                if h.hexdigest() == digest:
                    fh.seek(start)
                    _touch(path)
                    return fh
            log.warning("result cache %s damaged: computing again", path)
        except OSError as exc:
            log.warning("result cache %s unreadable (%s): computing again", path, exc)
        fh.close()
        return None

    def has(self, key: str, slot: str = "all") -> bool:
        """Whether an entry is there under `key` (not read: `open` checks it)."""
        return self._path(key, slot).exists()

    def load(self, key: str, slot: str = "all") -> bytes | None:
        """The payload stored under `key`, or None (missing, damaged or another key's)."""
        fh = self.open(key, slot)
        if fh is None:
            return None
        with fh:
            return fh.read()

    def store(self, key: str, payload: bytes | Iterable[bytes], slot: str = "all") -> bool:
        """Keep `payload` (bytes, or chunks of it) under `key`; the slot's other entries go.
        False when it could not be written (logged; the chunks may be partly consumed)."""
        path = self._path(key, slot)
        chunks = [payload] if isinstance(payload, bytes) else payload

        def write(tmp: Path) -> None:
            h = hashlib.sha256()
            with open(tmp, "wb") as fh:
                fh.write(self._header(key, "0" * 64))   # the digest, once known
                for chunk in chunks:
                    h.update(chunk)
                    fh.write(chunk)
                fh.seek(0)
                fh.write(self._header(key, h.hexdigest()))

        # the temporary name does not match the entries' *--*.bin, so _prune leaves it alone
        if not store_cache_file(path, path.with_name(f".{path.stem}.{os.getpid()}.tmp"), write,
                                "result cache"):
            return False
        self._prune(path, slot)
        return True

    def get_or_compute(self, key: str, compute: Callable[[], bytes], slot: str = "all"
                       ) -> tuple[bytes, bool]:
        """(payload, whether it came from the cache): the stored payload, else `compute()`,
        stored under `key`."""
        payload = self.load(key, slot)
        if payload is not None:
            return payload, True
        payload = compute()
        self.store(key, payload, slot)
        return payload, False

    def _prune(self, kept: Path, slot: str) -> None:
        files = []
        for f in self.folder.glob("*--*.bin"):
            if f == kept:
                continue
            if f.name.startswith(f"{slot}--"):   # superseded in its slot
                _unlink(f)
                continue
            try:
                files.append((f.stat().st_mtime, f.name, f))
            except OSError:
                continue
        for _, _, f in sorted(files)[: max(0, len(files) + 1 - self.max_files)]:
            _unlink(f)


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # recently used: kept by the pruning
    except OSError:
        pass


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
