"""The batch path (code_frame) against the answer-by-answer path (code_text, KeywordCoder._hits).

The coder's speed work must not change what it codes: for every answer the batch path has to
give exactly the codes, evidence patterns, spans and evidence order of the answer-by-answer
path (the coder as it worked before the batch path), and code_frame's JSON has to be what
json.dumps gives for the Evidence dicts, as before. Checked on synthetic answers, on answers mangled with the
characters normalisation cares about, and on hypothesis-generated text.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.coding.codebook import load_codebook, load_codebooks
from pipeline.core.coding.matcher import (
    KeywordCoder,
    _anchor_prefixes,
)
from tools.sample.synth import synthetic_answer_texts

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = ROOT / "examples" / "jupyter-2015-ux" / "codebook.yaml"

CODER = KeywordCoder(load_codebooks(ROOT / "codebooks"))


def reference_rows(coder: KeywordCoder, ids, texts) -> list[tuple]:
    """code_frame's rows as the reference path gives them (json.dumps of Evidence dicts)."""
    rows = []
    for answer_id, text in zip(ids, texts, strict=True):
        if not isinstance(text, str) or not text:
            continue
        found = coder._hits(text)
        for code_idx in sorted(found):
            book, code = coder.codes[code_idx]
            hits = sorted(found[code_idx], key=lambda h: (h[1], h[2]))
            evidence = [
                {"pattern": p.text, "matched_text": text[s:e], "start": s, "end": e}
                for p, s, e in hits
            ]
            rows.append(
                (answer_id, code.framework, code.dimension, code.code_id, book.version,
                 len(hits), json.dumps(evidence, ensure_ascii=False))
            )  # fmt: skip
    return rows


def assert_same(coder: KeywordCoder, texts: list) -> None:
    ids = list(range(len(texts)))
    out = coder.code_frame(pd.DataFrame({"id": ids, "t": texts}), "id", "t")
    assert list(out.itertuples(index=False, name=None)) == reference_rows(coder, ids, texts)
    for text in texts[:300]:
        got = [(a.code_id, [tuple(e) for e in a.evidence]) for a in coder.code_text(text)]
        want = [
            (coder.codes[c][1].code_id, [(p.text, text[s:e], s, e) for p, s, e in
             sorted(h, key=lambda h: (h[1], h[2]))])
            for c, h in sorted(coder._hits(text).items())
        ] if isinstance(text, str) and text else []  # fmt: skip
        assert got == want, text


def mangle(texts: list[str], seed: int) -> list[str]:
    """Answers with the characters normalisation and boundaries care about mixed in."""
    rnd = random.Random(seed)
    extras = [
        "\u2019", "\u201c", "\u2014", "\u2013", "-", "/", "  ", "\n", "\t", "\u00a0", "\u0130",
        "`", "[External Coach name]", "[Name]", "[", "]", "\U0001f60a", "_", "'s", "\u03a3",
        "\x00", "K", "\u212a", "coach", "support", "time", "...", "\r\n", "CAPS",
    ]  # fmt: skip
    out = []
    for t in texts:
        chars = list(t)
        for _ in range(rnd.randint(0, 4)):
            i = rnd.randrange(len(chars) + 1)
            if rnd.random() < 0.7:
                chars[i:i] = list(rnd.choice(extras))
            elif chars:
                chars = list("".join(chars).upper())
        out.append("".join(chars))
    return out


def test_synthetic_answers_same_as_reference():
    assert_same(CODER, synthetic_answer_texts(6000, seed=11))


def test_mangled_answers_same_as_reference():
    assert_same(CODER, mangle(synthetic_answer_texts(6000, seed=12), seed=3))


def test_every_pattern_in_context_same_as_reference():
    texts = []
    for _book, code in CODER.codes:
        for p in (*code.patterns, *code.exclusions):
            t = p.text
            texts += [t, t.upper(), f"x{t}", f"{t}s.", f"The coach's {t} - [External Coach name]"]
    assert_same(CODER, texts)


