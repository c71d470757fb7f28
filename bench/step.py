"""Time (and optionally profile) one step of the pipeline against a folder kept by bench/pipeline.py.

    .venv/bin/python bench/step.py --root /tmp/b/k100 --asset reports/refi_qda \
        [--partition 2023-24] [--warehouse COPY.duckdb] [--reports DIR] [--profile out.prof]

The folder is what `bench/pipeline.py --keep DIR` leaves: sample/ (landing, roster.csv, coding),
cache/ (sentence vectors, fits) and survey.duckdb (a built warehouse). Pass --warehouse to work on
a copy (the step writes to it) and --reports for a scratch reports folder, so the kept folder
stays as the bench left it.

The refresh itself, step by step: `bench/pipeline.py --keep DIR --snapshot SNAP` saves the state
before the refresh; then

    .venv/bin/python bench/step.py --root DIR --snapshot SNAP --work SCRATCH --refresh

copies SNAP into SCRATCH and runs what the bench's refresh runs (the latest year's partitioned
assets, then the all-years ones) on it. The cache's keys include the pipeline's code: replay a
snapshot with the code that made it. Prints the step's wall time from the run's events, the run's wall
time and the process's peak RSS; --profile writes a cProfile of the run (in-process executor).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--asset", action="append",
                        help="asset key with / between parts; repeat for several")
    parser.add_argument("--snapshot", type=Path, help="a folder saved by bench/pipeline.py "
                        "--snapshot: copied into --work, which then holds the warehouse, "
                        "cache and reports")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--refresh", action="store_true",
                        help="instead of --asset: the bench's refresh (latest year, then all years)")
    parser.add_argument("--partition")
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--reports", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    if not args.asset and not args.refresh:
        parser.error("give --asset or --refresh")
    if args.snapshot:
        if not args.work:
            parser.error("--snapshot needs --work")
        shutil.rmtree(args.work, ignore_errors=True)
        shutil.copytree(args.snapshot, args.work)
        args.warehouse = args.work / "survey.duckdb"
        args.reports = args.work / "reports"
        os.environ["SURVEY_CACHE_DIR"] = str(args.work / "cache")

    os.environ.setdefault("SURVEY_CACHE_DIR", str(args.root / "cache"))
    import dagster as dg

    from pipeline.definitions import build_defs
    from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
    from pipeline.runner import run_order, sync_partitions

    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "bench" / "pipeline.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    sample = args.root / "sample"
    resources = {
        "paths": ProjectPaths(landing_dir=str(sample / "landing"),
                              roster_path=str(sample / "roster.csv"),
                              coder_sheets_dir=str(sample / "coding"),
                              reports_dir=str(args.reports or args.root / "reports"),
                              pseudonym_salt="bench"),
        "codebooks": Codebooks(codebook_dir=str(ROOT / "codebooks")),
        "warehouse": Warehouse(path=str(args.warehouse or args.root / "survey.duckdb")),
    }
    defs = build_defs(resources)
    instance = dg.DagsterInstance.ephemeral()
    landing = sample / "landing"
    sync_partitions(instance, sorted(p.name for p in landing.iterdir()
                                     if (p / "mapping.yaml").exists()))
    if args.refresh:
        _, partitioned, after = run_order(defs.get_repository_def().asset_graph)
        year = args.partition or bench.latest_year(landing)
        runs = [(f"{year} (sensor)", partitioned, year), ("all years (automation)", after, None)]
    else:
        runs = [("run", [dg.AssetKey(a.split("/")) for a in args.asset], args.partition)]
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    done = [(label, *bench.materialise(defs, instance, resources, selection, partition))
            for label, selection, partition in runs]
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    title = "refresh" if args.refresh else ", ".join(args.asset)
    bench.print_steps(f"{title} ({args.partition or 'all years'})", done, instance)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from pipeline import process_gc

    growth = process_gc.watch()   # the full collections on memory growth, if any
    print(f"total_s={time.perf_counter() - t0:.1f} peak_mb={peak_mb:.0f} gc_growth_collections="
          f"{growth.collections if growth else 0} gc_growth_s="
          f"{growth.seconds if growth else 0.0:.1f}")
    return 0 if all(result.success for _, result, _ in done) else 1


if __name__ == "__main__":
    raise SystemExit(main())
