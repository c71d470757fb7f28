"""Compare two built warehouses table by table: same tables, same columns, same rows.

    python tools/compare_warehouses.py BEFORE.duckdb AFTER.duckdb [--ignore-column loaded_at ...]

Every table of every schema is read whole, its columns sorted by name and its rows sorted by
every column, then compared; timestamps of the run itself (loaded_at, quarantined_at by
default) are left out. Prints one line per table (identical, or what differs, with a few
differing rows) and exits 1 if anything differs. Used to show that a refactoring changed no
data (issue 10): build the warehouse before and after with `make run` and compare.
"""

from __future__ import annotations

import argparse
import sys

import duckdb
import pandas as pd

RUN_TIMES = ("loaded_at", "quarantined_at")


def tables(con) -> list[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' order by 1").fetchall()
    return [r[0] for r in rows]


def snapshot(con, table: str, ignore: set[str]) -> pd.DataFrame:
    frame = con.execute(f"select * from {table}").df()
    frame = frame[sorted(c for c in frame.columns if c not in ignore)]
    text = frame.astype(str)
    return text.sort_values(list(text.columns)).reset_index(drop=True) if len(text.columns) \
        else text


def compare(before: str, after: str, ignore: set[str]) -> list[str]:
    problems = []
    with duckdb.connect(before, read_only=True) as a, duckdb.connect(after, read_only=True) as b:
        ta, tb = tables(a), tables(b)
        for t in sorted(set(ta) ^ set(tb)):
            problems.append(f"{t}: only in {'before' if t in ta else 'after'}")
        for t in sorted(set(ta) & set(tb)):
            fa, fb = snapshot(a, t, ignore), snapshot(b, t, ignore)
            if list(fa.columns) != list(fb.columns):
                problems.append(f"{t}: columns differ: {sorted(set(fa.columns) ^ set(fb.columns))}")
                continue
            if fa.equals(fb):
                print(f"{t}: identical ({len(fa)} rows)")
                continue
            merged = fa.merge(fb, how="outer", indicator=True)
            diff = merged[merged["_merge"] != "both"]
            problems.append(f"{t}: {len(fa)} rows before, {len(fb)} after, {len(diff)} differ; "
                            f"e.g. {diff.head(3).to_dict('records')}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--ignore-column", action="append", default=list(RUN_TIMES))
    args = ap.parse_args()
    problems = compare(args.before, args.after, set(args.ignore_column))
    for p in problems:
        print(p)
    print("identical" if not problems else f"{len(problems)} tables differ")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
