"""Stored suggestion rows and quality tables (row_memo.py, frame_memo.py): a refresh that adds
answers suggests only their texts and gives exactly the rows a fresh run gives; any change in
what the rows depend on is a new key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import frame_memo
from pipeline.core.coding.codebook import codebook_codes_frame, load_codebooks
from pipeline.core.suggest import row_memo, stage
from pipeline.core.suggest.model import MODEL_ENV, EmbeddingModel
from pipeline.core.suggest.select import SelectionRule
from pipeline.core.suggest.suggester import load_zero_shot
from pipeline.core.suggest.zero_shot import best_units

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASES = ROOT / "tests" / "fixtures" / "suggest" / "paraphrases.csv"


# ------------------------------------------------------------------------------ pure parts

def test_frame_key_covers_values_columns_and_order():
    a = pd.DataFrame({"x": ["1", "2"], "y": [1, 2]})
    base = frame_memo.key("k", a)
    assert base == frame_memo.key("k", a.copy())
    assert base != frame_memo.key("k", a.assign(y=[1, 3]))
    assert base != frame_memo.key("k", a.rename(columns={"y": "z"}))
    assert base != frame_memo.key("k", a.iloc[::-1])
    assert base != frame_memo.key("other", a)
    assert base != frame_memo.key("k", a, a)


def test_frames_round_trip_and_a_damaged_file_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    frame = pd.DataFrame({"text": ["a", "b"], "n": [1, 2], "p": [0.5, None]})
    assert frame_memo.load("kind", "k1") is None
    frame_memo.store("kind", "k1", frame)
    back = frame_memo.load("kind", "k1")
    assert back["text"].tolist() == ["a", "b"] and back["n"].tolist() == [1, 2]
    assert back["p"].iloc[0] == 0.5 and pd.isna(back["p"].iloc[1])
    (tmp_path / "kind" / "k1.parquet").write_bytes(b"not parquet")
    assert frame_memo.load("kind", "k1") is None


def _suggest_like(ids, texts, picks_per_id):
    """Rows as `suggest` gives them: a function of each answer's text."""
    rows = []
    for i, text, n in zip(ids, texts, picks_per_id, strict=True):
        for p in range(n):
            rows.append({"id": i, "framework": "scale", "dimension": f"d{p}",
                         "code_id": f"c{p}", "probability": 0.5 + p / 10, "source": "trained",
                         "evidence_text": None if p else f"unit of {text}",
                         "evidence_start": pd.NA if p else 0,
                         "evidence_end": pd.NA if p else 9, "model_sha256": "m",
                         "codebook_version": "v"})
    frame = pd.DataFrame(rows, columns=["id", *row_memo.ROW_COLUMNS])
    for c in ("evidence_start", "evidence_end"):
        frame[c] = frame[c].astype("Int64")
    return frame


def test_rows_by_text_come_back_as_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    ids = ["a1", "a2", "a3", "a4"]
    texts = pd.Series(["same text", "other", "same text", "nothing here"], index=ids)
    rows = _suggest_like(ids, texts, [2, 1, 2, 0])  # a1 and a3 share a text; a4 gets no row
    memo = row_memo.by_text(rows, texts)
    assert sorted(memo["text"].unique()) == ["nothing here", "other", "same text"]
    assert memo.loc[memo["text"] == "nothing here", "pick"].tolist() == [-1]
    row_memo.add("k", memo)  # through parquet and back
    back = row_memo.rows_for(row_memo.load("k", texts), pd.Series(ids),
                             texts.reset_index(drop=True))
    pd.testing.assert_frame_equal(back, rows.reset_index(drop=True))


