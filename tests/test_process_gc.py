"""The collector's settings every pipeline process gets when it loads the definitions."""

import gc

from pipeline import process_gc


def test_loading_the_definitions_sets_the_collector():
    import pipeline.definitions  # noqa: F401  (what every pipeline process imports)

    assert gc.get_threshold() == process_gc.THRESHOLDS


def test_a_cycle_is_collected_without_being_asked():
    """No gc.collect(): with THRESHOLDS the collector still runs by itself (a threshold of
    0 would turn it off), and a young cycle goes at the next young collection, within
    THRESHOLDS[0] allocations."""
    import weakref

    process_gc.tune()

    class Node:
        pass

    gc.collect(0)   # the young count starts at 0: no collection comes while the cycle lives
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    keep = [[] for _ in range(process_gc.THRESHOLDS[0] * 2)]   # allocations, kept alive
    assert alive() is None
    assert len(keep) == process_gc.THRESHOLDS[0] * 2


def _without_the_process_watch():
    """Stop this process's GrowthWatch (tune's) so a test's own watch is the only collector
    on growth; returns a function that starts it again."""
    running = process_gc.watch()
    if running is not None:
        running.stop()
        process_gc._WATCH = None
    return process_gc.tune if running is not None else (lambda: None)


def test_growth_watch_collects_a_cycle_that_holds_memory():
    """Garbage in a cycle holding 200 MB, with the automatic collector off, then 100 MB more
    kept alive: only the watch's full collection on growth (64 MB here) can free the cycle."""
    import time
    import weakref

    import numpy as np
    import pytest

    if process_gc.resident_mb() is None:
        pytest.skip("resident memory is read from /proc (Linux)")
    restart = _without_the_process_watch()
    enabled = gc.isenabled()
    gc.disable()
    watch = None
    try:
        class Holder:
            pass

        holder = Holder()
        holder.me = holder
        holder.data = np.ones(200 * 2**20 // 8)   # written: resident
        alive = weakref.ref(holder)
        del holder
        watch = process_gc.GrowthWatch(growth_mb=64, every=0.02)
        live = np.ones(100 * 2**20 // 8)
        deadline = time.monotonic() + 30
        # the count goes up once the collection, which frees the cycle, has returned
        while (alive() is not None or not watch.collections) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alive() is None
        assert watch.collections >= 1 and watch.seconds > 0
        assert live.sum() == live.size
    finally:
        if watch is not None:
            watch.stop()
        if enabled:
            gc.enable()
        restart()


def test_the_watch_is_one_per_process():
    process_gc.tune()
    first = process_gc.watch()
    process_gc.tune()
    assert process_gc.watch() is first
    if process_gc.resident_mb() is not None:
        assert first is not None and first.pid == __import__("os").getpid()


def test_the_threshold_comes_from_the_environment(monkeypatch):
    import pytest

    monkeypatch.setenv(process_gc.GROWTH_ENV, "256")
    assert process_gc.growth_mb() == 256
    monkeypatch.setenv(process_gc.GROWTH_ENV, "")
    assert process_gc.growth_mb() == process_gc.GROWTH_MB
    monkeypatch.setenv(process_gc.GROWTH_ENV, "lots")
    with pytest.raises(ValueError, match="SURVEY_GC_GROWTH_MB"):
        process_gc.growth_mb()


def test_no_watch_when_turned_off(monkeypatch):
    restart = _without_the_process_watch()
    try:
        monkeypatch.setenv(process_gc.GROWTH_ENV, "0")
        process_gc.tune()
        assert process_gc.watch() is None
    finally:
        monkeypatch.delenv(process_gc.GROWTH_ENV)
        restart()
