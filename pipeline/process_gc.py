"""The garbage collector's settings for a process that runs the pipeline.

Python's cyclic collector runs a full collection, a pass over every tracked object, every
~70,000 net allocations (thresholds 700, 10, 10). A pipeline process holds millions of them:
the modules dagster, pandas and Great Expectations bring (~400,000 objects) and, during a
step, large parsed inputs (a coder workbook's rows, staging's records). Importing the coder
sheets at a million answers made 27 full collections, 15-16 s of a ~120 s step
(docs/benchmarks.md, stop 37). So, once per process, when the definitions are loaded:

- everything allocated so far (the imports) is moved to the permanent generation
  (`gc.freeze`), which no collection scans; it is still freed at exit. In the workers that
  `core.parallel.map_forked` forks, the frozen objects' pages are also not written by the
  collector, so they stay shared with the parent;
- the young generation's threshold is raised to 20,000 allocations and each older one's to
  20 collections of the one below: a full collection every ~8 million net allocations.

Garbage in a cycle is still collected, later; what it holds meanwhile is bounded by the
20,000 young objects between collections. Nothing else changes: no result depends on when
the collector runs.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)


def tune() -> None:
    """Freeze what exists and set THRESHOLDS (again: harmless)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
