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


def test_a_cache_file_that_cannot_be_written_is_skipped_and_leaves_nothing(tmp_path, caplog):
    from pipeline.core.files import store_cache_file

    path, tmp = tmp_path / "c" / "k.bin", tmp_path / "c" / "k.123.tmp.bin"
    assert store_cache_file(path, tmp, lambda t: t.write_bytes(b"one"), "test cache")
    assert path.read_bytes() == b"one" and not tmp.exists()

    def broken(t):
        t.write_bytes(b"half")
        raise OSError("disk full")

    assert not store_cache_file(path, tmp, broken, "test cache")
    assert path.read_bytes() == b"one" and not tmp.exists()   # the old entry, no leftover
    assert "test cache" in caplog.text and "disk full" in caplog.text

    def wrong(t):
        raise ValueError("a bug, not a full disk")

    with pytest.raises(ValueError):   # only the errors named are a skipped entry
        store_cache_file(path, tmp, wrong, "test cache")
