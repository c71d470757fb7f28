"""Is the process that started a run still alive? A token names a process on one machine:
host, PID and the process's start time (Linux: /proc/<pid>/stat, in clock ticks since boot),
so a PID reused by a later process does not count as the same process."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    return stat.rsplit(")", 1)[1].split()[19]     # field 22: starttime


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_token(pid: int | None = None) -> str:
    """`host:pid:start` for `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def parse_token(token: str) -> tuple[str, int, str] | None:
    try:
        host, pid, start = token.rsplit(":", 2)
        return host, int(pid), start
    except ValueError:
        return None


def process_gone(token: str) -> bool | None:
    """True when the process named by `token` is no longer running, False when it is, None
    when this machine cannot tell (another host, or a token it cannot read)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    host, pid, start = parsed
    if host != socket.gethostname():
        return None
    if not _exists(pid):
        return True
    now = _start_ticks(pid)
    if start == "?" or now is None:
        return False
    return now != start
