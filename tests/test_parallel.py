"""map_forked: the results of a plain map, in order, computed in forked workers."""

import os

import pytest

from pipeline.core import parallel


def test_results_in_order_from_forked_workers():
    offset = 7   # a closure: the workers inherit it, nothing is pickled but items and results
    got = parallel.map_forked(lambda x: (x + offset, os.getpid()), range(50), workers=2)
    assert [v for v, _pid in got] == [x + 7 for x in range(50)]
    if parallel.can_fork():
        pids = {pid for _v, pid in got}
        # in the workers (one of them may take every chunk before the other starts)
        assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_small_work_stays_in_this_process():
    got = parallel.map_forked(lambda x: os.getpid(), range(5), min_items=10, workers=2)
    assert set(got) == {os.getpid()}
    assert parallel.map_forked(lambda x: x, [], workers=2) == []


def test_no_nesting_inside_a_worker():
    def inner(x):
        return parallel.map_forked(lambda y: os.getpid(), range(4), workers=2)

    for pids in parallel.map_forked(inner, range(4), workers=2):
        assert len(set(pids)) == 1   # the worker ran its own map itself
        assert not parallel.can_fork() or os.getpid() not in pids   # in a worker


def test_a_workers_error_is_raised_here():
    def fail(x):
        if x == 3:
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 3"):
        parallel.map_forked(fail, range(10), workers=2)
    assert parallel.map_forked(lambda x: x, range(4), workers=2) == [0, 1, 2, 3]


def test_workers_that_fail_leave_the_work_to_this_process(monkeypatch):
    """A fork that fails (no memory) or a worker that dies: a warning, then the plain loop
    here."""
    class NoPool:
        def __init__(self, *a, **kw):
            raise OSError(12, "Cannot allocate memory")

    with monkeypatch.context() as m:
        m.setattr(parallel, "ProcessPoolExecutor", NoPool)
        assert parallel.map_forked(lambda x: (x, os.getpid()), range(4), workers=2) == [
            (x, os.getpid()) for x in range(4)]
    parent = os.getpid()

    def dies_in_a_worker(x):
        if os.getpid() != parent:
            os._exit(1)
        return x * 2

    assert parallel.map_forked(dies_in_a_worker, range(6), workers=2) == [0, 2, 4, 6, 8, 10]
    assert parallel._WORK is None and not parallel._ONE_MAP.locked()