def test_kept_rows_are_read_for_the_texts_asked_and_added_in_parts(tmp_path, monkeypatch):
    """Each call that adds texts writes a file of its own; a read brings back only the rows
    of the texts it asks for, from every file; past SEGMENTS_KEPT files they become one."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(row_memo, "SEGMENTS_KEPT", 3)
    ids = [f"a{i}" for i in range(6)]
    texts = pd.Series([f"text {i}" for i in range(6)], index=ids)
    rows = _suggest_like(ids, texts, [2, 1, 0, 1, 2, 1])
    memo = row_memo.by_text(rows, texts)
    assert row_memo.load("k", texts) is None
    for part in ("text 0|text 1", "text 2|text 3"):   # two refreshes, two files
        row_memo.add("k", memo[memo["text"].str.fullmatch(part)])
    files = sorted((tmp_path / row_memo.KIND).glob("k-*.parquet"))
    assert len(files) == 2
    got = row_memo.load("k", pd.Series(["text 1", "text 2", "never seen"]))
    assert sorted(got["text"].unique()) == ["text 1", "text 2"]
    assert got.loc[got["text"] == "text 2", "pick"].tolist() == [-1]   # no suggestion
    row_memo.add("k", memo[memo["text"].isin(["text 4"])])
    row_memo.add("k", memo[memo["text"].isin(["text 5"])])   # the 4th file: merged into one
    assert len(list((tmp_path / row_memo.KIND).glob("k-*.parquet"))) == 1
    back = row_memo.rows_for(row_memo.load("k", texts.drop("a3")), pd.Series(ids).drop(3),
                             texts.drop("a3").reset_index(drop=True))
    want = rows[rows["id"] != "a3"].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, want)


def test_a_part_of_texts_with_no_suggestion_reads_with_the_others(tmp_path, monkeypatch):
    """A refresh whose new texts got no suggestion stores a part with no value in most
    columns: it is still read as one table with the parts beside it."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    ids = ["a1", "a2"]
    texts = pd.Series(["coded", "nothing here"], index=ids)
    rows = _suggest_like(ids, texts, [2, 0])
    memo = row_memo.by_text(rows, texts)
    row_memo.add("k", memo[memo["text"] == "nothing here"])   # pick -1 only: no codes
    row_memo.add("k", memo[memo["text"] == "coded"])
    back = row_memo.rows_for(row_memo.load("k", texts), pd.Series(ids),
                             texts.reset_index(drop=True))
    pd.testing.assert_frame_equal(back, rows.reset_index(drop=True))


def test_a_rule_survives_its_array():
    rule = SelectionRule(min_probability=0.07, relative=0.2, max_categories=2,
                         unsure_below=0.4, max_codes_per_category=1, floor=0.01)
    assert row_memo.rule_from(row_memo.rule_array(rule), SelectionRule) == rule


def test_identical_units_tie_on_the_first_whatever_the_last_bits():
    units = pd.DataFrame({"id": ["a", "a", "a"], "text": ["x", "y", "x"]})
    probs = np.array([[0.7], [0.2], [0.7 + 1e-9]])  # the repeat came out a hair ahead
    _, best, carrier = best_units(["a"], units, probs)
    assert carrier[0, 0] == 0 and best[0, 0] == 0.7
    probs[2, 0] = 0.8  # a real difference still wins
    assert best_units(["a"], units, probs)[2][0, 0] == 2


# ------------------------------------------------------------------------- with the model

@pytest.fixture(scope="module")
def zs():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(MODEL_ENV, raising=False)
        return load_zero_shot(load_codebooks(ROOT / "codebooks"), EmbeddingModel.load())


def _years():
    """Training year: the paraphrases with their codes; the suggested year: everyday answers,
    one repeated, one with a sentence written twice, one non-substantive."""
    par = pd.read_csv(PARAPHRASES, dtype=str, keep_default_na=False)
    train = pd.DataFrame({"answer_id": "T" + par["id"], "school_year": "2020-21",
                          "question_id": par["question"], "answer_text": par["text"],
                          "non_substantive": False})
    codes = pd.DataFrame({"answer_id": train["answer_id"], "code_id": par["code_id"]})
    texts = [
        "Our coach helped us look at the attendance data together.",
        "We ran out of time. We ran out of time.",
        "More time to plan with my team next session please",
        "Our coach helped us look at the attendance data together.",
        "N/A",
        "Everyone shared ideas and we agreed on next steps for the reading block.",
        "I wish the principal had been there to hear the plan.",
        "The protocol kept us focused on student work.",
    ]
    year = pd.DataFrame({"answer_id": [f"Y{i}" for i in range(len(texts))],
                         "school_year": "2023-24", "question_id": "worked",
                         "answer_text": texts, "non_substantive": [t == "N/A" for t in texts]})
    return train, codes, year


def _spy(monkeypatch):
    seen = {"suggested": [], "trained": 0}
    real_suggest, real_train = stage.suggest, stage.train

    def suggest(zs, answers, *args, **kwargs):
        seen["suggested"].append(list(answers["answer_id"]))
        return real_suggest(zs, answers, *args, **kwargs)

    def train(*args, **kwargs):
        seen["trained"] += 1
        return real_train(*args, **kwargs)

    monkeypatch.setattr(stage, "suggest", suggest)
    monkeypatch.setattr(stage, "train", train)
    return seen


