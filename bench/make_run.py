"""The sample's `make run` (`survey-pipeline run`), timed against a baseline in alternation.

    .venv/bin/python bench/make_run.py                      # this checkout, 5 runs
    .venv/bin/python bench/make_run.py --baseline eb37983   # and that commit, alternated
    .venv/bin/python bench/make_run.py --cold               # every run from empty caches

Each build gets its own warehouse, reports, Dagster home and cache folder under a temporary
directory (nothing of the checkout's own is touched), is run twice to warm up (not counted:
the first run fills the caches; the second redoes what depends on the other years, such as
staging's GX suite, which the first run saw without them), then the builds take turns, so a slower
minute of a shared machine falls on both. `--cold` empties the build's warehouse, reports and
caches before every run instead: the first run after install. A baseline commit is checked out
in a temporary git worktree and run with this checkout's virtualenv (its compiled scanner
copied in). Prints each run's wall time, then per build the median and, with a baseline, the
ratio of the medians; the last line is `make_run current_s=... [baseline_s=... ratio=...]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM_UPS = 2
RUN = "import sys; from pipeline.cli import main; sys.argv = ['survey-pipeline', 'run']; main()"


def checkout(rev: str, where: Path) -> Path:
    """A worktree of `rev` at `where`, with this checkout's compiled scanner."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach",
                    str(where), rev], check=True, capture_output=True)
    for built in (ROOT / "pipeline" / "core" / "coding").glob("_scanner*.so"):
        shutil.copy2(built, where / "pipeline" / "core" / "coding" / built.name)
    return where


def environment(code: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(code),
        "SURVEY_WAREHOUSE": str(home / "warehouse" / "survey.duckdb"),
        "SURVEY_REPORTS": str(home / "reports"),
        "SURVEY_CACHE_DIR": str(home / "cache"),
        "DAGSTER_HOME": str(home / "dagster_home"),
    })
    return env


def reset(home: Path, cold: bool) -> None:
    if cold:
        for part in ("warehouse", "reports", "cache"):
            shutil.rmtree(home / part, ignore_errors=True)
    for part in ("warehouse", "reports", "dagster_home"):
        (home / part).mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "pipeline" / "dagster.yaml", home / "dagster_home" / "dagster.yaml")


def timed_run(code: Path, home: Path, cold: bool) -> float:
    reset(home, cold)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN], cwd=code, env=environment(code, home),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed in {code} (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision to time in alternation")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per build")
    parser.add_argument("--cold", action="store_true", help="empty caches before every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="make-run-") as tmp:
        builds = {"current": ROOT}
        try:
            if args.baseline:
                builds["baseline"] = checkout(args.baseline, Path(tmp) / "baseline-code")
            homes = {name: Path(tmp) / name for name in builds}
            for _ in range(0 if args.cold else WARM_UPS):
                for name, code in builds.items():
                    print(f"warm-up {name}: {timed_run(code, homes[name], False):.2f} s",
                          flush=True)
            times: dict[str, list[float]] = {name: [] for name in builds}
            for i in range(args.runs):
                for name, code in builds.items():
                    times[name].append(timed_run(code, homes[name], args.cold))
                    print(f"run {i + 1} {name}: {times[name][-1]:.2f} s", flush=True)
        finally:
            if "baseline" in builds:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(builds["baseline"])], capture_output=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name}: median {medians[name]:.2f} s over {len(t)} "
              f"({', '.join(f'{x:.2f}' for x in t)})")
    line = f"make_run {'cold' if args.cold else 'warm'} current_s={medians['current']:.2f}"
    if "baseline" in medians:
        line += (f" baseline_s={medians['baseline']:.2f} "
                 f"ratio={medians['current'] / medians['baseline']:.3f}")
    print(line)


if __name__ == "__main__":
    main()
