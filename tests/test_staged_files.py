"""Each export file's staging kept and replayed (core/ingest/staged_files.py): a year staged
with the kept parts equals the year staged from scratch, file by file only what changed is
staged again, and a new export's repeats of earlier files' responses are still caught."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.ingest import raw, staged_files, staging
from pipeline.core.ingest.mapping import load_mapping
from pipeline.core.privacy.redact import load_roster
from pipeline.core.result_cache import ResultCache

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
YEAR = "2023-24"


def _stage(folder: Path, kept: ResultCache | None, staged_at: datetime):
    data = raw.read_year(folder)
    return staging.stage_year(data.export_files, data.survey_rows,
                              load_mapping(folder / "mapping.yaml"),
                              load_roster(SAMPLE / "roster.csv"), salt="test",
                              staged_at=staged_at, kept=kept)


def _assert_same(a, b, ignore_times: bool = False):
    for name in ("answers", "redactions", "quarantine"):
        x, y = getattr(a, name), getattr(b, name)
        if ignore_times and name == "quarantine":
            x, y = x.drop(columns="quarantined_at"), y.drop(columns="quarantined_at")
        pd.testing.assert_frame_equal(x, y)
    assert a.names == b.names


def _new_session(folder: Path) -> None:
    """session-10: five rows repeating session 9's responses, five new responses, and one
    of session 9's submissions again under a new response id."""
    with (folder / "session-09.csv").open(encoding="utf-8", newline="") as fh:
        head, rows = (lambda r: (r[:3], r[3:]))(list(csv.reader(fh)))
    rid, session = head[0].index("ResponseId"), head[0].index("SessionNumber")

    def changed(row, new_id, new_session=None):
        row = list(row)
        row[rid] = new_id
        if new_session is not None:
            row[session] = new_session
        return row

    fresh = [changed(r, f"R_new{k}", "10") for k, r in enumerate(rows[5:10])]
    resent = [changed(rows[10], "R_again")]
    with (folder / "session-10.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(head + rows[:5] + fresh + resent)


def test_kept_files_replay_to_the_same_year_and_a_new_export_is_staged_alone(tmp_path):
    folder = tmp_path / YEAR
    shutil.copytree(SAMPLE / "landing" / YEAR, folder)
    cache = ResultCache(tmp_path / "kept", max_files=100)
    first, later = datetime(2024, 7, 1, 12, 0), datetime(2024, 7, 2, 9, 30)
    files = sorted(p.name for p in folder.glob("session-*.csv"))

    reference = _stage(folder, None, first)
    kept = _stage(folder, cache, first)
    assert kept.files_replayed == []
    _assert_same(kept, reference)
    replayed = _stage(folder, cache, first)
    assert replayed.files_replayed == files
    _assert_same(replayed, reference)

    _new_session(folder)
    reference = _stage(folder, None, later)
    refreshed = _stage(folder, cache, later)
    assert refreshed.files_replayed == files              # only session-10 staged
    _assert_same(refreshed, reference, ignore_times=True)
    # the replayed files' quarantine entries keep the time they were first made
    q = refreshed.quarantine
    assert set(q.loc[q["file_name"] != "session-10.csv", "quarantined_at"]) <= {first}
    new_rows = q[(q["file_name"] == "session-10.csv") & (q["level"] == "row")]
    repeats = new_rows[new_rows["reason"].str.contains("session-09.csv row")]
    assert sorted(r.split()[0] for r in repeats["reason"]) == ["duplicate"] * 5 + ["repeated"]
    assert (refreshed.answers["file_name"] == "session-10.csv").sum() > 0

    # an earlier file changed: it and every file after it are staged again
    path = folder / "session-05.csv"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]),
                    encoding="utf-8")
    again = _stage(folder, cache, later)
    assert again.files_replayed == files[:4]
    _assert_same(again, _stage(folder, None, later), ignore_times=True)


