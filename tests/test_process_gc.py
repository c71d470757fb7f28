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
