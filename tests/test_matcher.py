"""The keyword coder: pattern language, evidence spans, vetoes and the shipped codebooks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.coding.codebook import load_codebook, load_codebooks
from pipeline.core.coding.matcher import (
    KeywordCoder,
    coder_for,
    phrase_text,
    regex_triggers,
    word_forms,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coder() -> KeywordCoder:
    return KeywordCoder(load_codebooks(ROOT / "codebooks"))


def codes(coder, text):
    return {a.code_id for a in coder.code_text(text)}


def demo(tmp_path, body: str, header: str = "") -> KeywordCoder:
    path = tmp_path / "demo.yaml"
    path.write_text(
        f"framework: demo\n{header}dimensions:\n  d: A dimension.\ncodes:\n{body}", encoding="utf-8"
    )
    return KeywordCoder([load_codebook(path)])


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Our team collaborated on the plan", "collaboration"),
        ("We collaborate well", "collaboration"),
        ("a very collaborative session", "collaboration"),
        ("Collaborating with colleagues", "collaboration"),
        ("we ran out of time", "time_allocated"),
        ("Not enough time to finish", "time_allocated"),
        ("More time please", "time_allocated"),
        ("[External Coach name] was very supportive", "coaching_support"),
        ("The support from [External Coach name] was great", "coaching_support"),
        ("Following the Data Wise steps", "follow_the_process"),
        ("Using the protocol kept us on track", "follow_the_process"),
        ("She is so knowledgeable", "knowledgeable"),
        ("We accomplished a lot", "accomplishes_tasks"),
        ("It feels like a community when we meet", "sense_of_community"),
        ("Looking at the data together", "data_analysis"),
        ("I used to think that, and now I think otherwise", "i_used_to_think_and_now_i_think"),
        ("We will keep meeting next year", "next_year"),
        ("the session was warm and welcoming", "warm"),
    ],
)
def test_shipped_codebooks_accept(coder, text, code):
    assert code in codes(coder, text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Nothing, I wouldn't change anything.", "change"),
        ("Could we change the time of the meeting?", "change"),
        ("The warm-up activity was fun", "warm"),
        ("Our leadership team met", "leadership"),
        ("Student growth in reading was small", "growth"),
        ("Only 13% of students are proficient in math", "proficient"),
        ("The effect on students", "effective"),
        ("A new approach", "approachable"),
        ("support was great. [External Coach name] arrived", "coaching_support"),
        ("It was the best time of the year", "time_allocated"),
    ],
)
def test_shipped_codebooks_reject(coder, text, code):
    assert code not in codes(coder, text)


@pytest.mark.parametrize(
    "placeholder", ["[External Coach name]", "[Name]", "[Coach]", "[External Coach Name]'s"]
)
def test_placeholders_never_hit_a_code(coder, placeholder):
    assert coder.code_text(placeholder) == []
    assert coder.code_text(f"Thanks {placeholder}!") == []


def test_code_applied_once_with_every_hit_as_evidence(coder):
    text = "We collaborated, then collaborated again: true collaboration."
    apps = [a for a in coder.code_text(text) if a.code_id == "collaboration"]
    assert len(apps) == 1
    ev = apps[0].evidence
    assert [e.matched_text for e in ev] == ["collaborated", "collaborated", "collaboration"]
    assert all(text[e.start : e.end] == e.matched_text for e in ev)
    assert apps[0].codebook_version == load_codebook(ROOT / "codebooks/scale.yaml").version


def test_normalisation_keeps_offsets(coder):
    text = "Not   enough\n\ttime \u2014 we \u201cran out of time\u201d; \u0130stanbul\u2019s team\u2013work"
    apps = {a.code_id: a for a in coder.code_text(text)}
    ev = apps["time_allocated"].evidence
    assert any(e.matched_text == "Not   enough\n\ttime" for e in ev)
    assert all(text[e.start : e.end] == e.matched_text for a in apps.values() for e in a.evidence)
    assert "collaboration" in apps  # team–work (en dash) == team work


def test_phrase_text_map():
    norm, starts, shifts = phrase_text("A  b\u2014C / d")
    assert norm == "a b c d"
    assert starts is not None


def test_boundaries_and_kinds(tmp_path):
    c = demo(
        tmp_path,
        "  - id: w\n    dimension: d\n    patterns: [team]\n"
        "  - id: s\n    dimension: d\n    patterns: [{text: collab, boundary: start}]\n"
        "  - id: n\n    dimension: d\n    patterns: [{text: work, boundary: none}]\n"
        "  - id: r\n    dimension: d\n    patterns: [{regex: 'co-?plan\\w*'}]\n"
        "  - id: t\n    dimension: d\n    patterns: [{stem: set expectations}]\n",
    )
    assert codes(c, "teams teamwork") == {"n"}
    assert codes(c, "the team") == {"w"}
    assert codes(c, "Collaborative homework") == {"s", "n"}
    assert codes(c, "we co-planned it") == {"r"}
    assert codes(c, "Setting clear expectations; she sets expectations") == {"t"}
    (app,) = c.code_text("She sets expectations")
    assert app.evidence[0].matched_text == "sets expectations"


def test_exclusion_scopes(tmp_path):
    c = demo(
        tmp_path,
        "  - id: hit\n    dimension: d\n    patterns: [support]\n    exclude: [coaching support]\n"
        "  - id: ans\n    dimension: d\n    patterns: [warm]\n"
        "    exclude: [{text: warm up, scope: answer}]\n",
    )
    assert codes(c, "coaching support") == set()
    assert codes(c, "coaching support and peer support") == {"hit"}
    ev = c.code_text("coaching support and peer support")[0].evidence
    assert [e.start for e in ev] == [26]
    assert codes(c, "warm people") == {"ans"}
    assert codes(c, "warm people, fun warm up") == set()


def test_placeholder_setting(tmp_path):
    body = "  - id: coach\n    dimension: d\n    patterns: [coach]\n"
    assert codes(demo(tmp_path, body), "[Coach] helped") == set()
    assert codes(demo(tmp_path, body, "placeholders: none\n"), "[Coach] helped") == {"coach"}


def test_word_forms_and_triggers():
    assert {"collaborate", "collaborated", "collaborative", "collaborating"} <= set(
        word_forms("collaboration")
    )
    assert "planned" in word_forms("plan")
    assert regex_triggers("shar(e|ing)") == [["share", "sharing"]]
    assert regex_triggers(r"\w+") is None


def test_code_frame(coder):
    df = pd.DataFrame({"aid": ["a1", "a2", "a3"], "txt": ["We collaborated", "", None]})
    out = coder.code_frame(df, "aid", "txt")
    assert list(out.columns) == [
        "id", "framework", "dimension", "code_id", "codebook_version", "n_evidence", "evidence"
    ]  # fmt: skip
    assert out["id"].tolist() == ["a1"]
    (ev,) = json.loads(out["evidence"].iloc[0])
    assert ev == {"pattern": "collaboration", "matched_text": "collaborated", "start": 3, "end": 15}


ALPHABET = st.sampled_from(
    list("abcdeilmnoprstuw ACDTW-/.,'\"\n\t") + ["\u2019", "\u201c", "\u2014", "\u0130", "\u00a0",
    "time", "team", "support", "collaborat", "[External Coach name]", "ran out of ", "  "]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_spans_point_into_the_original_text(text):
    c = _CODER
    for app in c.code_text(text):
        for e in app.evidence:
            assert 0 <= e.start < e.end <= len(text)
            assert text[e.start : e.end] == e.matched_text


_CODER = KeywordCoder(load_codebooks(ROOT / "codebooks"))


def test_coder_for_builds_one_coder_per_codebook_version(tmp_path):
    """The run's assets share one automaton; an edited codebook (new content hash) gets its own."""
    books = load_codebooks([ROOT / "codebooks"])
    first = coder_for(books)
    assert coder_for(list(books)) is first  # same versions, same coder
    edited = tmp_path / "scale.yaml"
    source = Path(books[0].path).read_text(encoding="utf-8")
    edited.write_text(source + "\n# edited\n", encoding="utf-8")
    changed = [load_codebook(edited), *books[1:]]
    assert changed[0].version != books[0].version
    other = coder_for(changed)
    assert other is not first
    frame = pd.DataFrame({"id": ["a"], "text": ["more time to plan with my coach"]})
    assert other.code_frame(frame, "id", "text").equals(first.code_frame(frame, "id", "text"))
