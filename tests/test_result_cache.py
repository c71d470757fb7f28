"""The keyed file cache (pipeline/core/result_cache.py) and the DuckDB row fingerprint
(pipeline/core/warehouse/fingerprint.py) that keys the all-years steps' per-year pieces."""

import os

import duckdb
import pytest

from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import (
    Joined,
    fingerprint,
    rows_fingerprint,
    session_fingerprints,
)

KEY = "ab" * 32


def test_store_then_load_gives_the_payload(tmp_path):
    cache = ResultCache(tmp_path / "kind")
    assert cache.load(KEY) is None
    cache.store(KEY, b"\x00payload\nwith lines")
    assert cache.load(KEY) == b"\x00payload\nwith lines"
    assert not [p for p in (tmp_path / "kind").iterdir() if ".tmp" in p.name]


def test_get_or_compute_computes_once(tmp_path):
    cache = ResultCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return b"x"

    assert cache.get_or_compute(KEY, compute) == (b"x", False)
    assert cache.get_or_compute(KEY, compute) == (b"x", True)
    assert len(calls) == 1


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],                              # truncated payload
    lambda b: b[:-1] + bytes([b[-1] ^ 1]),         # a flipped bit
    lambda b: b"garbage",                          # not a cache file
    lambda b: b"",                                 # empty
])
def test_a_damaged_file_means_computing_again(tmp_path, damage):
    cache = ResultCache(tmp_path)
    cache.store(KEY, b"payload")
    path = tmp_path / f"all--{KEY}.bin"
    path.write_bytes(damage(path.read_bytes()))
    assert cache.load(KEY) is None
    assert cache.get_or_compute(KEY, lambda: b"fresh") == (b"fresh", False)
    assert cache.load(KEY) == b"fresh"


def test_a_file_renamed_to_another_key_is_not_used(tmp_path):
    cache = ResultCache(tmp_path)
    cache.store(KEY, b"payload")
    other = "cd" * 32
    os.replace(tmp_path / f"all--{KEY}.bin", tmp_path / f"all--{other}.bin")
    assert cache.load(other) is None


def test_keys_must_be_hex_digests(tmp_path):
    with pytest.raises(ValueError):
        ResultCache(tmp_path).load("../escape")
    with pytest.raises(ValueError):
        ResultCache(tmp_path).load(KEY, slot="../x")


def test_pruning_keeps_the_most_recently_used(tmp_path):
    cache = ResultCache(tmp_path, max_files=3)
    keys = [f"{i:064x}" for i in range(3)]
    for i, key in enumerate(keys):
        cache.store(key, b"p", slot=f"s{i}")
        os.utime(tmp_path / f"s{i}--{key}.bin", (1000 + i, 1000 + i))
    cache.store("f" * 64, b"p", slot="s9")   # a fourth: the oldest goes
    assert sorted(p.name for p in tmp_path.glob("*.bin")) == [
        f"s1--{keys[1]}.bin", f"s2--{keys[2]}.bin", f"s9--{'f' * 64}.bin"]


def test_a_new_entry_replaces_its_slots_older_one(tmp_path):
    cache = ResultCache(tmp_path)
    old, new = "a" * 64, "b" * 64
    cache.store(old, b"2023-24 before", slot="2023-24")
    cache.store("c" * 64, b"2020-21", slot="2020-21")
    cache.store(new, b"2023-24 after", slot="2023-24")
    assert cache.load(old, slot="2023-24") is None
    assert cache.load(new, slot="2023-24") == b"2023-24 after"
    assert cache.load("c" * 64, slot="2020-21") == b"2020-21"
    assert cache.load(new, slot="2020-21") is None    # the slot is part of the address


def test_chunks_in_and_a_stream_out(tmp_path):
    cache = ResultCache(tmp_path)
    chunks = [b"meta\n", b"x" * 3_000_000, b"tail"]
    cache.store(KEY, iter(chunks), slot="2020-21")
    with cache.open(KEY, slot="2020-21") as fh:
        assert fh.readline() == b"meta\n"
        assert fh.read() == b"".join(chunks[1:])


def test_an_unwritable_folder_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ResultCache(blocker / "kind")
    cache.store(KEY, b"p")   # logged, not raised
    assert cache.load(KEY) is None


def _table(rows):
    con = duckdb.connect()
    con.execute("create schema s; create table s.t (school_year varchar, id varchar, v integer)")
    con.executemany("insert into s.t values (?, ?, ?)", rows)
    return con


ROWS = [("2020-21", "a", 1), ("2020-21", "b", None), ("2023-24", "c", 3)]


def test_rows_fingerprint_ignores_order_and_other_years():
    con = _table(ROWS)
    year = rows_fingerprint(con, "s.t", {"school_year": "2020-21"})
    assert year[0] == 2
    assert rows_fingerprint(_table(ROWS[::-1]), "s.t", {"school_year": "2020-21"}) == year
    changed_other_year = [*ROWS[:2], ("2023-24", "c", 4)]
    assert rows_fingerprint(_table(changed_other_year), "s.t", {"school_year": "2020-21"}) == year