def test_odd_cells_and_chunks(monkeypatch):
    import pipeline.core.coding.matcher as matcher

    monkeypatch.setattr(matcher, "_CHUNK", 7)  # answers spread over many chunks
    texts = ["", None, float("nan"), "We collaborated", "   ", "time  to   plan", 3] * 5
    assert_same(CODER, texts)


@pytest.mark.skipif(not JUPYTER.is_file(), reason="example codebook missing")
def test_jupyter_codebook_same_as_reference():
    coder = KeywordCoder([load_codebook(JUPYTER)])
    assert_same(coder, mangle(synthetic_answer_texts(2000, seed=13), seed=4) + [
        "Installation was hard", "no time", "the documentation!", "IPython kernels"
    ])  # fmt: skip


def test_regex_ties_follow_the_reference(tmp_path):
    # two regexes of one code matching the same span: the evidence order is the reference's
    path = tmp_path / "tie.yaml"
    path.write_text(
        "framework: tie\ndimensions:\n  d: A dimension.\ncodes:\n"
        "  - id: t\n    dimension: d\n    patterns:\n"
        "      - {regex: 'zeta\\W+beta'}\n      - {regex: 'alpha\\W+beta'}\n"
        "      - {regex: 'beta'}\n      - {regex: '(?:alpha|zeta)\\W+beta'}\n",
        encoding="utf-8",
    )
    coder = KeywordCoder([load_codebook(path)])
    assert_same(coder, ["alpha beta", "zeta beta and alpha beta", "beta alpha beta"])


FEATURES = """\
framework: features
dimensions:
  d: A dimension.
placeholders: '<[^<>]{1,20}>'
codes:
  - id: plain
    dimension: d
    patterns:
      - café
      - {stem: collaboration}
      - {text: co, boundary: start}
      - {text: "x", boundary: none}
      - {regex: '\\d+'}
      - {regex: 'ab\\w*\\W+"?cd'}
      - {regex: '(?:it has|we|i)\\W+(?:changed|led)'}
      - {regex: '(?: |_)+x{2}'}
    exclude:
      - {text: co op}
      - {regex: 'x\\d'}
  - id: vetoed
    dimension: d
    patterns:
      - team
      - {regex: 'team\\w*'}
      - {regex: '(?:team|group)\\w*'}
    exclude:
      - {text: warm up, scope: answer}
"""
FEATURE_WORDS = st.sampled_from(
    ["café", "CAFÉ", "cafe", "collaborated", "co", "cop", "co op", "x", "x1", "42", "ab", "abc",
     "cd", '"', "\\", "\x01", "\n", "team", "teams", "group", "warm up", "warm", "<Name>", "<",
     ">", "[Name]", " ", "  ", "-", "\u2014", "\U0001f60a", "\u03a3", "\u0130", "é", "it has",
     "it  has", "we", "i", "I", "changed", "led", "xx", "_"]
)  # fmt: skip


@functools.cache
def feature_coder() -> KeywordCoder:
    path = Path(tempfile.mkdtemp()) / "features.yaml"
    path.write_text(FEATURES, encoding="utf-8")
    return KeywordCoder([load_codebook(path), load_codebooks(ROOT / "codebooks")[0]])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(FEATURE_WORDS, max_size=12).map("".join), min_size=1, max_size=6))
def test_every_feature_same_as_reference(texts):
    """Custom placeholders beside the default ones, regexes without triggers (run on every
    answer), answer-scope and regex exclusions, start/none boundaries, a non-ASCII pattern,
    JSON escapes."""
    assert_same(feature_coder(), texts)


