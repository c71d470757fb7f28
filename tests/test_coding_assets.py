"""The keyword-coding checks fail on bad applications (they are not decorative)."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.core.coding.keyword import span_mismatches, unknown_codes
from pipeline.defs.coding import codes_in_codebook_result, spans_result

ANSWERS = pd.DataFrame({"answer_id": ["A1", "A2"],
                        "answer_text": ["We collaborated a lot", "Ran out of time"]})
CODES = pd.DataFrame({"framework": ["scale", "scale"], "dimension": ["depth", "sustainability"],
                      "code_id": ["collaboration", "time_allocated"]})


def apps(rows):
    return pd.DataFrame(rows, columns=["answer_id", "framework", "dimension", "code_id",
                                       "n_evidence", "evidence"])


def ev(pattern, text, start, end):
    return json.dumps([{"pattern": pattern, "matched_text": text, "start": start, "end": end}])


GOOD = apps([["A1", "scale", "depth", "collaboration", 1, ev("collaborate", "collaborated", 3, 15)],
             ["A2", "scale", "sustainability", "time_allocated", 1,
              ev("ran out of time", "Ran out of time", 0, 15)]])


def test_good_applications_pass():
    assert unknown_codes(GOOD, CODES).empty
    assert span_mismatches(GOOD, ANSWERS) == []
    assert codes_in_codebook_result(unknown_codes(GOOD, CODES), len(GOOD)).passed
    assert spans_result(2, 0, []).passed


def test_unknown_code_or_wrong_dimension_fails():
    bad = GOOD.copy()
    bad.loc[0, "code_id"] = "colaboration"
    bad.loc[1, "dimension"] = "depth"
    assert len(unknown_codes(bad, CODES)) == 2
    assert not codes_in_codebook_result(unknown_codes(bad, CODES), len(bad)).passed


def test_shifted_span_fails():
    bad = GOOD.copy()
    bad.loc[0, "evidence"] = ev("collaborate", "collaborated", 4, 16)
    found = span_mismatches(bad, ANSWERS)
    assert found[0]["answer_id"] == "A1"
    assert not spans_result(2, len(found), found).passed
