"""Benchmark: what publishing the read-only warehouse copy costs (disk, seconds).

    .venv/bin/python bench/publish.py --warehouse warehouse/survey.duckdb [--repeats 5]
    .venv/bin/python bench/publish.py --answers 100000 [--workdir bench/out/publish] [--repeats 5]

With --warehouse: publishes that built warehouse (pipeline/core/warehouse/publish.py: ATTACH
read-only, COPY FROM DATABASE into a temporary file, row counts checked, rename, manifest) into
a temporary folder --repeats times. With --answers N: first generates the synthetic sample at N
answers (tools/sample/synth.py, seed 2024) under --workdir and builds it with
`survey-pipeline run` (every asset, the publication included; ephemeral Dagster instance),
printing how long the build took, then measures as above.

Prints the working file's size (after a CHECKPOINT), the published copy's size, the median and
range of the publish seconds, and the time a reader takes to open the copy and count
staging.answers. The last line: `publish_s=... working_mb=... published_mb=... answers=...`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.warehouse.publish import publish  # noqa: E402


def build(answers: int, workdir: Path) -> Path:
    from tools.sample.synth import generate_sample

    sample = workdir / f"sample-{answers}"
    warehouse = workdir / f"warehouse-{answers}" / "survey.duckdb"
    if not warehouse.exists():
        started = time.monotonic()
        generate_sample(sample, n_answers=answers)
        print(f"generated {answers} answers in {time.monotonic() - started:.1f}s -> {sample}")
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update(SURVEY_LANDING_DIR=str(sample / "landing"),
                   SURVEY_ROSTER=str(sample / "roster.csv"),
                   SURVEY_CODER_SHEETS=str(sample / "coding"),
                   SURVEY_REPORTS=str(workdir / f"reports-{answers}"),
                   SURVEY_WAREHOUSE=str(warehouse))
        started = time.monotonic()
        done = subprocess.run([str(Path(sys.executable).parent / "survey-pipeline"), "run",
                               "--log-level", "WARNING"], env=env, capture_output=True,
                              text=True)
        print(f"built with survey-pipeline run in {time.monotonic() - started:.0f}s "
              f"(exit {done.returncode})")
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            sys.exit(1)
    return warehouse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--warehouse", type=Path, help="a built working warehouse")
    src.add_argument("--answers", type=int, help="generate and build a sample of N answers")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "publish")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    warehouse = args.warehouse or build(args.answers, args.workdir)
    with duckdb.connect(str(warehouse)) as con:   # a clean file: WAL folded in
        con.execute("checkpoint")
        answers = con.execute("select count(*) from staging.answers").fetchone()[0]
    working = warehouse.stat().st_size
    seconds, opens = [], []
    with tempfile.TemporaryDirectory(dir=warehouse.parent) as tmp:
        for _ in range(args.repeats):
            pub = publish(warehouse, tmp, run_id="bench")
            seconds.append(pub.seconds)
            started = time.monotonic()
            with duckdb.connect(str(pub.path), read_only=True) as con:
                con.execute("select count(*) from staging.answers").fetchone()
            opens.append(time.monotonic() - started)
        size = pub.size_bytes
        tables = len(pub.manifest["row_counts"])
        views = len(pub.manifest["views"])
    print(f"warehouse {warehouse}: {answers} staged answers, {tables} tables, {views} views")
    print(f"working file {working / 1e6:.1f} MB, published copy {size / 1e6:.1f} MB "
          f"(disk used by publishing: +{size / working:.0%} of the working file)")
    print(f"publish: median {statistics.median(seconds):.2f}s over {args.repeats} "
          f"(min {min(seconds):.2f}s, max {max(seconds):.2f}s); a reader's open + count: "
          f"median {statistics.median(opens) * 1000:.0f} ms")
    print(f"publish_s={statistics.median(seconds):.2f} working_mb={working / 1e6:.1f} "
          f"published_mb={size / 1e6:.1f} answers={answers}")


if __name__ == "__main__":
    main()
