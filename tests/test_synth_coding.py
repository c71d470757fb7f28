"""tools.sample.synth_coding: the committed sample coding regenerates byte for byte, and it
validates, disagrees and reconciles the way its README says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.coding.coder_sheets import read_coder_sheets
from pipeline.core.coding.matcher import KeywordCoder
from pipeline.core.coding.sheet_validation import sheet_codes, validate_coder_sheets
from pipeline.core.reconciliation.adjudications import read_adjudications
from pipeline.core.reconciliation.agreement import agreement_table
from pipeline.core.reconciliation.discrepancies import discrepancies
from pipeline.core.reconciliation.final_codes import (
    final_codes,
    keyword_standin,
    reconciliation_summary,
)
from tools.sample.synth_coding import CODERS, EASY, HARD, generate_coding_sample, staged_answers

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CODING = SAMPLE / "coding"
FILES = ("coder_sheets.xlsx", "adjudications.csv", "README.md")


@pytest.fixture(scope="module")
def sample():
    books = load_codebooks(ROOT / "codebooks")
    answers = staged_answers(SAMPLE)
    codes = sheet_codes(books)
    rows = read_coder_sheets(CODING)
    apps, units, quarantine = validate_coder_sheets(rows, answers, codes)
    substantive = answers[~answers["non_substantive"]]
    keyword = KeywordCoder(books).code_frame(substantive, "answer_id", "answer_text")
    disc = discrepancies(apps, units, answers, keyword, *CODERS)
    return {"answers": answers, "codes": codes, "rows": rows, "apps": apps, "units": units,
            "quarantine": quarantine, "keyword": keyword, "disc": disc}


def test_committed_sample_regenerates_identically(tmp_path):
    shutil.copytree(SAMPLE / "landing", tmp_path / "landing")
    shutil.copy(SAMPLE / "roster.csv", tmp_path / "roster.csv")
    generate_coding_sample(tmp_path, ROOT / "codebooks", seed=2024)
    for name in FILES:
        assert (tmp_path / "coding" / name).read_bytes() == (CODING / name).read_bytes(), name


def test_folder_holds_two_coder_tabs(sample):
    assert set(sample["rows"]["coder"]) == set(CODERS)
    assert set(sample["rows"]["layout"]) == {"long"}
    assert set(sample["rows"]["source_file"]) == {"coder_sheets.xlsx"}  # not adjudications.csv


def test_validation_quarantines_the_deliberate_slips(sample):
    q = sample["quarantine"]
    assert len(q) == 8
    reasons = " | ".join(q["reason"])
    for expected in ("'Colaboration' is not in the codebook; did you mean collaboration?",
                     "'Coaching suport' is not in the codebook; did you mean coaching_support?",
                     "'Follow the proces' is not in the codebook; did you mean "
                     "follow_the_process?",
                     "category 'Depth' does not match the dimension of time_allocated",
                     "category 'Personal regard' does not match the dimension of knowledgeable",
                     "duplicate: coder_ak already applied collaboration",
                     "unknown answer id", "on a non-substantive answer"):
        assert expected in reasons
    # every sheet row: an application, a listed answer with no code, or quarantined
    rows, apps = sample["rows"], sample["apps"]
    n_nothing = int((rows["code"] == "").sum())
    assert len(apps) + n_nothing + len(q) == len(rows)


def test_both_coders_coded_every_substantive_answer(sample):
    n_substantive = int((~sample["answers"]["non_substantive"]).sum())
    counts = sample["units"].groupby("coder").size().to_dict()
    assert counts == {c: n_substantive for c in CODERS}


def test_agreement_is_realistic(sample):
    table = agreement_table(sample["apps"], sample["units"], sample["codes"], n_boot=0)
    overall = table[table["level"] == "overall"]["cohen_kappa"].iloc[0]
    assert 0.7 < overall < 0.9
    by_code = table[table["level"] == "code"].set_index("code_id")
    common = by_code[(by_code["n_both"] + by_code["n_only_a"] + by_code["n_only_b"]) >= 20]
    easy = common[common.index.isin(EASY)]["cohen_kappa"]
    hard = common[common.index.isin(HARD)]["cohen_kappa"]
    assert len(easy) >= 4 and (easy > 0.85).all()
    assert len(hard) >= 3 and (hard < 0.7).all()


def test_adjudications_resolve_most_but_not_all(sample):
    disc = sample["disc"]
    adj, problems = read_adjudications(CODING / "adjudications.csv", disc)
    assert problems.empty
    assert adj["accepted"].all()
    assert 0.75 * len(disc) < len(adj) < len(disc)
    final = final_codes(sample["apps"], sample["units"], adj, disc,
                        keyword_standin(sample["keyword"]), sample["answers"])
    summary = reconciliation_summary(disc, adj, final)
    assert summary["n_unresolved"] == len(disc) - len(adj)  # the undecided ones
    assert summary["by_provenance"]["keyword"] == 0  # both school years were coded by hand
    assert set(final["code_id"]) <= set(sample["codes"]["code_id"])
    assert set(final["answer_id"]) <= set(sample["answers"]["answer_id"])
    readme = (CODING / "README.md").read_text(encoding="utf-8")
    assert f"{len(adj)} of {len(disc)} discrepancies decided" in readme
