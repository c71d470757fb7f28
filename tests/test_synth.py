"""The synthetic sample: deterministic, counted as the study's data, quirky where it should be.

Counts are taken by parsing the written files with the csv module, not from the generator's
own bookkeeping.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pipeline.core import synth
from pipeline.core.synth import generate_sample, synthetic_answer_texts

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
ENCODING = {"2020-21/session-02.csv": "cp1252", "2020-21/session-03.csv": "utf-8-sig"}
QUESTION_COLUMNS = {  # year -> (header rows, Q1 column, Q2 column, school, coach)
    "2020-21": (1, "What worked from today's coaching session?",
                "In what ways can we improve today's coaching session?",
                "Which school are you from?", "Who was your coach today?"),
    "2023-24": (3, "Q1", "Q2", "Q_School", "Q_Coach"),
}
EMOJI_RE = re.compile("[\U0001F300-\U0001FAFF]")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_export(root: Path, year: str, name: str) -> tuple[list[list[str]], list[list[str]]]:
    """(header rows, data rows) of one export, decoded as the file claims to be."""
    encoding = ENCODING.get(f"{year}/{name}", "utf-8")
    text = (root / "landing" / year / name).read_bytes().decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    n_header = QUESTION_COLUMNS[year][0]
    return rows[:n_header], rows[n_header:]


def _parse(root: Path) -> dict:
    """Answered responses, duplicates, blank rows, schools and coaches, from the files."""
    out = {"worked": 0, "improve": 0, "duplicates": 0, "blank_rows": 0, "by_year": {},
           "schools": set(), "coaches": set(), "answers": [], "files": {}}
    for year, (_, q1, q2, school, coach) in QUESTION_COLUMNS.items():
        names = sorted(p.name for p in (root / "landing" / year).glob("session-*.csv"))
        out["files"][year] = names
        year_total = 0
        for name in names:
            header, data = _read_export(root, year, name)
            cols = header[0]
            i1, i2 = cols.index(q1), cols.index(q2)
            seen = set()
            for row in data:
                assert len(row) == len(cols), (name, row)
                if tuple(row) in seen:
                    out["duplicates"] += 1
                    continue
                seen.add(tuple(row))
                out["schools"].add(row[cols.index(school)])
                out["coaches"].add(row[cols.index(coach)])
                a1, a2 = row[i1].strip(), row[i2].strip()
                out["worked"] += bool(a1)
                out["improve"] += bool(a2)
                year_total += bool(a1) + bool(a2)
                out["blank_rows"] += not a1 and not a2
                out["answers"] += [a for a in (row[i1], row[i2]) if a.strip()]
        out["by_year"][year] = year_total
    return out


@pytest.fixture(scope="module")
def parsed() -> dict:
    return _parse(SAMPLE)


def test_committed_sample_equals_a_fresh_regeneration(tmp_path):
    generate_sample(tmp_path, n_answers=772, seed=2024)
    committed, fresh = _tree(SAMPLE), _tree(tmp_path)
    assert sorted(committed) == sorted(fresh)
    changed = [name for name in committed if committed[name] != fresh[name]]
    assert not changed, f"differs from a regeneration: {changed}"


def test_counts_match_the_study(parsed):
    assert parsed["files"] == {
        "2020-21": [f"session-{i:02d}.csv" for i in range(1, 5)],
        "2023-24": [f"session-{i:02d}.csv" for i in range(1, 10)],
    }
    assert parsed["worked"] + parsed["improve"] == 772
    assert parsed["worked"] > parsed["improve"]
    assert parsed["by_year"] == {"2020-21": 309, "2023-24": 463}       # 40% / 60%
    assert 3 <= parsed["duplicates"] <= 6
    assert parsed["blank_rows"] >= 2
    assert len(parsed["schools"]) == 43
    assert parsed["coaches"] == set(synth.COACHES)


def test_counts_are_exact_at_other_sizes(tmp_path):
    counts = generate_sample(tmp_path, n_answers=2500, seed=7)
    got = _parse(tmp_path)
    assert got["worked"] + got["improve"] == 2500 == counts["answered"]
    assert got["duplicates"] == counts["duplicates"]


def test_readme_states_synthetic_and_counts():
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower()
    assert "python -m pipeline.core.synth --out data/sample --answers 772 --seed 2024" in readme
    assert "**772**" in readme
    for name in ("session-02.csv", "session-03.csv", "cp1252", "BOM"):
        assert name in readme


def test_cp1252_file_is_cp1252():
    raw = (SAMPLE / "landing/2020-21/session-02.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    assert "\u2019" in text                       # smart apostrophe stored as byte 0x92
    assert b"\x92" in raw
    assert not EMOJI_RE.search(text)
    assert not raw.startswith(b"\xef\xbb\xbf")


def test_bom_file_has_bom_and_others_are_plain_utf8():
    for path in sorted((SAMPLE / "landing").rglob("session-*.csv")):
        rel = path.relative_to(SAMPLE / "landing").as_posix()
        raw = path.read_bytes()
        assert b"\r\n" in raw and raw.endswith(b"\r\n")
        if rel == "2020-21/session-03.csv":
            assert raw.startswith(b"\xef\xbb\xbf")
            raw.decode("utf-8-sig")
        elif rel != "2020-21/session-02.csv":
            assert not raw.startswith(b"\xef\xbb\xbf")
            raw.decode("utf-8")


def test_answers_have_the_quirks(parsed):
    answers = parsed["answers"]
    assert any(EMOJI_RE.search(a) for a in answers)
    assert any("\u2019" in a for a in answers)
    assert any("\u201c" in a for a in answers)
    assert any("\n" in a for a in answers)
    assert {"NA", "N/A", "n/a", "-"} & set(answers)
    assert any(len(a) > 250 for a in answers)
    assert sum(1 for a in answers if len(a.split()) == 1) > 20


def test_google_forms_layout():
    header, data = _read_export(SAMPLE, "2020-21", "session-01.csv")
    assert header[0] == list(synth.GOOGLE_HEADER)
    for row in data:
        stamp = row[0]
        assert re.fullmatch(r"[1-9]\d?/[1-9]\d?/20\d\d [1-9]\d?:\d\d:\d\d", stamp), stamp
        datetime.strptime(stamp, "%m/%d/%Y %H:%M:%S")


def test_qualtrics_layout():
    ids = set()
    for name in sorted(p.name for p in (SAMPLE / "landing/2023-24").glob("session-*.csv")):
        header, data = _read_export(SAMPLE, "2023-24", name)
        cols, texts, imports = header
        assert cols[:9] == ["StartDate", "EndDate", "Status", "IPAddress", "Progress",
                            "Duration (in seconds)", "Finished", "RecordedDate", "ResponseId"]
        assert [json.loads(c)["ImportId"] for c in imports][cols.index("Q1")] == "QID1_TEXT"
        assert texts[cols.index("Q2")] == "In what ways can we improve today's coaching session?"
        session = int(name[8:10])
        rows = {tuple(r) for r in data}
        for row in rows:
            rec = dict(zip(cols, row, strict=True))
            assert re.fullmatch(r"R_[A-Za-z0-9]{15}", rec["ResponseId"])
            assert rec["SessionNumber"] == str(session)
            datetime.strptime(rec["RecordedDate"], "%Y-%m-%d %H:%M:%S")
            ids.add(rec["ResponseId"])
        assert len(rows) == len({r[cols.index("ResponseId")] for r in rows})
    assert len(ids) > 300


def test_mappings_point_at_real_columns():
    for year in QUESTION_COLUMNS:
        mapping = yaml.safe_load((SAMPLE / "landing" / year / "mapping.yaml").read_text("utf-8"))
        assert mapping["school_year"] == year
        header, _ = _read_export(SAMPLE, year, "session-01.csv")
        known = set(header[0]) | (set(header[1]) if len(header) > 1 else set())
        for field, column in mapping["columns"].items():
            assert column is None or column in known, (year, field, column)
        assert set(mapping["identifying"]) <= known


def test_roster_names_are_not_words_and_appear_in_answers(parsed):
    with (SAMPLE / "roster.csv").open(encoding="utf-8", newline="") as fh:
        roster = list(csv.DictReader(fh))
    coaches = [r["full_name"] for r in roster if r["role"] == "external coach"]
    staff = [r for r in roster if r["role"] != "external coach"]
    assert coaches == list(synth.COACHES)
    assert 15 <= len(staff) <= 25
    assert {r["role"] for r in staff} == {"principal", "assistant principal", "teacher",
                                          "instructional coach", "counselor"}
    tokens = {w.casefold() for r in roster for w in r["full_name"].split()}
    bank_text = " ".join(
        t for bank in (synth.WORKED, synth.IMPROVE) for group in bank.values() for t in group
    ) + " ".join(synth.ONE_WORD["worked"] + synth.ONE_WORD["improve"] + synth.NON_SUBSTANTIVE
                 + synth.NO_CODE["worked"] + synth.NO_CODE["improve"] + synth.CLOSERS
                 + synth.GOALS + synth.STEPS + synth.PROTOCOLS + synth.ARTIFACTS
                 + synth.SCHOOLS + tuple(synth.MISSPELLINGS.values()))
    bank_words = set(re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", bank_text).casefold()))
    assert not tokens & bank_words
    assert all(len(t) >= 5 for t in tokens)    # no short names hiding inside words
    mentioned = [a for a in parsed["answers"]
                 if tokens & set(re.findall(r"[a-z]+", a.casefold()))]
    assert len(mentioned) >= 20
    alternation = "|".join(sorted(tokens))
    possessive = re.compile(rf"\b(?:{alternation})['\u2019]s\b", re.IGNORECASE)
    assert any(possessive.search(a) for a in mentioned)
    assert any(re.search(rf"\b(?:{alternation})\b", a) for a in mentioned)  # lower-case


def test_synthetic_answer_texts_deterministic_and_varied():
    a = synthetic_answer_texts(1000, seed=3)
    assert a == synthetic_answer_texts(1000, seed=3)
    assert a != synthetic_answer_texts(1000, seed=4)
    assert len(a) == 1000 and all(t.strip() for t in a)
    assert len(set(a)) > 500
    lengths = sorted(len(t) for t in a)
    assert lengths[0] <= 5 and lengths[-1] > 250
