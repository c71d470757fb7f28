"""core.landing: scanning the landing folder, settling, planning and the cursor, on hand-made
folders with a fixed clock (file mtimes are set explicitly, never slept on)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pipeline.core.ingest import landing

NOW = 1_750_000_000.0
OLD = NOW - 3600


def write(path: Path, text: str, mtime: float = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def year(root: Path, name: str = "2020-21", files: dict[str, str] | None = None) -> Path:
    write(root / name / "mapping.yaml", f'school_year: "{name}"\n')
    for fname, text in (files or {"session-01.csv": "a,b\n1,2\n"}).items():
        write(root / name / fname, text)
    return root / name


def look(root: Path, cursor: landing.Cursor, now: float = NOW) -> landing.Plan:
    return landing.plan(landing.scan_landing(root, now=now, settle_seconds=10), cursor)


def test_scan_hashes_every_watched_file_and_ignores_temporary_ones(tmp_path: Path):
    year(tmp_path)
    for junk in (".DS_Store", "~$session-02.xlsx", "session-02.csv.crdownload", "x.tmp"):
        write(tmp_path / "2020-21" / junk, "junk")
    (tmp_path / "2020-21" / "subdir").mkdir()
    year_dir = write(tmp_path / "no-mapping" / "session-01.csv", "a\n").parent
    scans = landing.scan_landing(tmp_path, now=NOW, settle_seconds=10)
    assert list(scans) == ["2020-21"] and year_dir.name not in scans
    files = scans["2020-21"].files
    assert sorted(files) == ["2020-21/mapping.yaml", "2020-21/session-01.csv"]
    state = files["2020-21/session-01.csv"]
    assert state.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (state.size, state.mtime) == (8, OLD)


def test_missing_landing_folder_scans_as_empty(tmp_path: Path):
    assert landing.scan_landing(tmp_path / "absent", now=NOW) == {}


def test_new_year_runs_once_then_nothing(tmp_path: Path):
    year(tmp_path)
    first = look(tmp_path, landing.Cursor())
    assert [(r.year, r.added, r.changed, r.removed) for r in first.runs] == [
        ("2020-21", ["2020-21/mapping.yaml", "2020-21/session-01.csv"], [], [])]
    assert first.runs[0].run_key.startswith("2020-21:1:")
    again = look(tmp_path, landing.decode_cursor(landing.encode_cursor(first.cursor)))
    assert again.runs == [] and again.unchanged == ["2020-21"] and again.pending == {}


def test_touched_but_identical_file_is_unchanged(tmp_path: Path):
    year(tmp_path)
    cursor = look(tmp_path, landing.Cursor()).cursor
    os.utime(tmp_path / "2020-21" / "session-01.csv", (OLD + 60, OLD + 60))
    assert look(tmp_path, cursor).runs == []


def test_changed_added_and_removed_files_each_trigger_their_year_only(tmp_path: Path):
    year(tmp_path, "2020-21")
    year(tmp_path, "2023-24")
    cursor = look(tmp_path, landing.Cursor()).cursor
    write(tmp_path / "2020-21" / "session-01.csv", "a,b\n1,3\n")
    plan = look(tmp_path, cursor)
    assert [(r.year, r.changed, r.summary()) for r in plan.runs] == [
        ("2020-21", ["2020-21/session-01.csv"], "1 changed")]
    assert plan.unchanged == ["2023-24"]
    cursor = plan.cursor
    write(tmp_path / "2023-24" / "session-02.csv", "x\n")
    (tmp_path / "2020-21" / "session-01.csv").unlink()
    plan = look(tmp_path, cursor)
    assert [(r.year, r.added, r.removed) for r in plan.runs] == [
        ("2020-21", [], ["2020-21/session-01.csv"]), ("2023-24", ["2023-24/session-02.csv"], [])]
    assert "2020-21/session-01.csv" not in plan.cursor.files


def test_mapping_change_triggers_a_run(tmp_path: Path):
    year(tmp_path)
    cursor = look(tmp_path, landing.Cursor()).cursor
    write(tmp_path / "2020-21" / "mapping.yaml", 'school_year: "2020-21"\nsource: qualtrics\n')
    assert [r.changed for r in look(tmp_path, cursor).runs] == [["2020-21/mapping.yaml"]]


def test_growing_file_holds_back_its_year_until_it_settles(tmp_path: Path):
    year(tmp_path)
    cursor = look(tmp_path, landing.Cursor()).cursor
    write(tmp_path / "2020-21" / "session-01.csv", "a,b\n1,2\n3,4\n", mtime=NOW - 2)
    write(tmp_path / "2020-21" / "session-02.csv", "half", mtime=NOW - 1)
    waiting = look(tmp_path, cursor)
    assert waiting.runs == []
    assert [p.name for p in waiting.pending["2020-21"]] == [
        "2020-21/session-01.csv", "2020-21/session-02.csv"]
    assert "waiting 10s" in waiting.pending["2020-21"][0].reason
    assert waiting.cursor.files == cursor.files  # nothing recorded while the writer works
    later = look(tmp_path, waiting.cursor, now=NOW + 30)
    assert [(r.added, r.changed) for r in later.runs] == [
        (["2020-21/session-02.csv"], ["2020-21/session-01.csv"])]


def test_unreadable_file_is_pending_not_an_error(tmp_path: Path, monkeypatch):
    year(tmp_path)
    real = landing.sha256_of

    def locked(path: Path) -> str:
        if path.name == "session-01.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(landing, "sha256_of", locked)
    plan = look(tmp_path, landing.Cursor())
    assert plan.runs == [] and plan.cursor.files == {}
    assert plan.pending["2020-21"][0].reason.startswith("unreadable: PermissionError")
    monkeypatch.setattr(landing, "sha256_of", real)
    assert [r.year for r in look(tmp_path, plan.cursor).runs] == ["2020-21"]


def test_file_changing_while_hashed_is_pending(tmp_path: Path, monkeypatch):
    year(tmp_path)
    real = landing.sha256_of

    def appending(path: Path) -> str:
        digest = real(path)
        with path.open("a") as fh:
            fh.write("5,6\n")
        return digest

    monkeypatch.setattr(landing, "sha256_of", appending)
    plan = landing.plan(landing.scan_landing(tmp_path, now=NOW, settle_seconds=0),
                        landing.Cursor())
    assert {p.reason for p in plan.pending["2020-21"]} == {
        "changed while being read (still being written)"}


def test_run_keys_stay_unique_when_a_folder_returns_to_an_earlier_state(tmp_path: Path):
    year(tmp_path)
    keys, cursor = [], landing.Cursor()
    for text in ("v1\n", "v2\n", "v1\n", "v2\n"):
        write(tmp_path / "2020-21" / "session-01.csv", text)
        plan = look(tmp_path, cursor)
        keys += [r.run_key for r in plan.runs]
        cursor = plan.cursor
    assert len(keys) == len(set(keys)) == 4
    assert keys[0].split(":")[2] == keys[2].split(":")[2]  # same content, same digest


def test_year_folder_losing_its_mapping_is_reported_once_and_forgotten(tmp_path: Path):
    year(tmp_path)
    cursor = look(tmp_path, landing.Cursor()).cursor
    (tmp_path / "2020-21" / "mapping.yaml").unlink()
    plan = look(tmp_path, cursor)
    assert plan.runs == [] and plan.years_gone == ["2020-21"] and plan.cursor.files == {}
    assert any("no longer a year folder" in line for line in landing.describe(plan))
    assert look(tmp_path, plan.cursor).years_gone == []


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '{"a.csv": 1.5}',
                                  '{"version": 99, "files": {}}'])
def test_unusable_cursor_means_seen_nothing(text):
    assert landing.decode_cursor(text) == landing.Cursor()


def test_cursor_round_trips(tmp_path: Path):
    year(tmp_path)
    cursor = look(tmp_path, landing.Cursor()).cursor
    text = landing.encode_cursor(cursor)
    assert landing.decode_cursor(text) == cursor
    assert landing.encode_cursor(landing.decode_cursor(text)) == text
    assert cursor.runs == {"2020-21": 1}


# --- retiring years whose folder is gone ------------------------------------------------------

def test_a_removed_year_is_retired_once_per_removal(tmp_path: Path):
    import shutil

    year(tmp_path, "2020-21")
    year(tmp_path, "2023-24")
    cursor = look(tmp_path, landing.Cursor()).cursor
    shutil.rmtree(tmp_path / "2023-24")
    plan = look(tmp_path, cursor)
    retire = landing.retirement(plan, {"2020-21", "2023-24"}, landing_usable=True)
    assert retire == landing.Retirement(["2023-24"], "retire:2023-24.1")
    # next look: still known to Dagster (the retirement has not run yet): the same run key,
    # which Dagster does not launch twice
    again = look(tmp_path, landing.decode_cursor(landing.encode_cursor(plan.cursor)))
    assert landing.retirement(again, {"2020-21", "2023-24"}, True).run_key == retire.run_key
    # retired (partition gone): nothing more
    assert landing.retirement(again, {"2020-21"}, True) is None
    # back, then removed again: a new key
    year(tmp_path, "2023-24")
    back = look(tmp_path, again.cursor)
    shutil.rmtree(tmp_path / "2023-24")
    gone = look(tmp_path, back.cursor)
    assert landing.retirement(gone, {"2020-21", "2023-24"}, True).run_key == "retire:2023-24.2"


def test_nothing_is_retired_while_the_landing_folder_is_unusable(tmp_path: Path):
    year(tmp_path, "2020-21")
    cursor = look(tmp_path, landing.Cursor()).cursor
    plan = landing.plan(landing.scan_landing(tmp_path / "unmounted", now=NOW), cursor)
    assert plan.years_gone == ["2020-21"]
    assert landing.retirement(plan, {"2020-21"}, landing_usable=False) is None


def test_a_symlink_leaving_the_landing_folder_is_not_opened_by_the_scan(tmp_path: Path):
    outside = write(tmp_path / "outside" / "secret.csv", "not for us\n")
    folder = year(tmp_path / "landing")
    (folder / "linked.csv").symlink_to(outside)
    scans = landing.scan_landing(tmp_path / "landing", now=NOW, settle_seconds=10)
    state = scans["2020-21"].files["2020-21/linked.csv"]
    assert state.sha256 != hashlib.sha256(b"not for us\n").hexdigest() and state.size == 0
