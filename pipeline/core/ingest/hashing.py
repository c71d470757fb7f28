"""Content hashes of files: the identity of an export in the raw layer and the sensor's cursor.

A file's sha256 is remembered in this process beside its stat signature (device, inode, size,
mtime and ctime in nanoseconds), as git's index does, and read again only when the signature
changed: the 1M-answer build hashed its 109 MB adjudication file about a hundred times (once
per reconciliation of a year, in every year's training), 5-9 s in all. Any write to the file
moves its ctime, which no program can set back. A file changed in the last FRESH_SECONDS is
not remembered: a write in the same clock tick as the one before it could leave both times
as they were (git's "racily clean" files).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

FRESH_SECONDS = 2.0
MEMO_FILES = 10_000   # files remembered; the oldest entries go first

_MEMO: dict[tuple[int, int], tuple[tuple[int, int, int], str]] = {}
_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of the file's bytes."""
    path = Path(path)
    before = os.stat(path)
    ident, sig = _signature(before)
    with _LOCK:
        kept = _MEMO.get(ident)
    if kept is not None and kept[0] == sig:
        return kept[1]
    digest = _hash(path)
    after = os.stat(path)
    if _signature(after) == (ident, sig) and \
            max(after.st_mtime_ns, after.st_ctime_ns) < (time.time() - FRESH_SECONDS) * 1e9:
        with _LOCK:
            _MEMO.pop(ident, None)
            _MEMO[ident] = (sig, digest)
            while len(_MEMO) > MEMO_FILES:
                del _MEMO[next(iter(_MEMO))]
    return digest


def _signature(st: os.stat_result) -> tuple[tuple[int, int], tuple[int, int, int]]:
    return (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
