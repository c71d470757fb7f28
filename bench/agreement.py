"""Benchmark: agreement_table with bootstrap intervals against point estimates only.

    .venv/bin/python bench/agreement.py [--answers 100000] [--codes 110] [--boot 1000]
        [--repeats 3]

Synthetic coding: --answers answers, each coded by three coders (h1, h2, kw), --codes codes in
6 dimensions of one framework, each coder applying each code with probability 0.05; two
questions and two school years. Times `agreement_table` for all three pairs with --boot
bootstrap replicates (codes: multinomial draws of each 2x2 table; pooled rows: answers
resampled, each with all its units) and, as the baseline in the same process, with
n_boot=0 (counts and point estimates only). Figures are medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.reconciliation.agreement import agreement_table  # noqa: E402


def synthetic(n_answers: int, n_codes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = pd.DataFrame(
        [("scale", f"d{i % 6}", f"c{i:03d}") for i in range(n_codes)],
        columns=["framework", "dimension", "code_id"],
    )
    answers = pd.DataFrame(
        {
            "answer_id": [f"A{i}" for i in range(n_answers)],
            "question_id": rng.choice(["worked", "improve"], n_answers),
            "school_year": rng.choice(["2020-2021", "2023-2024"], n_answers),
        }
    )
    units = pd.concat([answers.assign(coder=c) for c in ("h1", "h2", "kw")], ignore_index=True)
    apps = []
    for coder in ("h1", "h2", "kw"):
        i, j = np.nonzero(rng.random((n_answers, n_codes)) < 0.05)
        apps.append(
            codes.iloc[j].assign(answer_id=answers["answer_id"].to_numpy()[i], coder=coder)
        )
    return pd.concat(apps, ignore_index=True), units, codes


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--answers", type=int, default=100_000)
    ap.add_argument("--codes", type=int, default=110)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    apps, units, codes = synthetic(args.answers, args.codes)
    print(f"data: {args.answers:,} answers x {args.codes} codes x 3 coders, "
          f"{len(apps):,} applications")  # fmt: skip
    t_boot, table = timed(
        lambda: agreement_table(apps, units, codes, n_boot=args.boot, seed=1), args.repeats
    )
    t_point, _ = timed(lambda: agreement_table(apps, units, codes, n_boot=0), args.repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"with bootstrap (B={args.boot}): {t_boot:.2f} s for {len(table)} rows")
    print(f"point estimates only:      {t_point:.2f} s")
    print(
        f"seconds={t_boot:.2f} baseline_seconds={t_point:.2f} "
        f"ratio_to_baseline={t_boot / t_point:.1f} rows={len(table)} peak_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
