"""Codebook loading: the shipped codebooks, the format, and line-numbered errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.coding.codebook import (
    CodebookError,
    codebook_codes_frame,
    load_codebook,
    load_codebooks,
)

ROOT = Path(__file__).resolve().parents[1]
CODEBOOKS = ROOT / "codebooks"

TABLE_1 = {
    "depth": "Belief; Our practice; New approach; Change; Collaboration; Work done by the team; "
    "Data analysis; ACE Habits of Mind; I believe this has changed my practice by; I have "
    "changed my mind about; I used to think and now I think; Change practice; Focused",
    "sustainability": "time allocated; our environment; support; coaching support; leadership; "
    "growth; Alignment; All team members; Follow the process; Norms; Challenges; Planning; We "
    "decided to keep it going by; We found funding to keep doing; We plan to continue; Next "
    "year; We will",
    "spread": "Other procedures; Other activities; Other processes; Other meetings; Other "
    "classes; Support grade-level teams; Objectives; Implement; Direction; We tried it in a new "
    "team; We used the practice in a new way; Other people started asking us about",
    "shift_in_reform_ownership": "I made the decision to; I really believe in this; I want this "
    "to succeed; Capacity; Ownership; Set expectations; Accountable; Responsibility; We decided; "
    "We developed; We coordinated; We planned; We created",
    "personal_regard": "Goes above and beyond; Exceeds expectations; Extra effort; Goes the extra "
    "mile; Approachable; Friendly; Personable; Warm; Open to feedback; Welcoming; Accessible; "
    "Listens; Engages with parents/teachers/students; Reaches out; Communicates regularly; "
    "Connects with the community; Sets a positive tone; Creates a supportive environment; "
    "Fosters a sense of community",
    "competence_in_core_responsibilities": "Effective; Achieves goals; Produces results; Meets "
    "expectations; Skilled; Knowledgeable; Capable; Proficient; Delivers results; Fulfills "
    "duties; Consistently performs; Dependable; Reaches targets; Accomplishes tasks; "
    "Successfully manages; Efficient",
}


def test_shipped_codebooks_cover_table_1():
    books = {b.framework: b for b in load_codebooks(CODEBOOKS)}
    assert set(books) == {"scale", "relational_trust"}
    assert list(books["scale"].dimensions) == [
        "depth", "sustainability", "spread", "shift_in_reform_ownership"
    ]  # fmt: skip
    by_dim = {}
    for book in books.values():
        for code in book.codes:
            by_dim.setdefault(code.dimension, set()).add(code.label.casefold())
            assert code.patterns, code.code_id
    for dim, keywords in TABLE_1.items():
        wanted = {k.strip().casefold() for k in keywords.split(";")}
        assert wanted <= by_dim[dim], (dim, wanted - by_dim[dim])


def test_reported_codes_exist():
    codes = {c.code_id: c for b in load_codebooks(CODEBOOKS) for c in b.codes}
    assert codes["sense_of_community"].dimension == "personal_regard"
    assert "Accomplishing tasks" in codes["accomplishes_tasks"].aliases
    for cid in ("time_allocated", "coaching_support", "follow_the_process", "knowledgeable",
                "collaboration"):  # fmt: skip
        assert cid in codes


def test_dimension_definitions_from_domain():
    scale = load_codebook(CODEBOOKS / "scale.yaml")
    assert scale.dimensions["spread"].startswith("Leadership teams expanding the practices")
    assert scale.dimension_labels["shift_in_reform_ownership"] == "Shift in reform ownership"


def test_version_is_content_hash(tmp_path):
    import hashlib

    src = CODEBOOKS / "scale.yaml"
    book = load_codebook(src)
    assert book.version == hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    copy = tmp_path / "scale.yaml"
    copy.write_bytes(src.read_bytes() + b"\n# a comment changes the version\n")
    assert load_codebook(copy).version != book.version


def test_codes_frame():
    books = load_codebooks(CODEBOOKS)
    df = codebook_codes_frame(books)
    assert list(df.columns) == [
        "framework", "dimension", "code_id", "label", "description", "patterns", "codebook_version",
        "dimension_label",
    ]  # fmt: skip
    assert len(df) == sum(len(b.codes) for b in books)
    assert df["code_id"].is_unique
    change = json.loads(df.set_index("code_id").loc["change", "patterns"])
    assert any(p.get("exclude") for p in change)


def write(tmp_path: Path, text: str, name: str = "cb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
framework: demo
dimensions:
  d1: The first dimension.
codes:
  - id: alpha
    dimension: d1
    patterns:
      - alpha
      - {stem: betas}
      - {regex: "gam+a", boundary: start}
    exclude:
      - {phrase: alpha male, scope: answer}
"""


