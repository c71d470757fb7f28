"""Benchmark: the whole pipeline at N answers, then the refresh after one new session's export.

    .venv/bin/python bench/pipeline.py --answers 100000 [--seed 2024] [--years 2] [--keep DIR]

1. Generates the data in a child process (not timed): `tools.sample.synth` with N answers
   (the study's two school years, 4 + 9 sessions; `--years K`: K consecutive school years
   ending in 2023-24, `synth.study_years`, every session about as large), the two coders'
   sheets and
   the filled adjudication file for them (`tools.sample.synth_coding`, scaled with N), and one
   more session's export for the latest year (session 10, about 1/9 of that year's answers:
   the sessions of a second sample with another seed and the same years, renumbered).
2. Full run: what `survey-pipeline run` does (`pipeline.runner`: shared inputs, each school
   year's partitions in waves, all years; in-process executor; every run's steps served by one
   open warehouse connection, `Warehouse.hold`) into a temporary warehouse.
3. Incremental: session 10 is dropped into the latest year's landing folder and what the
   landing sensor plus the all-years automation would refresh is run: that year's partitioned
   assets (the sensor's `school_year_refresh` job), then the unpartitioned assets downstream of
   them (`all_years_automation`: deps updated); each step opens the file itself, as the
   daemon's runs do (no hold).

$SURVEY_CACHE_DIR (sentence vectors, fitted models) is DIR/cache, emptied before the full run:
the full figure embeds every text; the refresh reuses what the full run stored.

Prints the wall time of every step of every run (from the run's STEP_START / STEP_SUCCESS
events) with this process's most and last resident memory sampled during it, in the order the
steps ran, the totals, the full collections `pipeline/process_gc.py`'s watch made, the peak
RSS of this process (the pipeline only: generation runs in a child) and a last line
`answers=... full_s=... incremental_s=... incremental_ratio=... peak_mb=... machine_peak_mb=...`
(`machine_peak_mb`: this process's RSS before the runs plus the most the machine's used memory,
MemTotal - MemAvailable, rose above what it was then, sampled four times a second: it counts
the worker processes steps fork, `pipeline.core.parallel`, which `peak_mb` does not; it also
counts anything else the machine runs meanwhile, so run the benchmark alone).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NEW_SESSION = 10

GENERATE = """
import sys
from pathlib import Path
from tools.sample.synth import generate_sample
from tools.sample.synth_coding import generate_coding_sample
out, extra, n, seed, codebooks, years = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), Path(sys.argv[5]), int(sys.argv[6])
generate_sample(out, n, seed, years)
generate_coding_sample(out, codebooks, seed)
# the new session: a second sample's latest year (another seed), about 1/9 of that year
generate_sample(extra, max(10, round(n / 9)), seed + 1, years)
"""


def generate(root: Path, n: int, seed: int, years: int) -> tuple[Path, Path]:
    sample, extra = root / "sample", root / "extra"
    subprocess.run([sys.executable, "-c", GENERATE, str(sample), str(extra), str(n), str(seed),
                    str(ROOT / "codebooks"), str(years)], check=True, cwd=ROOT)
    return sample, extra


def latest_year(landing: Path) -> str:
    return sorted(p.name for p in landing.iterdir() if (p / "mapping.yaml").exists())[-1]


def new_session_export(extra: Path, year: str) -> bytes:
    """Every session of the second sample's `year` as one Qualtrics export of session 10
    (three header rows; SessionNumber rewritten; response ids made distinct)."""
    files = sorted((extra / "landing" / year).glob("session-*.csv"))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for i, path in enumerate(files):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
        header, data = rows[:3], rows[3:]
        session_col = header[0].index("SessionNumber")
        id_col = header[0].index("ResponseId")
        if i == 0:
            writer.writerows(header)
        for row in data:
            row[session_col] = str(NEW_SESSION)
            row[id_col] = row[id_col] + "n"
            writer.writerow(row)
    return out.getvalue().encode("utf-8")


def machine_used_mb() -> float:
    """MemTotal - MemAvailable (Linux): what every process holds, page cache aside."""
    info = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            name, value = line.split(":", 1)
            info[name] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


def current_rss_mb() -> float:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    from pipeline.process_gc import resident_mb

    return resident_mb() or 0.0


class MachinePeak:
    """The peak of machine_used_mb() while running, sampled every `every` seconds: this
    process and the worker processes it forks (parallel.map_forked), which its own peak RSS
    does not count. Also keeps (time.time(), this process's RSS) at every sample, so each
    step's memory can be read off its start and end (`rss_during`)."""

    def __init__(self, every: float = 0.25):
        self.every, self.peak = every, machine_used_mb()
        self.start_used, self.peak_at = self.peak, time.time()
        self.samples: list[tuple[float, float]] = [(time.time(), current_rss_mb())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            used = machine_used_mb()
            if used > self.peak:
                self.peak, self.peak_at = used, time.time()
            self.samples.append((time.time(), current_rss_mb()))

    def rss_during(self, start: float, end: float) -> tuple[float, float]:
        """(the most, the last) RSS sampled in [start, end], in MB; NaNs if none was."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return (max(inside), inside[-1]) if inside else (float("nan"), float("nan"))

    def step_at_peak(self, runs: list[tuple[str, object, float]], instance) -> str:
        """The run and step that were running when the machine's use peaked."""
        for run_label, result, _wall in runs:
            for step, (start, end) in step_spans(instance, result.run_id).items():
                if start <= self.peak_at <= end:
                    return f"{run_label}: {step}"
        return "between steps"

    def stop(self) -> float:
        """The peak's rise over the machine's use when this started, in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak - self.start_used


def step_spans(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """step key -> (start, end) timestamps (time.time()) of the steps that ended."""
    import dagster as dg

    starts, spans = {}, {}
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START,
                                                    dg.DagsterEventType.STEP_SUCCESS,
                                                    dg.DagsterEventType.STEP_FAILURE}):
        key = entry.step_key
        if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
            starts[key] = entry.timestamp
        elif key in starts:
            spans[key] = (starts[key], entry.timestamp)
    return spans


def materialise(defs, instance, resources, selection, partition=None):
    import dagster as dg

    repo = defs.get_repository_def()
    assets = list({id(a): a for a in [*repo.assets_defs_by_key.values(),
                                      *repo.asset_checks_defs_by_key.values()]}.values())
    t0 = time.perf_counter()
    # the resources are bound to the assets by build_defs
    result = dg.materialize(assets, instance=instance, selection=selection,
                            partition_key=partition, raise_on_error=False,
                            run_config={"loggers": {"console": {"config": {
                                "log_level": "WARNING"}}}})
    return result, time.perf_counter() - t0


def print_steps(label: str, runs: list[tuple[str, object, float]], instance,
                watch: MachinePeak | None = None) -> dict[str, float]:
    """One line per step: run label, step, seconds, and (with `watch`) this process's most
    and last RSS sampled during the step, to see which step grows memory and keeps it.
    Returns step -> seconds summed."""
    total = defaultdict(float)
    print(f"\n{label}")
    print(f"{'run':<22} {'step':<44} {'seconds':>8} {'rss_max_mb':>10} {'rss_end_mb':>10}")
    for run_label, result, wall in runs:
        spans = step_spans(instance, result.run_id)
        for step, (start, end) in sorted(spans.items(), key=lambda kv: kv[1][0]):
            most, last = watch.rss_during(start, end) if watch else (float("nan"),) * 2
            print(f"{run_label:<22} {step:<44} {end - start:8.2f} {most:10.0f} {last:10.0f}")
            total[step] += end - start
        print(f"{run_label:<22} {'(run wall time, incl. start-up)':<44} {wall:8.2f}"
              f"{'' if result.success else '  FAILED'}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-hold", action="store_true", help="full run without "
                        "Warehouse.hold: every step opens the file (the bench before stop 43)")
    parser.add_argument("--years", type=int, default=2, help="school years generated (2: the "
                        "study's 2020-21 and 2023-24; K: K years ending in 2023-24)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (a second "
                        "run with the same folder, N and seed reuses the generated data)")
    parser.add_argument("--snapshot", type=Path, help="copy the warehouse, the cache and the "
                        "reports here after the full run, before the refresh (bench/step.py "
                        "--root DIR --snapshot SNAP --partitioned replays the refresh's year run)")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        # the name earlier runs used for the study's two years
        marker = root / (f"generated-{args.answers}-{args.seed}" if args.years == 2
                         else f"generated-{args.answers}-{args.seed}-{args.years}y")
        if marker.exists():  # --keep DIR of an earlier run: same data, a fresh warehouse
            sample, extra = root / "sample", root / "extra"
            for stale in (root / "survey.duckdb", root / "survey.duckdb.wal"):
                stale.unlink(missing_ok=True)
            shutil.rmtree(root / "reports", ignore_errors=True)
            for late in (sample / "landing").glob(f"*/session-{NEW_SESSION:02d}.csv"):
                late.unlink()
            print(f"reusing the data generated in {root}")
        else:   # the only marker, over data of these arguments only
            for stale in root.glob("generated-*"):
                stale.unlink()
            for folder in ("sample", "extra"):
                shutil.rmtree(root / folder, ignore_errors=True)
            sample, extra = generate(root, args.answers, args.seed, args.years)
            marker.touch()
            print(f"generated {args.answers:,} answers, sheets and adjudications in "
                  f"{time.perf_counter() - t0:.1f} s (child process, not counted)")
        # The embedding / fitted-model caches start empty, so the full build pays for every
        # embedding and fit; the refresh then uses what the full build stored (as a real one
        # would). Never the user's ~/.cache, nor an earlier bench run's.
        cache = root / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()
        os.environ["SURVEY_CACHE_DIR"] = str(cache)

        import dagster as dg

        from pipeline.definitions import build_defs
        from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse
        from pipeline.runner import held_warehouse, partition_waves, run_order, sync_partitions

        resources = {
            "paths": ProjectPaths(landing_dir=str(sample / "landing"),
                                  roster_path=str(sample / "roster.csv"),
                                  coder_sheets_dir=str(sample / "coding"),
                                  reports_dir=str(root / "reports"), pseudonym_salt="bench"),
            "codebooks": Codebooks(codebook_dir=str(ROOT / "codebooks")),
            "warehouse": Warehouse(path=str(root / "survey.duckdb")),
        }
        defs = build_defs(resources)
        instance = dg.DagsterInstance.ephemeral()
        landing = sample / "landing"
        years = sorted(p.name for p in landing.iterdir() if (p / "mapping.yaml").exists())
        sync_partitions(instance, years)
        before, partitioned, after = run_order(defs.get_repository_def().asset_graph)

        full = []
        rss_before = current_rss_mb()
        watch = MachinePeak() if os.path.exists("/proc/meminfo") else None
        t_full = time.perf_counter()
        # as survey-pipeline run: one open file
        with nullcontext() if args.no_hold else held_warehouse(defs, resources):
            if before:
                full.append(("shared inputs", *materialise(defs, instance, resources, before)))
            for i, wave in enumerate(partition_waves(defs.get_repository_def().asset_graph,
                                                     partitioned)):
                for year in years:
                    full.append((f"{year} wave {i + 1}",
                                 *materialise(defs, instance, resources, wave, year)))
            full.append(("all years", *materialise(defs, instance, resources, after)))
        full_s = time.perf_counter() - t_full   # the held file's closing checkpoint included

        if args.snapshot:
            save_snapshot(root, args.snapshot)
        year = latest_year(landing)
        (landing / year / f"session-{NEW_SESSION:02d}.csv").write_bytes(
            new_session_export(extra, year))
        incremental = []
        t_inc = time.perf_counter()
        incremental.append((f"{year} (sensor)",
                            *materialise(defs, instance, resources, partitioned, year)))
        incremental.append(("all years (automation)",
                            *materialise(defs, instance, resources, after)))
        inc_s = time.perf_counter() - t_inc
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # this process's memory before the runs, plus what the machine's use rose by during
        # them (this process and its forked workers)
        machine_mb = rss_before + watch.stop() if watch is not None else float("nan")

        print_steps(f"full run: {full_s:.1f} s", full, instance, watch)
        print_steps(f"incremental refresh (session {NEW_SESSION} of {year}): {inc_s:.1f} s",
                    incremental, instance, watch)
        if watch is not None:
            print(f"\nmachine peak during {watch.step_at_peak(full + incremental, instance)}")
        failed = [label for label, r, _ in full + incremental if not r.success]
        if failed:
            print(f"\nFAILED runs: {failed}")
        import duckdb

        con = duckdb.connect(str(root / "survey.duckdb"), read_only=True)
        n_staged = con.execute("select count(*) from staging.answers").fetchone()[0]
        n_new = con.execute("select count(*) from staging.answers where school_year = ? and "
                            "session_number = ?", [year, NEW_SESSION]).fetchone()[0]
        con.close()
        print(f"\nstaged answers after the refresh: {n_staged:,}")
        from pipeline import process_gc

        growth = process_gc.watch()
        if growth is not None:
            print(f"full collections on memory growth (pipeline/process_gc.py): "
                  f"{growth.collections} in {growth.seconds:.1f} s")
        print(f"years={len(years)} new_answers={n_new:,} ({n_new / n_staged:.1%} of the staged)")
        print(f"answers={args.answers} full_s={full_s:.1f} incremental_s={inc_s:.1f} "
              f"incremental_ratio={inc_s / full_s:.3f} peak_mb={peak_mb:.0f} "
              f"machine_peak_mb={machine_mb:.0f}")
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def save_snapshot(root: Path, snapshot: Path) -> None:
    """The state a refresh starts from: the warehouse (after a checkpoint, so one file), the
    result cache and the reports. The kept keys include the pipeline's code, so the snapshot
    replays the refresh only with the code that made it."""
    import duckdb

    duckdb.connect(str(root / "survey.duckdb")).execute("checkpoint").close()
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir(parents=True)
    shutil.copy2(root / "survey.duckdb", snapshot / "survey.duckdb")
    for folder in ("cache", "reports"):
        if (root / folder).exists():
            shutil.copytree(root / folder, snapshot / folder)


if __name__ == "__main__":
    raise SystemExit(main())
