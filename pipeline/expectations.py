"""Great Expectations (GX Core 1.x): the data-quality expectations a schema cannot express.

pandera (pipeline/schemas.py) holds each table's contract: types, keys, allowed values. The
expectations here judge a school year's staged answers against figures a row cannot know:

- answers per session within a band of the median of the year's previous sessions (WARN),
- the non-substantive share of the year's answers below a ceiling (WARN),
- the share of each export's rows that did not reach staging below a ceiling (WARN),
- submission dates inside the school year window (ERROR): the window staging used (the
  mapping's `submission_window`, default Jul 1 - Jun 30), else Aug 1 - Jul 31 of the label;
  staging already empties, and flags, a time outside it, so this is the second line,
- no response id (that the export itself supplied) and no export file (sha256) already loaded
  for another school year (ERROR).

The figures from history (the prior median, the window, the other years' ids and hashes) are
computed in pandas and passed to the expectations as parameters, so GX Data Docs show them.
dagster-ge only supports great_expectations < 1.0, so GX is called directly: an ephemeral
context, a pandas data source with one dataframe asset per frame, a ValidationDefinition per
frame (it stores its result, which `batch.validate` does not, so Data Docs can render it),
and a local Data Docs site per suite and year under `<reports_dir>/data_docs/` (its
index.html links them).
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from pipeline.core.files import atomic_write_text
from pipeline.core.result_cache import ResultCache

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ERROR, WARN = "error", "warn"
DOCS_SITE = "survey_data_docs"
OUTCOME_FORMAT = "gx-outcome/1"       # bump when SuiteOutcome's fields change
OUTCOME_KEY_FILE = ".outcome-key"    # in a suite's site: the key of the outcome it shows


@dataclass(frozen=True)
class Limits:
    """The judgement calls; environment variables override the defaults."""

    session_band_low: float = 0.25       # x the median of the year's previous sessions
    session_band_high: float = 4.0
    max_non_substantive_share: float = 0.5
    max_unstaged_share: float = 0.5      # per export: rows quarantined or withheld / rows

    @classmethod
    def from_env(cls) -> Limits:
        env = os.environ.get
        low, high = (float(v) for v in env("SURVEY_SESSION_BAND", "0.25,4").split(","))
        return cls(session_band_low=low, session_band_high=high,
                   max_non_substantive_share=float(env("SURVEY_MAX_NON_SUBSTANTIVE_SHARE", "0.5")),
                   max_unstaged_share=float(env("SURVEY_MAX_QUARANTINE_SHARE", "0.5")))


def school_year_window(label: str) -> tuple[datetime, datetime]:
    """'2020-21' -> (2020-08-01 00:00, 2021-07-31 23:59:59.999999)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", label)
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"school year {label!r} is not of the form 2020-21")
    start = datetime(int(m.group(1)), 8, 1)
    return start, datetime(start.year + 1, 8, 1) - timedelta(microseconds=1)


def session_volumes(answers: pd.DataFrame, limits: Limits) -> pd.DataFrame:
    """Answers per session, with the median of the year's earlier sessions and its band
    (no band for the first session: there is no history)."""
    counts = (answers.dropna(subset=["session_number"])
              .groupby("session_number").size().sort_index())
    rows = []
    for i, (session, n) in enumerate(counts.items()):
        prior = counts.iloc[:i]
        median = float(prior.median()) if len(prior) else None
        rows.append({"session_number": int(session), "n_answers": int(n),
                     "prior_sessions": len(prior), "prior_median": median,
                     "band_low": limits.session_band_low * median if median else None,
                     "band_high": limits.session_band_high * median if median else None})
    return pd.DataFrame(rows, columns=["session_number", "n_answers", "prior_sessions",
                                       "prior_median", "band_low", "band_high"])


def unstaged_shares(by_file: pd.DataFrame) -> pd.DataFrame:
    """Per loaded export: exported rows, staged respondents, and the share not staged."""
    frame = by_file[["file_name", "exported_rows", "staged_respondents"]].copy()
    exported = frame["exported_rows"].astype(float)
    frame["unstaged_share"] = ((exported - frame["staged_respondents"]) / exported.where(
        exported > 0)).fillna(0.0)
    return frame


def supplied_response_ids(answers: pd.DataFrame) -> pd.DataFrame:
    """The year's response ids that came from the export, not synthesised from file stem and
    row (those repeat across years by design; their files are compared by sha256 instead)."""
    frame = answers[["response_id", "file_name", "row_number"]].drop_duplicates("response_id")
    stems = frame["file_name"].str.rsplit(".", n=1).str[0]
    synthesised = frame["response_id"] == stems + "-r" + frame["row_number"].astype(str)
    return frame.loc[~synthesised, ["response_id", "file_name"]].reset_index(drop=True)


@dataclass
class Batch:
    """One frame validated against its expectations (`build(E)`, E = gx.expectations).
    `params`: everything `build` reads besides the frame, for the outcome cache's key
    (`run_batches`); None: this batch's outcome is never cached."""

    name: str
    frame: pd.DataFrame
    build: Callable[[object], list]
    params: tuple | None = None


