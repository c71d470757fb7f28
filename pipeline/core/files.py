"""Files written atomically: a reader (or the next run after a crash) sees the old file or the
new one, never a half-written or 0-byte file.

Every file the pipeline writes under reports/ (and any other output a person opens) goes
through `atomic_path`: the writer fills a temporary file in the same folder, which is then
flushed to disk and renamed over the target (`os.replace` is atomic within one file system).
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`.

    The temporary name keeps the suffix (writers such as xlsxwriter look at it) and starts
    with '.' and ends in '.tmp<suffix>' so that folder scans skip it. On an exception the
    temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); give it the mode a plain open() would have
    os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def store_cache_file(path: Path, tmp: Path, write: Callable[[Path], None], what: str,
                     errors: tuple[type[BaseException], ...] = (OSError,)) -> bool:
    """A cache entry: `write(tmp)`, then `tmp` renamed over `path` (another process storing the
    same key stores the same content). No fsync, unlike `atomic_path`: a cache file lost in a
    crash is computed again. On one of `errors` the entry is skipped with a warning naming
    `what`, the temporary file removed, and False returned."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
        return True
    except errors as exc:
        log.warning("%s %s not written (%s)", what, path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
