"""Benchmark: staging one school year (`staging.stage_year`), its name checks done row by row
(the baseline: as before stop 38) against done ahead on every core (`_check_ahead`, now), in
one process, then the step's own fuzzy scan of the staged answers (`name_leaks`) both ways.

    .venv/bin/python bench/staging.py [--answers 100000] [--repeats 3] [--seed 2024]

Generates one school year of the sample (`tools.sample.synth`, `--answers` answers, 9 session
exports; not timed), reads its exports (`raw.read_year`, not timed), then stages it with fresh
memos each time (no clean memo: a first run's case), the two ways alternating, `--repeats`
times each. Prints the median seconds of each and their ratio, and whether the two ways staged
the same rows and found the same names. Last line:
`answers=... rows=... baseline_s=... current_s=... speedup=... leaks_baseline_s=...
leaks_current_s=... leaks_speedup=... same=...`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.ingest import raw, staging  # noqa: E402
from pipeline.core.ingest.mapping import load_mapping  # noqa: E402
from pipeline.core.privacy import name_scan  # noqa: E402
from pipeline.core.privacy.name_scan import FuzzyNameScan  # noqa: E402
from pipeline.core.privacy.redact import load_roster  # noqa: E402
from pipeline.defs.ingestion import name_leaks  # noqa: E402
from tools.sample.synth import generate_sample  # noqa: E402

NEVER = 10**12   # AHEAD_MIN_TEXTS that no file reaches: every check row by row


def stage(data, mapping, roster, ahead: bool):
    """(seconds of stage_year, seconds of name_leaks, the result, the leaks), fresh memos."""
    with mock.patch.object(staging, "AHEAD_MIN_TEXTS",
                           name_scan.AHEAD_MIN_TEXTS if ahead else NEVER), \
            mock.patch.object(name_scan, "AHEAD_MIN_TEXTS",
                              name_scan.AHEAD_MIN_TEXTS if ahead else NEVER):
        fuzzy = FuzzyNameScan(roster)
        t0 = time.perf_counter()
        staged = staging.stage_year(data.export_files, data.survey_rows, mapping, roster,
                                    fuzzy=fuzzy)
        t1 = time.perf_counter()
        leaks = name_leaks(staged.answers, fuzzy, data.export_files)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, staged, leaks


def same(a, b) -> bool:
    """Equal staged tables (quarantined_at and the kept lists aside: both runs are fresh)."""
    frames = [(a.answers, b.answers), (a.redactions, b.redactions),
              (a.quarantine.drop(columns="quarantined_at"),
               b.quarantine.drop(columns="quarantined_at"))]
    return all(x.equals(y) for x, y in frames) and a.names == b.names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_staging_") as tmp:
        out = Path(tmp)
        generate_sample(out, args.answers, args.seed, 1)
        year_dir = next(p for p in sorted((out / "landing").iterdir()) if p.is_dir())
        data = raw.read_year(year_dir)
        mapping = load_mapping(year_dir / "mapping.yaml")
        roster = load_roster(out / "roster.csv")
    rows = len(data.survey_rows)
    print(f"{args.answers} answers generated: {rows:,} raw rows in "
          f"{int((data.export_files['status'] == 'loaded').sum())} exports")
    times = {True: [], False: []}
    leak_times = {True: [], False: []}
    results = {}
    for _ in range(args.repeats):
        for ahead in (False, True):
            seconds, leak_seconds, staged, leaks = stage(data, mapping, roster, ahead)
            times[ahead].append(seconds)
            leak_times[ahead].append(leak_seconds)
            results[ahead] = (staged, leaks)
            print(f"{'ahead' if ahead else 'row by row':<11} stage_year {seconds:6.2f} s  "
                  f"name_leaks {leak_seconds:5.2f} s")
    base, now = statistics.median(times[False]), statistics.median(times[True])
    leak_base = statistics.median(leak_times[False])
    leak_now = statistics.median(leak_times[True])
    equal = same(results[False][0], results[True][0]) and results[False][1] == results[True][1]
    print(f"answers={args.answers} rows={rows} baseline_s={base:.2f} current_s={now:.2f} "
          f"speedup={base / now:.2f} leaks_baseline_s={leak_base:.2f} "
          f"leaks_current_s={leak_now:.2f} leaks_speedup={leak_base / leak_now:.2f} "
          f"same={equal}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