@pytest.mark.slow
def test_a_refresh_suggests_only_new_texts_and_gives_the_fresh_rows(zs, tmp_path, monkeypatch):
    train, codes, year = _years()
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = stage.year_suggestions(zs, year, train, codes)
    assert fresh["source"].eq("trained").any() and len(fresh)

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "refreshed"))
    seen = _spy(monkeypatch)
    stage.year_suggestions(zs, year.iloc[:4], train, codes)  # the sessions before
    assert seen == {"suggested": [["Y0", "Y1", "Y2", "Y3"]], "trained": 1}
    refreshed = stage.year_suggestions(zs, year, train, codes)  # one more session
    # only the texts never seen (Y3 repeats Y0's; Y4 is non-substantive), and no training:
    # the trained suggester is rebuilt from the fit cache under the same key
    assert seen == {"suggested": [["Y0", "Y1", "Y2", "Y3"], ["Y5", "Y6", "Y7"]], "trained": 1}
    pd.testing.assert_frame_equal(refreshed, fresh)

    again = stage.year_suggestions(zs, year, train, codes)  # nothing new: nothing suggested
    assert len(seen["suggested"]) == 2
    pd.testing.assert_frame_equal(again, fresh)

    class OnDemand:   # what the suggestions asset passes (stage.ZeroShotOnDemand): its key's
        codebooks, sha256 = zs.codebooks, zs.sha256   # parts, and a fit nothing may ask for

        def fitted(self):
            raise AssertionError("fitted although every text was suggested before")

    pd.testing.assert_frame_equal(stage.year_suggestions(OnDemand(), year, train, codes), fresh)

    # other training codes are another suggester: every text is suggested again
    stage.year_suggestions(zs, year, train, codes.iloc[1:])
    assert seen["suggested"][-1] == ["Y0", "Y1", "Y2", "Y3", "Y5", "Y6", "Y7"]
    assert seen["trained"] == 2


@pytest.mark.slow
def test_the_quality_table_is_kept_until_a_coded_answers_rows_change(zs, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    _, _, year = _years()
    answers = year.assign(school_id=[f"S{i % 3}" for i in range(len(year))])
    sugg = stage.year_suggestions(zs, answers, answers.iloc[:0], answers.iloc[:0])
    coded = answers[~answers["non_substantive"]]
    units = pd.concat([coded[["answer_id", "school_year"]].assign(coder=c) for c in "ab"])
    final = pd.DataFrame({"answer_id": ["Y0", "Y2", "Y5"], "school_year": "2023-24",
                          "framework": "scale", "dimension": "sustainability",
                          "code_id": "coaching_support", "provenance": "agreed"})
    keyword = final.iloc[:0]
    books = load_codebooks(ROOT / "codebooks")
    codes = codebook_codes_frame(books)
    fits = []
    real_cv = stage.school_grouped_cv
    monkeypatch.setattr(stage, "school_grouped_cv",
                        lambda *a, **k: fits.append(1) or real_cv(*a, **k))

    def quality(answers_, final_):
        return stage.year_quality(books, answers_, sugg, keyword, final_, units, codes, 3,
                                  None)[0]

    first = quality(answers, final)
    assert fits == [1]
    # an answer nobody coded joins the year: the stored table, no CV refit
    late = pd.DataFrame({"answer_id": ["Y9"], "school_year": "2023-24",
                         "question_id": "worked", "answer_text": "A new answer.",
                         "non_substantive": False, "school_id": "S9"})
    kept = quality(pd.concat([answers, late], ignore_index=True), final)
    assert fits == [1]
    pd.testing.assert_frame_equal(kept, first)
    # a coded answer's final code changes: computed again, and different
    changed = quality(answers, final.iloc[1:])
    assert fits == [1, 1] and not changed.equals(first)


def test_a_training_comes_back_whole_or_not_at_all(tmp_path, monkeypatch):
    """keep_training / kept_training: the key, the sample, its codes and can_train come back;
    a missing part is a miss (computed again), as is another key."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    answers = pd.DataFrame({"answer_id": ["A1", "A2"], "answer_text": ["More time.", "é ok"],
                            "school_year": ["2020-21"] * 2})
    codes = pd.DataFrame({"answer_id": ["A1"], "framework": ["scale"], "code_id": ["time"],
                          "decided_by": [None], "discrepancy_id": [None]})   # as final codes
    trained_on = stage.Training("suggester key", answers, codes, True)
    stage.keep_training("k", trained_on)
    back = stage.kept_training("k")
    assert (back.key, back.can_train) == ("suggester key", True)
    pd.testing.assert_frame_equal(back.answers, answers)
    pd.testing.assert_frame_equal(back.codes, codes)
    assert stage.kept_training("other") is None
    (tmp_path / stage.TRAINING_KIND / "k-codes.parquet").unlink()
    assert stage.kept_training("k") is None
