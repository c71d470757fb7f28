"""Dagster's cost per step on a SQLite instance, with and without the CLI's kept engines.

    .venv/bin/python bench/dagster_steps.py plain   # Dagster's storages as they come
    .venv/bin/python bench/dagster_steps.py keep    # keep_sqlite_engines
    .venv/bin/python bench/dagster_steps.py keep+migrations   # and read_migrations_once
                                                    # (both: survey-pipeline run)

A chain of N trivial assets, each with a blocking check (2N steps, no work in them), run R
times into a fresh SQLite instance under a temporary DAGSTER_HOME, with the flush pragma of
`survey-pipeline run` in both modes. Prints wall and CPU seconds and the events of one run.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # bench/pipeline.py would shadow the package


def chain(n: int) -> tuple[list, list]:
    import dagster as dg

    assets, checks = [], []
    for i in range(n):
        @dg.asset(name=f"a{i}", deps=[assets[-1]] if assets else [])
        def node():
            return None

        @dg.asset_check(asset=node, name="valid", blocking=True)
        def valid():
            return dg.AssetCheckResult(passed=True)

        assets.append(node)
        checks.append(valid)
    return assets, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["plain", "keep", "keep+migrations"])
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["DAGSTER_HOME"] = tempfile.mkdtemp(prefix="dagster-steps-")

    import dagster as dg

    from pipeline.instance_sqlite import (
        keep_sqlite_engines,
        read_migrations_once,
        relax_sqlite_flushes,
    )

    relax_sqlite_flushes()
    if args.mode.startswith("keep"):
        keep_sqlite_engines()
    if args.mode.endswith("+migrations"):
        read_migrations_once()
    assets, checks = chain(args.assets)
    defs = dg.Definitions(assets=assets, asset_checks=checks,
                          jobs=[dg.define_asset_job("chain", selection="*")])
    job = defs.resolve_job_def("chain")
    instance = dg.DagsterInstance.get()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.runs):
        result = job.execute_in_process(instance=instance)
        assert result.success
    print(f"{args.mode}: {args.runs} runs of {2 * args.assets} steps: "
          f"wall {time.perf_counter() - wall:.2f} s, cpu {time.process_time() - cpu:.2f} s, "
          f"events per run {len(instance.all_logs(result.run_id))}")


if __name__ == "__main__":
    main()
