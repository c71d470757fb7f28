"""Watching the landing folder: what changed since the last look, with no Dagster in sight.

The landing folder holds one folder per school year (`<landing>/<year>/`, a year being a folder
with a mapping.yaml, see core.raw.school_years). Every regular file in a year folder is
watched, mapping.yaml included; hidden files and the temporary files editors, browsers and
sync clients write while saving are not.

A scan probes each file: a file modified within the last `settle_seconds`, one whose size or
mtime moved while it was being hashed, or one that cannot be read is *pending* (half-written,
or locked by the program writing it). A year with a pending file is left alone on this look,
so a run never reads a half-written export; the next look tries again.

`plan()` compares a scan with the cursor of the previous look (file name -> sha256, size,
mtime; plus a per-year run counter) and says which years must run: a year runs when a file
was added, changed content (a new sha256; a touched but identical file is unchanged) or was
removed. The new cursor records only what was seen settled.

A year folder that is gone (deleted, or its mapping.yaml removed) is in `Plan.years_gone`
once; `retirement()` says which years to retire (those, plus any year Dagster still knows that
has no folder) with a run key that changes each time a year goes. Retiring is not done here:
the sensor requests a run of `raw/year_retirements` (core.ingest.years). Nothing is retired
while the landing folder itself is missing or holds no year folder (an unmounted share).

A symbolic link that leaves the landing folder is not read (the raw layer refuses it); its
link text is what the cursor compares.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.ingest.raw import inside, is_ignored, school_years

CURSOR_VERSION = 1
DEFAULT_SETTLE_SECONDS = 10.0

@dataclass(frozen=True)
class FileState:
    """A settled file. `name` is `<year>/<file>`, with a forward slash on every platform."""

    name: str
    sha256: str
    size: int
    mtime: float

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "mtime": self.mtime}


@dataclass(frozen=True)
class Pending:
    """A file not ready to be read on this look: `reason` says why."""

    name: str
    reason: str


@dataclass
class YearScan:
    year: str
    files: dict[str, FileState] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)


@dataclass
class Cursor:
    files: dict[str, dict] = field(default_factory=dict)  # name -> {sha256, size, mtime}
    runs: dict[str, int] = field(default_factory=dict)    # year -> runs requested so far
    retired: dict[str, int] = field(default_factory=dict)  # year -> times seen gone

    def year_files(self, year: str) -> dict[str, dict]:
        prefix = f"{year}/"
        return {n: s for n, s in self.files.items() if n.startswith(prefix)}


@dataclass
class YearRun:
    """A year whose files changed: request a run of its partition."""

    year: str
    added: list[str]
    changed: list[str]
    removed: list[str]
    run_number: int
    digest: str

    @property
    def run_key(self) -> str:
        # The run counter keeps keys unique when a folder returns to an earlier state (A -> B
        # -> A); the digest names the state. A tick retried after a failure repeats the key.
        return f"{self.year}:{self.run_number}:{self.digest[:16]}"

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in
                 (("new", self.added), ("changed", self.changed), ("removed", self.removed)) if v]
        return ", ".join(parts)


@dataclass
class Plan:
    runs: list[YearRun]
    pending: dict[str, list[Pending]]  # year -> files holding it back
    unchanged: list[str]
    years_gone: list[str]              # years in the cursor that are no longer year folders
    cursor: Cursor


sha256_of = file_sha256   # a module-level name, so tests can simulate a locked file


def probe(path: Path, name: str, now: float, settle_seconds: float,
          root: Path | None = None) -> FileState | Pending:
    """Hash one file if it looks finished; otherwise say why not. A symbolic link leaving
    `root` is not opened: its link text stands for its content."""
    if root is not None and path.is_symlink() and not inside(path, root):
        target = str(path.readlink()) if hasattr(path, "readlink") else ""
        return FileState(name, hashlib.sha256(f"symlink:{target}".encode()).hexdigest(), 0, 0.0)
    try:
        before = path.stat()
        age = now - before.st_mtime
        if age < settle_seconds:
            return Pending(name, f"modified {max(age, 0):.1f}s ago (waiting {settle_seconds:g}s "
                                 "for the writer to finish)")
        digest = sha256_of(path)
        after = path.stat()
    except OSError as exc:  # locked by the writer, permissions, vanished mid-scan
        return Pending(name, f"unreadable: {exc.__class__.__name__}: {exc.strerror or exc}")
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return Pending(name, "changed while being read (still being written)")
    return FileState(name, digest, after.st_size, after.st_mtime)


def scan_year(year_dir: Path, now: float, settle_seconds: float) -> YearScan:
    scan = YearScan(year_dir.name)
    for path in sorted(year_dir.iterdir()):
        if is_ignored(path.name) or not (path.is_file() or path.is_symlink()) or path.is_dir():
            continue
        result = probe(path, f"{year_dir.name}/{path.name}", now, settle_seconds,
                       year_dir.parent)
        if isinstance(result, Pending):
            scan.pending.append(result)
        else:
            scan.files[result.name] = result
    return scan


def scan_landing(landing_dir: str | Path, now: float | None = None,
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> dict[str, YearScan]:
    """Probe every watched file of every school-year folder. `now` defaults to the clock."""
    now = time.time() if now is None else now
    landing_dir = Path(landing_dir)
    return {year: scan_year(landing_dir / year, now, settle_seconds)
            for year in school_years(landing_dir)}


def state_digest(files: dict[str, FileState]) -> str:
    lines = "".join(f"{name}\t{state.sha256}\n" for name, state in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def plan(scans: dict[str, YearScan], previous: Cursor) -> Plan:
    """Which years to run, which wait for a writer, and the cursor to keep."""
    cursor = Cursor(files={}, runs=dict(previous.runs), retired=dict(previous.retired))
    runs, pending, unchanged = [], {}, []
    for year, scan in sorted(scans.items()):
        before = previous.year_files(year)
        if scan.pending:
            pending[year] = scan.pending
            cursor.files.update(before)  # nothing of this year is recorded until it settles
            continue
        now = {n: s.sha256 for n, s in scan.files.items()}
        old = {n: s.get("sha256") for n, s in before.items()}
        added = sorted(set(now) - set(old))
        removed = sorted(set(old) - set(now))
        changed = sorted(n for n in set(now) & set(old) if now[n] != old[n])
        cursor.files.update({n: s.to_json() for n, s in scan.files.items()})
        if added or changed or removed:
            cursor.runs[year] = cursor.runs.get(year, 0) + 1
            runs.append(YearRun(year, added, changed, removed, cursor.runs[year],
                                state_digest(scan.files)))
        else:
            unchanged.append(year)
    gone = sorted({n.split("/", 1)[0] for n in previous.files} - set(scans))
    return Plan(runs, pending, unchanged, gone, cursor)


@dataclass
class Retirement:
    """Years to retire, and the run key of the request (new each time a year goes)."""

    years: list[str]
    run_key: str


def retirement(plan_: Plan, known_years: set[str], landing_usable: bool) -> Retirement | None:
    """Which years to retire after this look: gone from the landing folder on this look, or
    still known to Dagster without a folder. None when there are none, or when the landing
    folder is not usable (missing, no year folder): then nothing is retired. Updates
    `plan_.cursor.retired`."""
    if not landing_usable:
        return None
    present = {r.year for r in plan_.runs} | set(plan_.unchanged) | set(plan_.pending)
    years = sorted((set(plan_.years_gone) | set(known_years)) - present)
    if not years:
        return None
    for year in plan_.years_gone:
        plan_.cursor.retired[year] = plan_.cursor.retired.get(year, 0) + 1
    counts = "+".join(f"{y}.{plan_.cursor.retired.get(y, 0)}" for y in years)
    return Retirement(years, f"retire:{counts}")


def encode_cursor(cursor: Cursor) -> str:
    data = {"version": CURSOR_VERSION, "files": cursor.files, "runs": cursor.runs}
    if cursor.retired:
        data["retired"] = cursor.retired
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def decode_cursor(text: str | None) -> Cursor:
    """An empty, unparsable or foreign cursor counts as "seen nothing": every year runs once,
    which is safe because every partition write replaces its slice."""
    if not text:
        return Cursor()
    try:
        data = json.loads(text)
    except ValueError:
        return Cursor()
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return Cursor()
    files = {str(k): dict(v) for k, v in (data.get("files") or {}).items() if isinstance(v, dict)}
    runs = {str(k): int(v) for k, v in (data.get("runs") or {}).items()}
    retired = {str(k): int(v) for k, v in (data.get("retired") or {}).items()}
    return Cursor(files=files, runs=runs, retired=retired)


def describe(plan_: Plan) -> list[str]:
    """One line per year, for the sensor's log."""
    lines = [f"{r.year}: run ({r.summary()})" for r in plan_.runs]
    for year, items in sorted(plan_.pending.items()):
        lines += [f"{year}: waiting, {p.name} {p.reason}" for p in items]
    lines += [f"{year}: no longer a year folder (no mapping.yaml): retiring it from the "
              "warehouse (raw/year_retirements)" for year in plan_.years_gone]
    return lines

