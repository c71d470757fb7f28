"""The name checks run side by side in forked workers (parallel.map_forked, above
PARALLEL_MIN_TEXTS texts) give what they give one text at a time: staging's rows, quarantine
and redactions, the guard's ids, the independent scan's findings and the texts it marks clean."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.core import parallel
from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy import name_scan
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import load_roster
from pipeline.defs import ingestion
from tests.helpers import SAMPLE

YEAR = SAMPLE / "landing" / "2020-21"


@pytest.fixture
def forked(monkeypatch):
    """Every map of more than one text in two forked workers; returns the items mapped."""
    mapped = []

    def recorded(func, items, **kw):
        items = list(items)
        mapped.append(len(items))
        return parallel.map_forked(func, items, workers=2, **kw)

    for module in (staging, name_scan):
        monkeypatch.setattr(module, "PARALLEL_MIN_TEXTS", 1)
        monkeypatch.setattr(module, "map_forked", recorded)
    return mapped


class Memo:
    """A clean memo that records what is marked."""

    def __init__(self):
        self.marked = set()

    def is_clean(self, text):
        return False

    def mark_clean(self, text):
        self.marked.add(text)


def _staged():
    roster = load_roster(SAMPLE / "roster.csv")
    data = raw.read_year(YEAR)
    mapping = load_mapping(YEAR / "mapping.yaml")
    fuzzy = FuzzyNameScan(roster, clean=Memo())
    staged = staging.stage_year(data.export_files, data.survey_rows, mapping, roster,
                                salt="test", fuzzy=fuzzy,
                                staged_at=pd.Timestamp("2024-01-01").to_pydatetime())
    return staged, ingestion.name_leaks(staged.answers, fuzzy), fuzzy.clean.marked


def test_staging_forked_is_staging_one_text_at_a_time(forked, monkeypatch):
    forked_run = _staged()
    assert forked, "nothing ran in the workers"
    forked.clear()
    for module in (staging, name_scan):   # the same again, one text at a time
        monkeypatch.setattr(module, "PARALLEL_MIN_TEXTS", 10**9)
    one_at_a_time = _staged()
    assert not forked
    (a, leaks_a, clean_a), (b, leaks_b, clean_b) = forked_run, one_at_a_time
    for name in ("answers", "quarantine", "redactions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert leaks_a == leaks_b
    assert clean_b <= clean_a   # the workers scan every id's two forms: more found clean
    assert len(a.redactions) > 0   # the sample names people: something was redacted


def test_find_many_remembers_what_find_would_find(forked):
    roster = load_roster(SAMPLE / "roster.csv")
    texts = ["Ms Quintero helped", "nothing here", "R_z1giaY5i0shD3Y6", "the Halvorsens' plan",
             "Mari sol came", "nothing here", 7, None, ""]
    many = FuzzyNameScan(roster, clean=Memo())
    many.find_many(texts)
    assert forked == [5]   # distinct non-empty texts
    one = FuzzyNameScan(roster, clean=Memo())
    found = [many.find(t) for t in texts]
    assert found == [one.find(t) for t in texts]
    assert found[0] and found[3] and not found[1]
    assert many.clean.marked == one.clean.marked
