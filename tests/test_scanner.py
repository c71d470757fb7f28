"""The compiled scan's guards (pipeline/core/coding/_scanner.c): what it does with tables or calls
that KeywordCoder never makes. Its results are tested against the reference path in
tests/test_matcher_batch.py."""

from __future__ import annotations

import pytest
from pipeline.core.coding._scanner import Scanner

TABLE = bytes(range(128))


def scanner(regexes=(), items=None, keys=None):
    keys = keys or []
    return Scanner(
        keys,
        items or [[] for _ in keys],
        [[0] for _ in keys],
        [[] for _ in keys],
        list(regexes),
        [('{"pattern": "p", "matched_text": ', True, False)],
        [-1],
        [],
        False,
        1,
        TABLE,
        [],
    )


def test_uninitialised_scanner_refuses_to_scan():
    with pytest.raises(RuntimeError, match="not initialised"):
        Scanner.__new__(Scanner).code_chunk(["abc"], None)


def test_tables_pointing_nowhere_are_refused():
    with pytest.raises(ValueError, match="does not exist"):
        scanner(keys=["ab"], items=[[(True, True, False, 0, 999_999)]])  # no pattern 999999


def test_initialised_once_and_no_keywords():
    s = scanner()
    with pytest.raises(RuntimeError, match="once"):
        s.__init__([], [], [], [], [], [], [], [], False, 1, TABLE, [])
    with pytest.raises(TypeError, match="keyword"):
        Scanner([], [], [], [], [], [], [], [], False, 1, TABLE, [], extra=1)


def test_not_reentrant_and_usable_after_an_error():
    class CallsBack:
        """A 'compiled regex' whose finditer scans again with the same scanner."""

        def match(self, text, pos):
            return None

        def finditer(self, text):
            return iter(s.code_chunk(["again"], None)[3])

    s = scanner(regexes=[(CallsBack(), 0, 0, False, False, [0])])  # no trigger: every answer
    with pytest.raises(RuntimeError, match="not reentrant"):
        s.code_chunk(["abc"], None)
    ks, codes, n_evidence, evidence = s.code_chunk([None, ""], None)  # no answer, no call
    assert (ks, codes, n_evidence, evidence) == (b"", b"", b"", [])
