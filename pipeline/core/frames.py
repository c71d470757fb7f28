"""What the stages' frames have in common: the columns that name a code, and the check that a
frame has the columns a function needs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# A code application is identified by these, with the answer id.
CODE_KEY = ["framework", "dimension", "code_id"]


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str,
                    error: type[Exception] = ValueError) -> None:
    """Raise `error` naming the frame and every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise error(f"{name} is missing column(s): {', '.join(missing)}")