def test_a_part_is_kept_only_when_json_holds_every_value_exactly():
    stamp = datetime(2024, 3, 1, 8, 15, 30, 250)

    def part(**changes):
        answer = {"submitted_at": stamp, "session_number": None, "n": 3, "ok": True,
                  "text": "déjà vu \u2028", **changes}
        return {"answers": [answer], "quarantine": [{"quarantined_at": stamp}],
                "redactions": [{"start": 1, "end": 4, "original": "Ana"}],
                "seen_content": {"0f": "a.csv row 2"}, "seen_response": {"R_1": "a.csv row 2"},
                "names_seen": {"school": {"Alder": 2}}}

    assert staged_files.decode(staged_files.encode(part())) == part()
    assert staged_files.decode(staged_files.encode(part(x=1.5))) == part(x=1.5)
    assert staged_files.encode(part(submitted_at=pd.Timestamp(stamp))) is None
    assert staged_files.encode(part(x=float("nan"))) is None
    # a datetime where text is kept would come back as text; a whole number past 64 bits
    # (orjson's limit) goes through json and comes back whole
    assert staged_files.encode(part(text=stamp)) is None
    assert staged_files.decode(staged_files.encode(part(n=2**70))) == part(n=2**70)
    assert staged_files.encode(part()).startswith(b'{"answers":[{"submitted_at":"2024-03-01T')


def test_values_that_look_like_tags_round_trip_and_a_bad_part_is_staged_again(tmp_path):
    """A response id or spelling may be any text ('$datetime' included): it comes back as
    it went in. A kept part that cannot be read back is not replayed: the file is staged."""
    part = {"answers": [{"submitted_at": None, "x": {"$datetime": "no"}}],
            "quarantine": [{"quarantined_at": datetime(2024, 7, 1, 12, 0)}], "redactions": [],
            "seen_content": {}, "seen_response": {"$datetime": "x.csv row 2"},
            "names_seen": {"school": {"$datetime": 1}}}
    assert staged_files.decode(staged_files.encode(part)) == part
    for bad in (b"not json", b'{"answers": []}', b'{"answers": 1}'):
        with pytest.raises(ValueError):
            staged_files.decode(bad)

    folder = tmp_path / YEAR
    shutil.copytree(SAMPLE / "landing" / YEAR, folder)
    cache = ResultCache(tmp_path / "kept", max_files=100)
    when = datetime(2024, 7, 1, 12, 0)
    reference = _stage(folder, cache, when)
    for entry in (tmp_path / "kept").glob("*.bin"):
        key = entry.name.split("--")[1].removesuffix(".bin")
        cache.store(key, b'{"answers": "damaged"}', slot=entry.name.split("--")[0])
    again = _stage(folder, cache, when)
    assert again.files_replayed == []
    _assert_same(again, reference)
    assert _stage(folder, cache, when).files_replayed   # stored again, replayed next time


def test_the_base_key_follows_the_other_years_ids_or_the_callers_digest_of_them():
    """What staging reads of other years (their response ids) is in every file's key: the
    ids themselves, or the digest the caller made of the rows they came from
    (defs/ingestion.loaded_elsewhere: DuckDB's fingerprint), when it made one."""
    mapping = load_mapping(SAMPLE / "landing" / YEAR / "mapping.yaml")

    def key(others):
        return staged_files.base_key(mapping, "roster", "salt", None, others)

    one = raw.OtherYears(response_ids={"R_1": ("2022-23", "session-01.csv", 2)})
    assert key(one) == key(raw.OtherYears(response_ids=dict(one.response_ids)))
    assert key(one) != key(raw.OtherYears(response_ids={"R_1": ("2022-23", "s.csv", 2)}))
    assert key(one) != key(raw.OtherYears())
    with_digest = raw.OtherYears(response_ids=dict(one.response_ids), ids_digest="rows a")
    assert key(with_digest) != key(one)   # the digest stands for the ids
    assert key(with_digest) == key(raw.OtherYears(ids_digest="rows a"))
    assert key(with_digest) != key(raw.OtherYears(ids_digest="rows b"))
