"""Two pandera pieces the contracts use, with pandera's meaning at a fraction of its cost.

Pandera checks a `str` column by calling `isinstance` on every value from Python, and
`str_matches` by `Series.str.match`, a Python call per value: 10 of the 14 contract checks'
seconds on a 100,000-answer school year (docs/benchmarks.md). Here:

- `FastString`: pandera's `str` dtype; a column pandas infers as all strings (its C loop,
  `infer_dtype`, nulls skipped) passes at once, any other goes through pandera's own check,
  so the failure cases are the same. (Pandera's own check also renders a table of no failures
  for every passing column: 1.7 ms each, 170 columns in a sample run's contracts.) Coercing
  such a column is left out too: pandera's coercion turns every non-null value into `str` and
  keeps the nulls (two null scans, two copies), which gives back the same values; any other
  column is coerced by pandera.
- the `matches` check: `re.match` of the pattern, like `str_matches`, computed once per distinct
  value (the school years, codes and hashes repeat; ids do not, and cost one plain call each).

Registered with pandera when this module is imported (catalog.model imports it).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pandera import dtypes, extensions
from pandera.engines import pandas_engine


@pandas_engine.Engine.register_dtype
@dtypes.immutable
class FastString(pandas_engine.NpString):
    """pandera's `str` (NpString: coerced the same way), with a vectorised check."""

    def coerce(self, data_container):
        if pd.api.types.is_object_dtype(data_container) and _all_strings(data_container):
            return data_container   # what NpString.coerce gives: the strings, the nulls kept
        return super().coerce(data_container)

    def check(self, pandera_dtype, data_container=None):
        if _all_strings(data_container):
            return True   # one answer for the column: pandera then formats no failure table
        return super().check(pandera_dtype, data_container)


def _all_strings(data) -> bool:
    """A Series whose values are all `str` (a subclass too) or null."""
    return (isinstance(data, pd.Series)
            and pd.api.types.infer_dtype(data, skipna=True) in ("string", "empty"))


@extensions.register_check_method(statistics=["pattern"], supported_types=pd.Series)
def matches(series: pd.Series, *, pattern: str) -> pd.Series:
    """Whether `re.match(pattern, value)` matches each value (pandera's `str_matches`); a value
    that is not a string does not match."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    regex = re.compile(pattern)
    ok = np.fromiter((isinstance(u, str) and regex.match(u) is not None for u in uniques),
                     dtype=bool, count=len(uniques))
    return pd.Series(np.append(ok, False)[codes], index=series.index)
