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

The imports' objects are not frozen (`gc.freeze`, which would spare each full collection
those ~400,000): `core.parallel.map_forked` freezes everything while its workers live and
unfreezes everything after, so a freeze made here would last only until the first map.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)


def tune() -> None:
    """Set THRESHOLDS (again: harmless)."""
    gc.set_threshold(*THRESHOLDS)
