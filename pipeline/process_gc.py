"""The garbage collector's settings for a process that runs the pipeline.

Python's cyclic collector runs a full collection, a pass over every tracked object, every
~70,000 net allocations (its default thresholds 700, 10, 10). A pipeline process holds
millions of objects: the modules dagster, pandas and Great Expectations bring (~400,000) and,
during a step, large parsed inputs (a coder workbook's rows, staging's records). Importing the
coder sheets at a million answers made 27 full collections, 15-16 s of a ~120 s step
(docs/benchmarks.md, stop 37).

So when the definitions are loaded, once per process, the young generation's threshold is
raised to 20,000 allocations and each older one's to 20 collections of the one below: a full
collection every ~8 million net allocations (3 in that step). Garbage in a cycle is still
collected, later: a cycle dropped while young goes within 20,000 allocations, but one that
survived a collection first waits for its older generation's, now ~400,000 allocations (once
promoted) or ~8 million (twice) instead of ~7,700 or ~85,000. A frame or array held in such
a cycle stays that much longer: the 1M full build's peak was 5.5 GB against 5.4 GB before (the
target is 8 GB). No result depends on when the collector runs.

Collections are counted in objects, not bytes, and in a long build what a cycle holds is
often large: pandas caches an accessor on its object, and the accessor points back at it, so a
Series whose `.str` was used, or a frame pandera validated (`pipeline.schemas.validate` breaks
that one), is a cycle. Each step left hundreds of MB so: the 1M build's process held ~5.5 GB
between steps and peaked at 8.5 GB; with the watch below, ~2 GB and 5.0 GB, for 14 full
collections taking 14 s of the 29-minute build (docs/benchmarks.md, Stop 39). So `tune`
also starts a thread (`GrowthWatch`) that reads this process's resident memory every
WATCH_SECONDS and makes a full collection when it is GROWTH_MB above what it was after the
last one (or its lowest since): the garbage waiting for the collector is bounded in bytes.
$SURVEY_GC_GROWTH_MB sets GROWTH_MB (0: no watch).

The imports' objects are not frozen (`gc.freeze`, which would spare each full collection
those ~400,000): `core.parallel.map_forked` freezes everything while its workers live and
unfreezes everything after, so a freeze made here would last only until the first map.
"""

from __future__ import annotations

import gc
import os
import threading
import time

THRESHOLDS = (20_000, 20, 20)
GROWTH_MB = 1024      # a full collection when resident memory grew this much since the last
GROWTH_ENV = "SURVEY_GC_GROWTH_MB"   # overrides GROWTH_MB; 0 turns the watch off
WATCH_SECONDS = 0.5   # how often GrowthWatch reads resident memory (~20 microseconds a read)

_WATCH: GrowthWatch | None = None


def resident_mb() -> float | None:
    """This process's resident memory (Linux's /proc/self/statm), or None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class GrowthWatch:
    """A daemon thread: a full collection (`gc.collect()`) whenever this process's resident
    memory is `growth_mb` above its floor, the memory after the last collection or the lowest
    read since. Which thread collects changes no result; `collections` and `seconds` count
    what it did. A map_forked worker forked while this thread is collecting (it can be,
    while a finalizer runs) may collect no cycles of its own; the workers live for one map."""

    def __init__(self, growth_mb: float = GROWTH_MB, every: float = WATCH_SECONDS):
        self.growth_mb, self.every = growth_mb, every
        self.pid = os.getpid()
        self.collections, self.seconds = 0, 0.0
        self.floor = resident_mb() or 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gc-growth-watch",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            now = resident_mb()
            if now is None:
                return
            if now < self.floor:
                self.floor = now
            elif now - self.floor >= self.growth_mb:
                start = time.perf_counter()
                gc.collect()
                self.seconds += time.perf_counter() - start
                self.collections += 1
                self.floor = resident_mb() or now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def growth_mb() -> float:
    """GROWTH_MB, or $SURVEY_GC_GROWTH_MB when set (0 or less: no watch)."""
    value = os.environ.get(GROWTH_ENV, "").strip()
    if not value:
        return GROWTH_MB
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{GROWTH_ENV}={value!r}: expected a number of MB (0: no watch)") from None


def watch() -> GrowthWatch | None:
    """This process's GrowthWatch, started by `tune` (None: not started, or not Linux)."""
    return _WATCH if _WATCH is not None and _WATCH.pid == os.getpid() else None


def tune() -> None:
    """Set THRESHOLDS and start this process's GrowthWatch, unless $SURVEY_GC_GROWTH_MB is 0
    (again: harmless; a forked child starts its own, the parent's thread is not copied into
    it)."""
    global _WATCH
    gc.set_threshold(*THRESHOLDS)
    growth = growth_mb()
    if watch() is None and growth > 0 and resident_mb() is not None:
        _WATCH = GrowthWatch(growth)