@dataclass
class History:
    """What other school years already loaded."""

    response_ids: set[str] = field(default_factory=set)
    file_sha256: set[str] = field(default_factory=set)


def staging_batches(year: str, answers: pd.DataFrame, by_file: pd.DataFrame,
                    files: pd.DataFrame, history: History, limits: Limits,
                    window: tuple[datetime, datetime] | None = None) -> list[Batch]:
    """The year's batches and expectations; each expectation's meta carries its severity.
    `window`: the school year's submission window (default `school_year_window(year)`)."""
    volumes = session_volumes(answers, limits)
    with_history = volumes.dropna(subset=["prior_median"])
    start, end = window or school_year_window(year)
    shares = unstaged_shares(by_file)
    loaded = files.loc[files["status"] == "loaded", ["file_name", "file_sha256"]]

    def sessions(E) -> list:
        return [E.ExpectColumnValuesToBeBetween(
            column="n_answers", row_condition=_column("session_number") == int(s.session_number),
            min_value=float(s.band_low), max_value=float(s.band_high), meta={"severity": WARN},
            description=f"session {s.session_number}: answers within "
                        f"{limits.session_band_low:g}x-{limits.session_band_high:g}x the median "
                        f"({s.prior_median:g}) of the {s.prior_sessions} earlier session(s)")
            for s in with_history.itertuples()]

    def shares_and_dates(E) -> list:
        return [
            E.ExpectColumnMeanToBeBetween(
                column="non_substantive", min_value=0.0,
                max_value=limits.max_non_substantive_share, meta={"severity": WARN},
                description="share of non-substantive answers ('NA', 'none') below the ceiling"),
            E.ExpectColumnValuesToBeBetween(
                column="submitted_at", min_value=start, max_value=end, meta={"severity": ERROR},
                description=f"submitted inside the school year {year} "
                            f"({start:%b %d %Y} - {end:%b %d %Y})"),
            E.ExpectColumnValuesToNotBeInSet(
                column="response_id", value_set=sorted(history.response_ids),
                meta={"severity": ERROR},
                description="no response id already loaded for another school year"),
        ]

    answers_frame = pd.DataFrame({
        "non_substantive": answers["non_substantive"].astype(float),
        # nanoseconds: GX compares a datetime64[ns] column vectorised, any other unit (DuckDB
        # gives microseconds) one value at a time (ColumnValuesBetween._pandas)
        "submitted_at": pd.to_datetime(answers["submitted_at"]).astype("datetime64[ns]"),
        "response_id": answers["response_id"].where(
            answers["response_id"].isin(supplied_response_ids(answers)["response_id"])),
    })

    def files_expectations(E) -> list:
        return [
            E.ExpectColumnValuesToBeBetween(
                column="unstaged_share", min_value=0.0, max_value=limits.max_unstaged_share,
                meta={"severity": WARN},
                description="share of an export's rows quarantined or withheld below the ceiling"),
            E.ExpectColumnValuesToNotBeInSet(
                column="file_sha256", value_set=sorted(history.file_sha256),
                meta={"severity": ERROR},
                description="no export file (same sha256) already loaded for another year"),
        ]

    files_frame = shares.merge(loaded, on="file_name", how="outer")
    # each batch's params: what its build function reads besides its own frame
    batches = [Batch("answers", answers_frame, shares_and_dates,
                     (year, limits.max_non_substantive_share, start, end,
                      sorted(history.response_ids))),
               Batch("files", files_frame, files_expectations,
                     (limits.max_unstaged_share, sorted(history.file_sha256)))]
    if len(with_history):
        batches.insert(0, Batch("sessions", volumes, sessions,
                                (limits.session_band_low, limits.session_band_high)))
    return batches


def _column(name: str):
    from great_expectations.expectations.row_conditions import Column

    return Column(name)


@dataclass
class SuiteOutcome:
    success: bool
    severity: str                 # ERROR if any failed expectation is an error, else WARN
    statistics: dict
    failed: list[dict]
    docs_url: str | None = None
    reused: bool = False          # given back by the outcome cache, GX not run (run_batches)


def run_batches(suite_name: str, batches: list[Batch], docs_dir: str | Path | None = None,
                cache: ResultCache | None = None) -> SuiteOutcome:
    """Validate every batch in one ephemeral context; build Data Docs into `docs_dir`.

    With `cache`, the outcome is kept under a key of everything it depends on: each batch's
    frame and params, this module's code, the GX, pandas and numpy versions, the suite and its
    Data Docs folder.
    While the key holds and the suite's site is still the one built for that key (its
    `.outcome-key` file), the stored outcome is given back without running GX, or even
    importing it (about 3 s per process). A batch without params is never cached."""
    site_dir = None
    if docs_dir is not None:
        # one site per suite (= per school year): a site's index builder deletes the pages of
        # results its (in-memory) store does not hold, so years cannot share one site
        site_dir = Path(docs_dir).resolve() / suite_name
    key = _outcome_key(suite_name, batches, site_dir) if cache is not None else None
    # one process at a time reads or rebuilds a suite's site (two runs of the same year, say
    # the sensor's and `make run`, could otherwise leave one's key on the other's pages)
    with _site_lock(site_dir):
        if key is not None:
            outcome = _stored_outcome(cache, key, suite_name, site_dir)
            if outcome is not None:
                return outcome
        outcome = _validate(suite_name, batches, site_dir)
        if key is not None:
            if site_dir is not None:
                atomic_write_text(site_dir / OUTCOME_KEY_FILE, key)
            cache.store(key, json.dumps(asdict(outcome)).encode(), slot=_slot(suite_name))
    return outcome


