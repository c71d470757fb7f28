"""file_sha256: remembered per file while its stat signature holds, read again on any write."""

import hashlib
import os
import time

from pipeline.core.ingest import hashing


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_remembered_hash_is_not_read_again_and_a_write_is_seen(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "FRESH_SECONDS", -60.0)   # remember even a new file
    reads = []
    real = hashing._hash
    monkeypatch.setattr(hashing, "_hash", lambda p: reads.append(p) or real(p))
    f = tmp_path / "sheet.csv"
    f.write_bytes(b"a,b\n1,2\n")
    assert hashing.file_sha256(f) == _sha(b"a,b\n1,2\n")
    assert hashing.file_sha256(str(f)) == _sha(b"a,b\n1,2\n")
    assert len(reads) == 1
    # same size, mtime set back: the write moved the ctime, so the file is read again
    st = os.stat(f)
    time.sleep(0.05)   # past the file system's clock tick (FRESH_SECONDS, switched off here)
    f.write_bytes(b"a,b\n3,4\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hashing.file_sha256(f) == _sha(b"a,b\n3,4\n")
    assert len(reads) == 2
    # replaced by another file (a new inode): read
    g = tmp_path / "other.csv"
    g.write_bytes(b"x")
    os.replace(g, f)
    assert hashing.file_sha256(f) == _sha(b"x")
    assert len(reads) == 3


def test_a_file_changed_just_now_is_not_remembered(tmp_path, monkeypatch):
    reads = []
    real = hashing._hash
    monkeypatch.setattr(hashing, "_hash", lambda p: reads.append(p) or real(p))
    f = tmp_path / "export.csv"
    f.write_bytes(b"fresh")
    assert hashing.file_sha256(f) == hashing.file_sha256(f) == _sha(b"fresh")
    assert len(reads) == 2   # within FRESH_SECONDS of its write: hashed each time


def test_the_memo_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "FRESH_SECONDS", -60.0)
    monkeypatch.setattr(hashing, "MEMO_FILES", 3)
    monkeypatch.setattr(hashing, "_MEMO", {})
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(str(i))
        assert hashing.file_sha256(tmp_path / f"{i}.txt") == _sha(str(i).encode())
    assert len(hashing._MEMO) == 3
