"""Pure work spread over this machine's cores, in forked worker processes.

A step of the pipeline runs in one process, on one core, and the warehouse has one writer, so
the steps of a run go one after another. Some of their work is a pure function of many
independent items (a session's REFI-QDA sources, a chunk of answers to suggest codes for, the
name checks of an export file's texts):
`map_forked` runs it in worker processes forked from this one, which see what this process
holds (the project, the fitted suggester) without pickling it, and return their results in
order: only the items' results travel back (pickled). The results are those of
`[func(x) for x in items]`, whatever the number of workers: the function must not depend on
state its calls change (caches that give the same answer either way are fine), and what it
changes in this process's objects is lost.

Each map forks its workers anew: about half a second for a step that holds gigabytes, so the
callers keep to work of several seconds or more. It runs in this process when there are fewer
than `min_items` items, when there is one core, when fork is not available (not Linux), in a
daemonic process, which may not have children, and, after a warning, when the workers cannot
be forked (memory) or one of them dies.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4
_WORK: Callable | None = None   # the function of the current map, as the forked workers see it
_ONE_MAP = threading.Lock()     # one map at a time in this process (another thread's runs here)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def in_map() -> bool:
    """Whether a map_forked runs: in one of its worker processes (which share the cores with
    the others), or in the process waiting for them."""
    return _WORK is not None


def can_fork() -> bool:
    return ("fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def _call_chunk(chunk: Sequence) -> list:
    return [_WORK(item) for item in chunk]


def map_forked(func: Callable[[T], R], items: Iterable[T], min_items: int = 2,
               workers: int | None = None) -> list[R]:
    """`[func(x) for x in items]`, in `workers` forked processes (default: one per core, at
    most MAX_WORKERS) when there are at least `min_items` items; in order. `func` need not be
    picklable (a closure is fine): the workers inherit it."""
    global _WORK
    items = list(items)
    n = min(workers or min(cores(), MAX_WORKERS), len(items))
    # _WORK set: inside a worker (no nesting); the lock taken: another thread's map runs
    if n < 2 or len(items) < max(min_items, 2) or not can_fork() or _WORK is not None \
            or not _ONE_MAP.acquire(blocking=False):
        return [func(x) for x in items]
    try:
        # a few chunks per worker: the items' costs differ, and each chunk is one round trip
        size = -(-len(items) // (4 * n))
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        _WORK = func
        # this process's objects out of the collector's reach while the workers live: a full
        # collection in a worker would touch (and so copy) every page it shares with this one
        gc.freeze()
        try:
            with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
                return [r for part in pool.map(_call_chunk, chunks) for r in part]
        except (OSError, BrokenProcessPool) as exc:   # no fork (memory), a worker killed
            log.warning("worker processes failed (%s): running %d items in this process",
                        exc, len(items))
        finally:
            gc.unfreeze()
            _WORK = None
    finally:
        _ONE_MAP.release()
    return [func(x) for x in items]