def test_pattern_forms(tmp_path):
    book = load_codebook(write(tmp_path, GOOD))
    (code,) = book.codes
    assert [(p.kind, p.text, p.boundary) for p in code.patterns] == [
        ("phrase", "alpha", "word"), ("stem", "betas", "word"), ("regex", "gam+a", "start")
    ]  # fmt: skip
    assert code.exclusions[0].scope == "answer"
    assert code.patterns[0].line == 8


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (
            (
                "    exclude:\n",
                "  - id: alpha\n    dimension: d1\n    patterns: [a]\n    exclude:\n",
            ),
            11,
            "duplicate code id 'alpha' (first defined on line 5)",
        ),
        (('"gam+a"', '"gam(+a"'), 10, "invalid regex 'gam(+a'"),
        (
            (
                '      - alpha\n      - {stem: betas}\n      - {regex: "gam+a", boundary: start}\n',
                "",
            ),
            7,
            "empty pattern list",
        ),
        (("    patterns:\n", "    patterns: []\n    x:\n"), 8, "unknown key 'x'"),
        (("    dimension: d1\n", "    dimension: d9\n"), 6, "unknown dimension 'd9'"),
        (("  d1: The first dimension.\n", "  d1: [unclosed\n"), 4, "YAML syntax error"),
        (("boundary: start", "boundary: edge"), 10, "boundary must be one of"),
        (("    patterns:\n", "    pattern:\n"), 7, "unknown key 'pattern'"),
        (("      - alpha\n", "      - alpha\n      - alpha\n"), 9, "duplicate phrase pattern"),
        (("      - alpha\n", "      - no\n"), 8, "pattern must be a string"),
        (('"gam+a"', '"x*"'), 10, "matches the empty string"),
    ],
)
def test_invalid_codebooks_name_file_line_problem(tmp_path, edit, line, problem):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(CodebookError) as err:
        load_codebook(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert problem in msg


def test_duplicate_code_ids_across_files(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD.replace("framework: demo", "framework: other"), "b.yaml")
    with pytest.raises(CodebookError, match=r"b\.yaml:5: duplicate code id 'alpha' \(already"):
        load_codebooks(tmp_path)


def test_folder_and_missing_paths(tmp_path):
    write(tmp_path, GOOD)
    assert [b.framework for b in load_codebooks(tmp_path)] == ["demo"]
    with pytest.raises(CodebookError, match="missing.yaml:0: cannot read"):
        load_codebooks(tmp_path / "missing.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CodebookError, match="no \\*.yaml"):
        load_codebooks(empty)


# ------------------------------------------------------------------------- meaning (issue 11)

MEANING = """\
    definition: What alpha means.
    use_when: When alpha is meant.
    not_when: Not beta.
    examples:
      - "first example"
      - "second example"
      - "third example"
      - "fourth example"
"""


def test_shipped_codes_carry_meaning():
    from pipeline.core.coding.codebook import MIN_EXAMPLES, meaning_gaps

    books = load_codebooks(CODEBOOKS)
    assert meaning_gaps(books) == []
    for book in books:
        for code in book.codes:
            assert code.definition and code.use_when and code.not_when, code.code_id
            assert len(code.examples) >= MIN_EXAMPLES, code.code_id


def test_meaning_is_parsed_and_gaps_listed(tmp_path):
    from pipeline.core.coding.codebook import meaning_gaps

    full = load_codebook(write(tmp_path, GOOD.replace("    patterns:\n", MEANING + "    patterns:\n")))
    (code,) = full.codes
    assert code.definition == "What alpha means."
    assert code.examples == ("first example", "second example", "third example", "fourth example")
    assert meaning_gaps([full]) == []
    bare = load_codebook(write(tmp_path, GOOD, "bare.yaml"))
    (gap,) = meaning_gaps([bare])
    assert gap.startswith(f"{bare.path}:5: code 'alpha' lacks definition, use_when, not_when")
    assert "examples (0 of 4)" in gap


@pytest.mark.parametrize(
    "old, new, line, problem",
    [
        ('      - "second example"\n', '      - "First  example"\n', 12,
         "duplicate example 'First example' (line 11)"),
        ('      - "second example"\n', "      - 12\n", 12, "example must be a non-empty string"),
        ('    examples:\n', "    examples: many\n", 10, "examples must be a list of strings"),
        ("    definition: What alpha means.\n", "    definition: [a, b]\n", 7,
         "'definition' must be a non-empty string"),
    ],
)
def test_invalid_meaning_names_file_line(tmp_path, old, new, line, problem):
    text = GOOD.replace("    patterns:\n", MEANING + "    patterns:\n")
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(CodebookError) as err:
        load_codebook(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert problem in str(err.value)


def test_version_covers_examples(tmp_path):
    text = GOOD.replace("    patterns:\n", MEANING + "    patterns:\n")
    before = load_codebook(write(tmp_path, text)).version
    after = load_codebook(write(tmp_path, text.replace("fourth example", "4th example"))).version
    assert before != after


def test_check_require_meaning(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    bare = write(tmp_path, GOOD)
    ok = CliRunner().invoke(app, ["codebook", "check", str(bare)])
    assert ok.exit_code == 0 and "lacks definition" in ok.output
    strict = CliRunner().invoke(app, ["codebook", "check", "--require-meaning", str(bare)])
    assert strict.exit_code == 1 and "1 codes lack meaning" in strict.output
    shipped = CliRunner().invoke(app, ["codebook", "check", "--require-meaning", str(CODEBOOKS)])
    assert shipped.exit_code == 0, shipped.output
