"""Redaction: every roster name goes, in any case, possessive or not; nothing else changes."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.privacy.name_scan import NameScanner, letter_tokens, normalise_for_check
from pipeline.core.privacy.redact import (
    COACH_PLACEHOLDER,
    STAFF_PLACEHOLDER,
    Redactor,
    RosterEntry,
    fold,
    name_variants,
)

ROSTER = [
    RosterEntry("Marisol Okafor", "external coach"),
    RosterEntry("Dmitri Halvorsen", "external coach"),
    RosterEntry("José de la Cruz", "teacher"),
    RosterEntry("Teodora Vasquez-Lind", "principal"),
    RosterEntry("Priyanka Oyelaran", "instructional coach"),
]
REDACTOR = Redactor(ROSTER)
ALL_NAMES = sorted({v for e in ROSTER for v in name_variants(e.full_name)}, key=len, reverse=True)
FILLER = ["we", "the", "team", "data", "was", "great", "and", "session", "helped", "us", ",",
          ".", "!", "😊", "’", "\n", "protocol", "Name", "coach"]


SCANNER = NameScanner(ROSTER)   # the independent oracle: token-based, shares no code


def survivors(text: str) -> list[str]:
    return SCANNER.find(text)


def test_full_first_last_possessive_any_case():
    text, found = REDACTOR.redact(
        "MARISOL and okafor's slides; Dmitri Halvorsen’s notes; José, jose, De La Cruz, "
        "Vasquez-Lind and priyanka")
    assert text == (f"{COACH_PLACEHOLDER} and {COACH_PLACEHOLDER}'s slides; "
                    f"{COACH_PLACEHOLDER}’s notes; {STAFF_PLACEHOLDER}, {STAFF_PLACEHOLDER}, "
                    f"{STAFF_PLACEHOLDER}, {STAFF_PLACEHOLDER} and {STAFF_PLACEHOLDER}")
    assert [r.original for r in found][:2] == ["MARISOL", "okafor"]


def test_names_inside_other_words_are_left_alone():
    assert REDACTOR.redact("Marisolita and Okaforesque words stay")[0] == \
        "Marisolita and Okaforesque words stay"


def test_accents_either_way_and_plural_possessive():
    accented = Redactor([RosterEntry("Giedrė Ulfsdóttir", "teacher")])
    assert accented.redact("Thanks Giedre and GIEDRĖ")[0] == "Thanks [Name] and [Name]"
    assert accented.redact("ulfsdottir's notes")[0] == "[Name]'s notes"
    assert REDACTOR.redact("Marísol helped")[0] == f"{COACH_PLACEHOLDER} helped"
    # decomposed accent (e + combining acute) is consumed with its letter
    assert REDACTOR.redact("Jose\u0301 came")[0] == f"{STAFF_PLACEHOLDER} came"
    assert REDACTOR.redact("the Okafors' classroom")[0] == f"the {COACH_PLACEHOLDER}' classroom"


def test_capitalised_near_misses_of_long_names():
    text, found = REDACTOR.redact(
        "Thanks Marisl, Halvorsne and Okafr's notes; Priyanak and Dimitri helped")
    assert text == (f"Thanks {COACH_PLACEHOLDER}, {COACH_PLACEHOLDER} and {COACH_PLACEHOLDER}'s "
                    f"notes; {STAFF_PLACEHOLDER} and {COACH_PLACEHOLDER} helped")
    assert [r.original for r in found] == ["Marisl", "Halvorsne", "Okafr", "Priyanak", "Dimitri"]
    # lower case, two edits away, another first letter, short names, placeholders: left alone
    for kept in ("marisl and okafr", "Marsl and Mariposa", "Narisol", "Jase and Cruzz",
                 "[External Coach name] and [Name]"):
        assert REDACTOR.redact(kept)[0] == kept, kept


def test_spans_point_at_the_original_text():
    text = "thanks Okafor and José!"
    for r in REDACTOR.find(text):
        assert text[r.start:r.end] == r.original


@settings(max_examples=300, deadline=None)
@given(st.lists(
    st.one_of(
        st.sampled_from(FILLER),
        st.tuples(st.sampled_from(ALL_NAMES),
                  st.sampled_from([str.lower, str.upper, str.title, str, fold]),
                  st.sampled_from(["", "'s", "’s", "s'", "s"]))
        .map(lambda t: t[1](t[0]) + t[2]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5),
    ), max_size=25),
    st.sampled_from([" ", "  ", "\n", ", "]))
def test_no_roster_name_survives(parts, sep):
    text = sep.join(parts)
    redacted, _ = REDACTOR.redact(text)
    assert survivors(redacted) == []
    # and redacting is idempotent
    assert REDACTOR.redact(redacted)[0] == redacted


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcdefghij klmnop.,!\n"), max_size=60))
def test_text_without_names_is_unchanged(text):
    if not survivors(text):
        assert REDACTOR.redact(text) == (text, [])


# --- invisible and format characters (issue 12) -------------------------------------------

INVISIBLE = {
    "soft hyphen": "\u00ad", "zero-width space": "\u200b", "zero-width joiner": "\u200d",
    "zero-width non-joiner": "\u200c", "word joiner": "\u2060", "BOM": "\ufeff",
    "left-to-right mark": "\u200e",
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(INVISIBLE)), st.sampled_from(["Marisol", "Halvorsen", "Okafor",
                                                            "Dmitri"]),
       st.integers(min_value=1, max_value=5), st.sampled_from(["", "'s", "s"]))
def test_an_invisible_character_inside_a_name_does_not_hide_it(kind, name, cut, suffix):
    word = name[:cut] + INVISIBLE[kind] + name[cut:]
    text = f"Thanks to {word}{suffix} for the data talk"
    redacted, found = REDACTOR.redact(text)
    assert [r.original for r in found] == [text[found[0].start:found[0].end]]
    assert found[0].original.replace(INVISIBLE[kind], "").startswith(name)
    assert survivors(redacted) == [] and INVISIBLE[kind] not in redacted
    assert redacted.startswith("Thanks to [") and redacted.endswith(" for the data talk")


def test_non_breaking_spaces_combining_marks_and_joined_full_names():
    for text, original in [
        ("Ask Marisol\u00a0Okafor", "Marisol\u00a0Okafor"),       # no-break space
        ("Ask Marisol\u202fOkafor", "Marisol\u202fOkafor"),       # narrow no-break space
        ("Ask Mari\u0301sol Okafor", "Mari\u0301sol Okafor"),     # combining acute accent
        ("Ask MarisolOkafor", "MarisolOkafor"),                   # words joined
    ]:
        redacted, found = REDACTOR.redact(text)
        assert [r.original for r in found] == [original], text
        assert redacted == "Ask [External Coach name]"


def test_scan_frames_says_which_table_column_file_and_row():
    import pandas as pd

    frame = pd.DataFrame({"answer_id": ["A1", "A2"], "answer_text": ["fine", "ask okafor"],
                          "file_name": ["session-01.csv", "session-02.csv"],
                          "row_number": [5, 9]})
    [hit] = SCANNER.scan_frames({"staging.answers": frame})
    assert hit == {"table": "staging.answers", "column": "answer_text", "row": "1",
                   "file": "session-02.csv", "file_row": "9", "answer_id": "A2"}
    frame.loc[1, "file_name"] = "okafor.csv"
    hits = SCANNER.scan_frames({"staging.answers": frame})
    assert {h["column"] for h in hits} == {"answer_text", "file_name"}
    assert {h["file"] for h in hits} == {"(withheld: the file name holds the name)"}


def test_export_file_names_are_labelled_for_the_report():
    import pandas as pd

    from pipeline.core.privacy.labels import label_export_files
    from pipeline.core.privacy.redact import RosterEntry

    roster = [RosterEntry(full_name="Marisol Quintero", role="coach")]
    files = pd.DataFrame({"file_name": ["session-02_MarisolQuintero.csv", "session-01.csv"],
                          "file_sha256": ["ab" * 32, "cd" * 32], "status": ["loaded"] * 2})
    out = label_export_files(files, roster)
    assert "Quintero" not in " ".join(out["file_name"]) and "Marisol" not in " ".join(out["file_name"])
    assert out["file_name"].iloc[1] == "session-01.csv"
    assert files["file_name"].iloc[0] == "session-02_MarisolQuintero.csv"   # input untouched


def _folded_slowly(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed
                   if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")


def _letter_runs_slowly(text: str) -> list[str]:
    out, run = [], ""
    for ch in text:
        if ch.isalpha():
            run += ch
            continue
        if run:
            out.append(run)
            run = ""
        if ch == "|":
            out.append("|")
    return [*out, run] if run else out


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=60))
def test_ascii_fast_paths_match_the_unicode_paths(text):
    """fold / normalise_for_check / letter_tokens skip the per-character Unicode work for ASCII
    text; on any text they give what the per-character definitions give."""
    assert fold(text) == _folded_slowly(text)
    assert letter_tokens(text) == _letter_runs_slowly(text)
    expected = _folded_slowly(text).casefold()
    for placeholder in ("[external coach name]", "[name]"):
        expected = expected.replace(placeholder, " | ")
    assert normalise_for_check(text) == expected


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=40)
       | st.from_regex(r"R_[A-Za-z0-9]{15}", fullmatch=True))
def test_spaced_words_are_the_spaced_text(text):
    """spaced_words (two regex passes for ASCII ids) gives spaced()'s text: separators as
    spaces, a space at each camelCase hump, on any text."""
    from pipeline.core.privacy.labels import spaced, spaced_words

    assert spaced_words(text) == spaced(text)[0]
    assert spaced_words("R_yqrn39tO3DxaSmXn") == "R yqrn  t O Dxa Sm Xn"


# --- the independent check's shortcuts change no result ----------------------------------------

WINDOW = st.text(alphabet="abcdeiklmnorstuvyz", min_size=1, max_size=22)


@settings(max_examples=400, deadline=None)
@given(st.lists(WINDOW | st.sampled_from(["marisol", "marisl", "okafor", "okafors", "halvorsne",
                                           "vasquezlind", "priyankaoyelaran", "delacruz"]),
                max_size=12))
def test_fuzzy_scan_matches_the_full_comparison(windows):
    """`match` compares a window only with the roster forms of a length that can reach the
    threshold, and `find` remembers each text: the result is the full comparison's."""
    from rapidfuzz import fuzz, process

    from pipeline.core.privacy.name_scan import FuzzyNameScan

    scan = FuzzyNameScan(ROSTER)
    for window in windows:
        if window in scan._exact:
            want = window
        elif len(window) >= scan._min_length - 1:
            best = process.extractOne(window, scan._fuzzy, scorer=fuzz.ratio,
                                      score_cutoff=scan.threshold)
            want = best[0] if best else None
        else:
            want = None
        assert scan.match(window) == want
    text = " ".join(windows)
    assert scan.find(text) == scan.find(text) == FuzzyNameScan(ROSTER).find(text)