@contextmanager
def _site_lock(site_dir: Path | None):
    """An exclusive lock on the suite's site folder (a `.lock` file in it), where the OS has
    fcntl; a no-op without a site."""
    if site_dir is None:
        yield
        return
    site_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:   # not POSIX: no lock
        yield
        return
    with open(site_dir / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _outcome_key(suite_name: str, batches: list[Batch], site_dir: Path | None) -> str | None:
    if any(b.params is None for b in batches):
        return None
    from pipeline.core.warehouse.fingerprint import code_digest, fingerprint, frame_digest

    # GX computes with pandas and numpy: their versions too
    versions = [version(name) for name in ("great_expectations", "pandas", "numpy")]
    return fingerprint(OUTCOME_FORMAT, versions,
                       code_digest(sys.modules[__name__]), suite_name, str(site_dir),
                       [(b.name, frame_digest(b.frame), b.params) for b in batches])


def _slot(suite_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", suite_name)[:64]


def _stored_outcome(cache: ResultCache, key: str, suite_name: str,
                    site_dir: Path | None) -> SuiteOutcome | None:
    if site_dir is not None:
        try:
            shown = (site_dir / OUTCOME_KEY_FILE).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if shown != key or not (site_dir / "index.html").is_file():
            return None
    payload = cache.load(key, slot=_slot(suite_name))
    if payload is None:
        return None
    if site_dir is not None:
        write_docs_index(site_dir.parent)
    return SuiteOutcome(**{**json.loads(payload), "reused": True})


def _validate(suite_name: str, batches: list[Batch], site_dir: Path | None) -> SuiteOutcome:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if site_dir is not None:   # made by _site_lock
        # the site is about to be rebuilt: no stored outcome may vouch for it until it is
        (site_dir / OUTCOME_KEY_FILE).unlink(missing_ok=True)
        context.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    source = context.data_sources.add_pandas(f"{suite_name}_source")
    failed, evaluated, passed = [], 0, 0
    for batch in batches:
        name = f"{suite_name}.{batch.name}"
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for exp in batch.build(gx.expectations):
            suite.add_expectation(exp)
        asset = source.add_dataframe_asset(name=batch.name)
        definition = context.validation_definitions.add(gx.ValidationDefinition(
            name=name, data=asset.add_batch_definition_whole_dataframe(batch.name),
            suite=suite))
        result = definition.run(batch_parameters={"dataframe": batch.frame})
        for r in result.results:
            evaluated += 1
            if r.success:
                passed += 1
                continue
            cfg, detail = r.expectation_config, r.result or {}
            failed.append({
                "batch": batch.name,
                "expectation": cfg.type,
                "description": cfg.description,
                "severity": (cfg.meta or {}).get("severity", ERROR),
                "column": cfg.kwargs.get("column"),
                "observed_value": _plain(detail.get("observed_value")),
                "unexpected_count": detail.get("unexpected_count"),
                "partial_unexpected_list": [str(v) for v in
                                            (detail.get("partial_unexpected_list") or [])[:10]],
            })
    docs_url = None
    if site_dir is not None:
        docs_url = context.build_data_docs(site_names=[DOCS_SITE]).get(DOCS_SITE)
        write_docs_index(site_dir.parent)
    # WARN only when every failure is a judgement call; a pass reports the check's top severity
    severity = WARN if failed and all(f["severity"] == WARN for f in failed) else ERROR
    stats = {"evaluated_expectations": float(evaluated),
             "successful_expectations": float(passed),
             "unsuccessful_expectations": float(evaluated - passed),
             "success_percent": 100.0 * passed / evaluated if evaluated else 100.0}
    return SuiteOutcome(success=not failed, severity=severity, statistics=stats,
                        failed=failed, docs_url=docs_url)


def write_docs_index(docs_dir: Path) -> Path:
    """`docs_dir/index.html`: a link to each suite's Data Docs site under it."""
    sites = sorted(p.parent.name for p in docs_dir.glob("*/index.html"))
    items = "\n".join(f'<li><a href="{html.escape(name)}/index.html">{html.escape(name)}</a></li>'
                      for name in sites)
    index = docs_dir / "index.html"
    atomic_write_text(index, "<!doctype html><meta charset=utf-8><title>Data Docs</title>\n"
                     "<h1>Great Expectations Data Docs</h1>\n"
                      f"<p>One site per suite and school year (latest run).</p>\n<ul>\n{items}\n</ul>\n")
    return index


def _plain(value):
    return value if value is None or isinstance(value, (int, float, str, bool)) else str(value)
