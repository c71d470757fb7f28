"""Name checks remember the texts they found nothing in (privacy/clean_memo.py): staging with
the remembered digests gives exactly what staging without them gives, scans only what is new,
and a text with a name is never remembered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.core.ingest import raw, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy import clean_memo
from pipeline.core.privacy.clean_memo import CleanMemo, StagingCleanMemos
from pipeline.core.privacy.name_scan import FuzzyNameScan
from pipeline.core.privacy.redact import RosterEntry, load_roster, roster_fingerprint

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
YEAR = "2023-24"
STAGED_AT = datetime(2024, 7, 1, 12, 0)


def _stage(roster, clean):
    folder = SAMPLE / "landing" / YEAR
    data = raw.read_year(folder)
    fuzzy = FuzzyNameScan(roster, clean=clean.fuzzy if clean else None)
    staged = staging.stage_year(data.export_files, data.survey_rows,
                                load_mapping(folder / "mapping.yaml"), roster, salt="test",
                                staged_at=STAGED_AT, fuzzy=fuzzy, clean=clean)
    leaks = [t for t in staged.answers["answer_text"] if fuzzy.find(t)]
    return staged, leaks


def _assert_same(a, b):
    for name in ("answers", "quarantine", "redactions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.names == b.names


def test_a_memo_keeps_only_what_it_was_told_and_stores_what_was_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    memo = CleanMemo("check", "ctx")
    assert not memo.is_clean("More time to plan.")
    memo.mark_clean("More time to plan.")
    memo.save()
    again = CleanMemo("check", "ctx")
    assert again.is_clean("More time to plan.") and not again.is_clean("Thanks, Ana")
    assert not CleanMemo("check", "another roster").is_clean("More time to plan.")
    path = next((tmp_path / clean_memo.KIND).glob("*.parquet"))
    assert b"More time" not in path.read_bytes()  # digests, never the text


def _spy_redactor(monkeypatch) -> list[tuple[str, bool]]:
    """(text, whether a name was found) for every text the redactor is run on."""
    calls = []
    real = staging.Redactor.redact

    def redact(self, text):
        result = real(self, text)
        calls.append((text, bool(result[1])))
        return result

    monkeypatch.setattr(staging.Redactor, "redact", redact)
    return calls


def test_staging_with_remembered_clean_texts_is_staging_without(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    roster = load_roster(SAMPLE / "roster.csv")
    plain, plain_leaks = _stage(roster, None)
    calls = _spy_redactor(monkeypatch)
    first = StagingCleanMemos(YEAR, roster_fingerprint(roster))
    cold, cold_leaks = _stage(roster, first)
    first.save()
    assert first.redaction.used and first.identifier.used and first.fuzzy.used
    with_names = {text for text, found in calls if found}
    assert with_names and len(with_names) < len(calls)
    calls.clear()
    warm, warm_leaks = _stage(roster, StagingCleanMemos(YEAR, roster_fingerprint(roster)))
    _assert_same(plain, cold)
    _assert_same(plain, warm)
    assert plain_leaks == cold_leaks == warm_leaks
    # the second run redacted only the texts with a name in them: the rest were remembered
    assert {text for text, _found in calls} == with_names


def test_a_name_added_to_the_roster_is_found_in_a_text_remembered_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    roster = [RosterEntry("Marisol Okafor", "external coach")]
    text = "Thanks to Priya for the agenda"
    memos = StagingCleanMemos(YEAR, roster_fingerprint(roster))
    assert FuzzyNameScan(roster, clean=memos.fuzzy).find(text) == []
    memos.save()
    longer = [*roster, RosterEntry("Priya Raman", "teacher")]
    memos = StagingCleanMemos(YEAR, roster_fingerprint(longer))
    assert FuzzyNameScan(longer, clean=memos.fuzzy).find(text)
