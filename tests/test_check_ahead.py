"""Name checks done ahead on every core (staging's `_check_ahead`, FuzzyNameScan.scan_ahead,
core.parallel.map_forked) give what the checks row by row give: the same staged rows, the same
names found, the same texts remembered clean."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.core import parallel
from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy import name_scan
from pipeline.core.privacy.clean_memo import CleanMemo, StagingCleanMemos
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import load_roster, roster_fingerprint

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
YEAR = "2023-24"
NEVER = 10**12   # no file has this many texts: every check row by row


def _count_maps(monkeypatch) -> list[int]:
    """The number of items of every map_forked staging and the fuzzy scan run."""
    sizes = []

    def counted(func, items, *args, **kwargs):
        items = list(items)
        sizes.append(len(items))
        return parallel.map_forked(func, items, *args, **kwargs)

    monkeypatch.setattr(staging, "map_forked", counted)
    monkeypatch.setattr(name_scan, "map_forked", counted)
    return sizes


def _stage(roster, monkeypatch, tmp_path: Path, ahead_min: int):
    """The sample's latest year staged with fresh clean memos (stored under tmp_path), then
    the staged answers scanned as the staging step does (`name_leaks`)."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(staging, "AHEAD_MIN_TEXTS", ahead_min)
    monkeypatch.setattr(name_scan, "AHEAD_MIN_TEXTS", ahead_min)
    folder = SAMPLE / "landing" / YEAR
    data = raw.read_year(folder)
    clean = StagingCleanMemos(YEAR, roster_fingerprint(roster))
    fuzzy = FuzzyNameScan(roster, clean=clean.fuzzy)
    staged = staging.stage_year(data.export_files, data.survey_rows,
                                load_mapping(folder / "mapping.yaml"), roster, salt="test",
                                staged_at=datetime(2024, 7, 1, 12), fuzzy=fuzzy, clean=clean)
    texts = [*staged.answers["answer_text"], *staged.answers["response_id"]]
    fuzzy.scan_ahead(texts)
    found = [fuzzy.find(t) for t in texts]
    used = {name: set(getattr(clean, name).used)
            for name in ("redaction", "identifier", "fuzzy")}
    return staged, found, used


def test_staging_with_checks_ahead_is_staging_row_by_row(tmp_path, monkeypatch):
    roster = load_roster(SAMPLE / "roster.csv")
    maps = _count_maps(monkeypatch)
    row_by_row = _stage(roster, monkeypatch, tmp_path / "rows", NEVER)
    assert maps == []
    ahead = _stage(roster, monkeypatch, tmp_path / "ahead", 0)
    # one map per export file (answers and ids together), then the answers' fuzzy scan
    assert len(maps) == 9 + 1 and all(n > 0 for n in maps)
    for name in ("answers", "quarantine", "redactions"):
        pd.testing.assert_frame_equal(getattr(ahead[0], name), getattr(row_by_row[0], name))
    assert ahead[0].names == row_by_row[0].names
    assert len(ahead[0].redactions) > 0   # names were found, in the workers
    assert ahead[1] == row_by_row[1]
    assert ahead[2] == row_by_row[2] and all(ahead[2].values())


def test_a_scan_ahead_is_the_scan_find_would_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    roster = load_roster(SAMPLE / "roster.csv")
    name = roster[0].full_name
    texts = [f"Thanks to {name} for the modelling", "More time to plan.",
             f"{name.split()[-1]}'s feedback", "R_3kT9xQ", "More time to plan.", "",
             "Known clean already"]
    remembered = CleanMemo("fuzzy scan", "ctx")
    remembered.mark_clean("Known clean already")
    remembered.save()

    plain_memo, ahead_memo = CleanMemo("fuzzy scan", "ctx"), CleanMemo("fuzzy scan", "ctx")
    plain = FuzzyNameScan(roster, clean=plain_memo)
    ahead = FuzzyNameScan(roster, clean=ahead_memo)
    # the distinct non-empty texts neither seen nor known clean; too few: nothing scanned
    assert ahead.scan_ahead(texts, min_texts=5) == 0
    assert ahead.scan_ahead(texts, min_texts=0) == 4
    assert ahead.scan_ahead(texts, min_texts=0) == 0   # scanned already
    assert ahead_memo.used == set()   # marked only when find asks
    assert [ahead.find(t) for t in texts] == [plain.find(t) for t in texts]
    assert ahead.find(texts[0]) and not ahead.find(texts[1])
    assert ahead_memo.used == plain_memo.used and len(plain_memo.used) == 3