def test_feature_examples():
    coder = feature_coder()
    assert coder._always and coder._custom_placeholders  # \d+ has no trigger
    prefixes = {rx.pattern.text: rx.prefixes for rx in coder._regexes}
    assert prefixes["(?:it has|we|i)\\W+(?:changed|led)"] == ("i", "it has", "we")
    assert prefixes["(?: |_)+x{2}"] is None
    texts = ["team work", "team warm up", "Café 42", 'ab "cd', "co op x1", "<team> teams",
             "[Name] team", "x\x01\"\\ 7", "teams\u2014group", "\U0001f60a café"]  # fmt: skip
    assert_same(coder, texts)
    out = coder.code_frame(pd.DataFrame({"id": range(len(texts)), "t": texts}), "id", "t")
    codes = out.groupby("id")["code_id"].apply(list).to_dict()
    assert codes[0] == ["vetoed"] and 1 not in codes  # warm up vetoes the whole answer
    assert codes[2] == ["plain"]  # café and 42 (no trigger: runs on every answer)
    assert codes[5] == ["vetoed"]  # "<team>" is a placeholder; "teams" is not
    assert json.loads(out[out["id"] == 7]["evidence"].iloc[0])[0]["matched_text"] == "x"


def test_anchor_prefixes():
    import re

    assert _anchor_prefixes(re.compile(r"(?<!\w)(?:coach\w*\W+support)")) == ("coach",)
    assert _anchor_prefixes(re.compile(r"r[au]n\w*")) == ("ran", "run")
    assert _anchor_prefixes(re.compile(r"\[[^\]]*\]")) == ("[",)
    assert _anchor_prefixes(re.compile(r"(?:we|i)\W+led")) == ("i", "we")  # short is fine
    assert _anchor_prefixes(re.compile(r"(?:it has|the)\W+x")) == ("it has", "the")
    assert _anchor_prefixes(re.compile(r"(?: x|y)z")) is None  # a leading space can move
    assert _anchor_prefixes(re.compile(r"a  b")) is None  # a run of spaces: not a phrase key
    assert _anchor_prefixes(re.compile(r"\w+ing")) is None
    assert _anchor_prefixes(re.compile(r"Coach", re.IGNORECASE)) is None
    assert _anchor_prefixes(re.compile(r"(?i:coach)")) is None
    assert _anchor_prefixes(re.compile(r"time\W+to")) == ("time",)
    assert _anchor_prefixes(re.compile(r"co-plan")) is None  # hyphen: not a phrase key


NORMALISE = st.text(
    alphabet=st.sampled_from(
        list("aZ \t\n\r\x0b\x1c-/_'`\"") + ["\u2019", "\u2032", "\u2014", "\u0130", "\u00a0",
        "\u03a3", "\u03b1", "\u212a", "\u017f", "\U0001f60a", "\ud800", "\x85", "\u3000"]
    ),
    max_size=20,
)  # fmt: skip


WORDS = st.sampled_from(
    ["coach", "support", "[External Coach name]", "time", "to", "plan", "ran out of", "the",
     "steps", "3", "collaborat", "ed", " ", "  ", "-", "/", ".", "'s", "\u2019", "\u2014",
     "every", "one", "data", "look", "at", "helped", "us", "grade level", "change", "not"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(WORDS, max_size=14).map("".join), min_size=1, max_size=8))
def test_generated_answers_same_as_reference(texts):
    assert_same(CODER, texts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(WORDS, NORMALISE), max_size=14).map("".join), min_size=1,
                max_size=8))  # fmt: skip
def test_odd_characters_same_as_reference(texts):
    """The compiled scan reads the regex and phrase texts on the fly; quotes, dashes, spaces,
    case folding (İ, Σ, K), surrogates and emoji next to keywords give the reference's rows."""
    assert_same(CODER, texts)


@pytest.mark.parametrize(
    "ids",
    [
        ["a", "b", "c"],
        [1, 2, 3],
        [1.5, 2.5, float("nan")],
        [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")],
        ["a", 1, None],
        [True, False, True],
    ],
)
def test_id_column_dtype_as_before(ids):
    texts = ["We collaborated", "more time", "ran out of time and collaborated"]
    df = pd.DataFrame({"id": ids, "t": texts})
    out = CODER.code_frame(df, "id", "t")
    before = pd.DataFrame(reference_rows(CODER, list(df["id"]), texts), columns=out.columns)
    pd.testing.assert_frame_equal(out, before)


def test_no_rows_frame_as_before():
    out = CODER.code_frame(pd.DataFrame({"id": [1], "t": ["nothing here"]}), "id", "t")
    pd.testing.assert_frame_equal(out, pd.DataFrame([], columns=out.columns))