@pytest.mark.parametrize("rows", [
    ROWS[1:],                                                   # a row removed
    [*ROWS, ("2020-21", "d", 5)],                               # a row added
    [("2020-21", "a", 2), *ROWS[1:]],                           # a value edited
    [("2020-21", "a", 1), ("2020-21", "b", 0), ROWS[2]],        # NULL -> 0
])
def test_rows_fingerprint_changes_with_the_years_rows(rows):
    before = rows_fingerprint(_table(ROWS), "s.t", {"school_year": "2020-21"})
    assert rows_fingerprint(_table(rows), "s.t", {"school_year": "2020-21"}) != before


def test_rows_fingerprint_of_chosen_columns_and_of_no_rows():
    con = _table(ROWS)
    assert rows_fingerprint(con, "s.t", {"school_year": "1999-00"}) == (0, 0)
    edited = _table([("2020-21", "a", 9), *ROWS[1:]])
    assert (rows_fingerprint(con, "s.t", columns=["school_year", "id"])
            == rows_fingerprint(edited, "s.t", columns=["school_year", "id"]))
    with pytest.raises(ValueError):
        rows_fingerprint(con, "s.t; drop table s.t", None)


def _sessions(answers, codes):
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding; "
                "create table staging.answers (answer_id varchar, school_year varchar, "
                "session_number integer, answer_text varchar); "
                "create table coding.codes (answer_id varchar, code_id varchar, coder varchar)")
    con.executemany("insert into staging.answers values (?, ?, ?, ?)", answers)
    con.executemany("insert into coding.codes values (?, ?, ?)", codes)
    return con


ANSWERS = [("a1", "2020-21", 2, "x"), ("a2", "2020-21", 1, "y"), ("a3", "2020-21", None, "z"),
           ("a4", "2023-24", 1, "w")]
CODES = [("a1", "c1", "kw"), ("a1", "c2", "jm"), ("a4", "c1", "kw")]


def test_session_fingerprints_per_session_in_order_with_the_joined_rows():
    """Each session of the staged answers once, in year and session order (a missing
    session last); a joined table's rows counted under their answers' session, (0, 0) where
    none; each session's figures are `rows_fingerprint`s of its own rows only."""
    joined = [Joined("coding.codes"), Joined("coding.codes", "t.code_id", "t.coder = ?", ("kw",))]
    con = _sessions(ANSWERS, CODES)
    prints = session_fingerprints(con, ["answer_id", "answer_text"], joined)
    assert [(p.school_year, p.session_number) for p in prints] == [
        ("2020-21", 1), ("2020-21", 2), ("2020-21", None), ("2023-24", 1)]
    by = {(p.school_year, p.session_number): p for p in prints}
    assert by["2020-21", 2].answers == rows_fingerprint(
        con, "staging.answers", {"answer_id": "a1"}, ["answer_id", "answer_text"])
    assert [n for n, _ in by["2020-21", 2].joined] == [2, 1]
    assert by["2020-21", 1].joined == [(0, 0), (0, 0)]
    # another session's rows changed (an answer, a code): this session's figures are the same
    other = _sessions([*ANSWERS[:3], ("a4", "2023-24", 1, "edited")],
                      [*CODES[:2], ("a4", "c9", "kw")])
    again = {(p.school_year, p.session_number): p for p in session_fingerprints(
        other, ["answer_id", "answer_text"], joined)}
    assert again["2020-21", 2] == by["2020-21", 2]
    assert again["2023-24", 1].answers != by["2023-24", 1].answers
    assert again["2023-24", 1].joined[1] != by["2023-24", 1].joined[1]
    with pytest.raises(ValueError):
        session_fingerprints(con, ["answer_id); drop table x; --"])


def test_fingerprint_digest_depends_on_every_part():
    assert fingerprint(1, "a") == fingerprint(1, "a")
    assert len({fingerprint(1, "a"), fingerprint(1, "b"), fingerprint("1", "a"),
                fingerprint(1, "a", None)}) == 4


def test_frame_digest_follows_rows_order_index_and_types():
    import pandas as pd

    from pipeline.core.warehouse.fingerprint import frame_digest

    f = pd.DataFrame({"a": ["x", None, "z"], "n": [1, 2, 3]})
    assert frame_digest(f) == frame_digest(f.copy())
    assert len({frame_digest(f), frame_digest(f.iloc[::-1]), frame_digest(f.iloc[1:]),
                frame_digest(f.set_axis([5, 6, 7])), frame_digest(f.assign(n=[1.0, 2.0, 3.0])),
                frame_digest(f.assign(a=["x", None, "y"]))}) == 6


def test_code_digest_changes_with_the_source(tmp_path, monkeypatch):
    import importlib

    from pipeline.core.warehouse.fingerprint import code_digest

    (tmp_path / "some_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("some_mod")
    before = code_digest(mod)
    (tmp_path / "some_mod.py").write_text("X = 2\n")
    assert code_digest(mod) != before
