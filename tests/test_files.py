"""Atomic file writes: the target holds the old content or the new, never a partial file."""
import pytest

from pipeline.core.files import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "report.html"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_failed_write_keeps_old_file(tmp_path):
    target = tmp_path / "queue.xlsx"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".xlsx" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["queue.xlsx"]
