"""Suggestions by meaning: the offline model, answer units, recall on held-out text, grouped
cross-validation, quality figures and `survey-pipeline suggest`."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.ingest.staging import is_non_substantive
from pipeline.core.suggest import stage
from pipeline.core.suggest.evaluate import category_coverage
from pipeline.core.suggest.model import (
    DEFAULT_MODEL_SHA256,
    DEFAULT_TOKENIZER_SHA256,
    MODEL_ENV,
    EmbeddingModel,
    ModelError,
    default_files,
    resolve_files,
)
from pipeline.core.suggest.quality import quality_table
from pipeline.core.suggest.sentences import split_units, units_frame
from pipeline.core.suggest.suggester import SUGGESTION_COLUMNS, load_zero_shot, suggest
from pipeline.core.suggest.trained import TrainedSuggester, cross_validated, grouped_splits

ROOT = Path(__file__).resolve().parents[1]
CODEBOOKS = ROOT / "codebooks"
FIXTURES = ROOT / "tests" / "fixtures" / "suggest"
runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(MODEL_ENV, raising=False)
        return EmbeddingModel.load()


@pytest.fixture(scope="module")
def zs(model):
    return load_zero_shot(load_codebooks(CODEBOOKS), model)


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)


def model_folder(root: Path, sha_lines: str | None = None, tokenizer: bool = True) -> Path:
    """A user model folder made of the installed model's files (symlinked)."""
    files = default_files()
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.onnx").symlink_to(files.model)
    if tokenizer:
        (root / "tokenizer.json").symlink_to(files.tokenizer)
    if sha_lines is not None:
        (root / "sha256.txt").write_text(sha_lines)
    return root


# ----------------------------------------------------------------------------------- the model


def test_default_model_loads_offline_and_pinned(model):
    assert model.files.model_id == "all-MiniLM-L6-v2-onnx-int8"
    assert model.sha256 == DEFAULT_MODEL_SHA256
    assert model.files.pins == {"model.onnx": DEFAULT_MODEL_SHA256,
                                "tokenizer.json": DEFAULT_TOKENIZER_SHA256}
    texts = ["we ran out of time", "the session felt rushed",
             "the cafeteria serves pizza on fridays"]
    vecs = model.embed(texts)
    assert vecs.shape == (3, 384) and model.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = float(vecs[0] @ vecs[1]), float(vecs[0] @ vecs[2])
    assert paraphrase > unrelated + 0.1, (paraphrase, unrelated)
    # cached and order-independent: the same text gives the same row in any batch
    again = model.embed(["the session felt rushed", "we ran out of time"])
    np.testing.assert_array_equal(again[1], vecs[0])
    assert model.embed([]).shape == (0, 384)


def test_wrong_sha256_names_the_file(tmp_path):
    wrong = "0" * 64
    folder = model_folder(tmp_path / "m", f"{wrong}  model.onnx\n")
    with pytest.raises(ModelError) as err:
        EmbeddingModel.load(folder)
    msg = str(err.value)
    assert str(folder / "model.onnx") in msg and DEFAULT_MODEL_SHA256 in msg and wrong in msg

    tok = model_folder(tmp_path / "t", f"{DEFAULT_MODEL_SHA256} *model.onnx\n"
                                        f"{'f' * 64}  tokenizer.json\n")
    with pytest.raises(ModelError, match=r"tokenizer\.json: sha256"):
        EmbeddingModel.load(tok)


def test_matching_sha256_loads_the_user_folder(tmp_path):
    folder = model_folder(tmp_path / "mine", f"{DEFAULT_MODEL_SHA256.upper()}  model.onnx\n"
                                             f"{DEFAULT_TOKENIZER_SHA256}  tokenizer.json\n")
    m = EmbeddingModel.load(folder)
    assert m.files.model_id == "mine" and m.files.pins["model.onnx"] == DEFAULT_MODEL_SHA256
    assert m.sha256 == DEFAULT_MODEL_SHA256 and m.files.pooling == "mean"


def test_folder_without_tokenizer_raises(tmp_path):
    folder = model_folder(tmp_path / "m", tokenizer=False)
    with pytest.raises(ModelError, match="no tokenizer.json"):
        EmbeddingModel.load(folder)
    with pytest.raises(ModelError, match="no model.onnx"):
        resolve_files(tmp_path / "empty")


def test_env_var_chooses_the_model_folder(tmp_path, monkeypatch):
    assert resolve_files().model == default_files().model
    folder = model_folder(tmp_path / "env_model")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    monkeypatch.setenv(MODEL_ENV, str(folder))
    files = resolve_files()
    assert files.model == folder / "model.onnx" and files.tokenizer == folder / "tokenizer.json"
    assert files.model_id == "env_model" and files.pooling == "cls"
    assert files.pins == {"model.onnx": "", "tokenizer.json": ""}  # no sha256.txt: unpinned
    other = model_folder(tmp_path / "explicit")
    assert resolve_files(other).model == other / "model.onnx"  # an explicit folder wins


# ----------------------------------------------------------------------------------- units


def units(text: str) -> list[str]:
    spans = split_units(text)
    for s, e in spans:
        assert text[s:e] == text[s:e].strip() and text[s:e]
    return [text[s:e] for s, e in spans]


def test_split_units_keeps_numbers_and_titles():
    assert units("I would give it a 10. Loved it") == ["I would give it a 10. Loved it"]
    assert units("Ms. Lopez was great. Dr. Reyes too") == ["Ms. Lopez was great", "Dr. Reyes too"]
    assert units("1. more time 2. more examples") == ["more time", "more examples"]


def test_split_units_sentences_bullets_and_numbers():
    assert units("We talked. Then we planned! Did it work? Yes; mostly.") == [
        "We talked", "Then we planned", "Did it work", "Yes", "mostly"]
    assert units("Good:\n- collaboration\n* clear steps\n• snacks\n1. first item 2) second one"
                 ) == ["Good", "collaboration", "clear steps", "snacks", "first item",
                       "second one"]
    assert units("Collaboration. Clear steps. [Coach] kept us on time") == [
        "Collaboration", "Clear steps", "[Coach] kept us on time"]


def test_split_units_keeps_abbreviations_and_decimals():
    assert units("e.g. the data slides helped, i.e. the charts. Scores rose 3.5 points.") == [
        "e.g. the data slides helped, i.e. the charts", "Scores rose 3.5 points"]
    assert units("Examples, e.g. sample lessons, would help") == [
        "Examples, e.g. sample lessons, would help"]
    assert units("The a.m. session ran long. Next time start earlier.") == [
        "The a.m. session ran long", "Next time start earlier"]
    assert units("ok") == [] and units("") == [] and units("  \n ") == []  # too short: no unit
    assert units("...") == [] and units("[External Coach name]") == []  # nothing to embed


def test_the_first_character_guard_changes_no_break():
    """The break patterns test a break's first character before anything else (for speed):
    they find the breaks the unguarded patterns find, on real answers (the shared fixtures)
    and on random text made of the characters breaks are made of."""
    import random
    import re

    from pipeline.core.suggest import sentences
    from tests.helpers import SHARED_FIXTURES

    unguarded = [re.compile(sentences._ENDS + tail, re.IGNORECASE) for tail in (
        r"|(?:^|(?<=\n))\s*\d{1,2}[.)]\s+", r"|(?:^|(?<=\s))\d{1,2}[.)]\s+")]
    texts = []
    for path in sorted(SHARED_FIXTURES.glob("*/*.csv")):
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            texts += [cell for row in csv.reader(fh) for cell in row if len(cell) > 3]
    assert len(texts) > 3000
    rng = random.Random(7)
    alphabet = [*"ab eiMrsD.!?;\n\t-*•·▪◦12)0,[]", "e.g.", "i.e.", "mrs.", "\u2028", "10. "]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(20000)]
    for guarded, plain in zip((sentences._BREAK, sentences._BREAK_NUMBERED), unguarded,
                              strict=True):
        for text in texts:
            assert [m.span() for m in guarded.finditer(text)] == \
                [m.span() for m in plain.finditer(text)], text


def test_spans_cut_the_exact_text():
    text = "  Collaboration!!  \n\n - time to plan;  our coach, Dana K., modelled it.\n"
    spans = split_units(text)
    assert [text[s:e] for s, e in spans] == [
        "Collaboration", "time to plan", "our coach, Dana K., modelled it"]
    frame = units_frame(pd.DataFrame({"id": ["a", "b"], "t": [text, "one thing"]}), "id", "t")
    for row in frame.itertuples():
        source = text if row.id == "a" else "one thing"
        assert source[row.start:row.end] == row.text
    # units only: the whole of a multi-unit answer is not embedded again
    assert frame[frame["id"] == "a"]["unit"].tolist() == [0, 1, 2]
    assert frame[frame["id"] == "b"]["unit"].tolist() == [0]


# ----------------------------------------------------------------------------------- recall

# Written for this test in everyday words; none is a codebook example or a paraphrase row.
MINE = [
    ("we never have enough time to finish", "sustainability"),
    ("I wish the breakout rooms lasted longer so we could actually get through the agenda",
     "sustainability"),
    ("our coach gave us concrete feedback on the draft of our plan", "sustainability"),
    ("working side by side with my grade level colleagues on the student work", "depth"),
    ("she has obviously done this work for years and it shows",
     "competence_in_core_responsibilities"),
    ("i felt cared about as a person, not just as a teacher", "personal_regard"),
    ("the whole building is now using the protocol, not only our team", "spread"),
    ("our team runs the data meetings ourselves now, no outside help needed",
     "shift_in_reform_ownership"),
    ("it was nice to be welcomed so warmly by everyone in the room", "personal_regard"),
    ("it felt rushed at the end, we had to skip the last part", "sustainability"),
]
EVIDENCE = {"ev-a": "Great session. We ran out of time though!", "ev-b": "", "ev-c": None}


def eval_sets() -> dict[str, tuple[pd.DataFrame, dict[str, set]]]:
    par = pd.read_csv(FIXTURES / "paraphrases.csv", dtype=str, keep_default_na=False)
    with (FIXTURES / "teachinglab_coded.csv").open(newline="", encoding="utf-8") as fh:
        tl = list(csv.DictReader(fh))
    tl_ids = [f"tl{r['row']}-{r['question']}" for r in tl]
    mine_ids = [f"m{i}" for i in range(len(MINE))]
    return {
        "paraphrases": (par[["id", "text"]], {r.id: {r.dimension} for r in par.itertuples()}),
        "teachinglab": (pd.DataFrame({"id": tl_ids, "text": [r["text"] for r in tl]}),
                        {a: {d for d in r["dimensions"].split(";") if d}
                         for a, r in zip(tl_ids, tl, strict=True)}),
        "mine": (pd.DataFrame({"id": mine_ids, "text": [t for t, _ in MINE]}),
                 {a: {d} for a, (_, d) in zip(mine_ids, MINE, strict=True)}),
        "evidence": (pd.DataFrame({"id": list(EVIDENCE), "text": list(EVIDENCE.values())}), {}),
    }


@pytest.fixture(scope="module")
def suggested(zs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Default suggest() rows for every evaluation answer, in one call (one keyword pass)."""
    frame = pd.concat([f for f, _ in eval_sets().values()], ignore_index=True)
    assert frame["id"].is_unique
    return frame, suggest(zs, frame, "id", "text")


def coverage(suggested, name: str) -> dict:
    _, rows = suggested
    assert list(rows.columns) == SUGGESTION_COLUMNS
    frame, truth = eval_sets()[name]
    got = rows[rows["id"].isin(set(frame["id"]))].groupby("id")["dimension"].agg(set)
    return category_coverage(truth, got.to_dict())


def test_paraphrases_get_their_category(suggested):
    cov = coverage(suggested, "paraphrases")
    assert cov["answers"] == 166
    assert cov["answer_recall"] >= 0.85, cov
    assert cov["mean_categories"] <= 2.0, cov


def test_real_teachinglab_answers_get_their_categories(suggested):
    cov = coverage(suggested, "teachinglab")
    assert cov["answers"] == 35
    assert cov["answer_recall"] >= 0.8 and cov["mean_categories"] <= 2.1, cov


def test_everyday_sentences_get_their_dimension(suggested):
    books = "\n".join(p.read_text(encoding="utf-8").casefold()
                      for p in CODEBOOKS.glob("*.yaml"))
    paraphrases = (FIXTURES / "paraphrases.csv").read_text(encoding="utf-8").casefold()
    for text, _ in MINE:
        assert text.casefold() not in books and text.casefold() not in paraphrases
    _, rows = suggested
    got = rows.groupby("id")["dimension"].agg(set)
    hits = [dim in got.get(f"m{i}", set()) for i, (_, dim) in enumerate(MINE)]
    assert sum(hits) >= 8, [t for (t, _), h in zip(MINE, hits, strict=True) if not h]


def test_suggest_rows_carry_evidence_and_skip_empty_answers(zs, suggested):
    frame, rows = suggested
    unsuggested = set(frame["id"]) - set(rows["id"])
    assert {"ev-b", "ev-c"} <= unsuggested  # no text, no suggestion
    assert unsuggested == {i for i, t in zip(frame["id"], frame["text"], strict=True)
                           if not isinstance(t, str) or is_non_substantive(t)}
    assert rows["probability"].between(0, 1).all() and set(rows["source"]) == {"zero_shot"}
    assert (rows["model_sha256"] == DEFAULT_MODEL_SHA256).all()
    assert not rows.duplicated(["id", "code_id"]).any()
    texts = dict(zip(frame["id"], frame["text"], strict=True))
    for r in rows.itertuples():
        assert texts[r.id][r.evidence_start:r.evidence_end] == r.evidence_text
    ev = rows[rows["id"] == "ev-a"].set_index("code_id")
    assert ev.at["time_allocated", "evidence_text"] == "We ran out of time though"
    assert suggest(zs, frame.iloc[:0], "id", "text").columns.tolist() == SUGGESTION_COLUMNS


# ----------------------------------------------------------------------------------- grouped CV


@pytest.mark.parametrize("n_groups", [2, 3, 5, 6, 17, 40])
def test_grouped_splits_keep_groups_whole(n_groups):
    rng = np.random.default_rng(n_groups)
    groups = rng.choice([f"s{i}" for i in range(n_groups)], size=150)
    groups[:n_groups] = [f"s{i}" for i in range(n_groups)]  # every group present
    splits = grouped_splits(groups, n_splits=5)
    assert len(splits) == min(5, n_groups)
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(150))  # each answer tested exactly once
    for train, test in splits:
        assert len(test) and set(train).isdisjoint(test)
        assert len(train) + len(test) == 150
        assert set(groups[train]).isdisjoint(groups[test])
    assert grouped_splits(np.array(["one"] * 10)) == []


def test_cross_validated_predicts_each_answer_from_a_model_that_never_saw_it(monkeypatch):
    rng = np.random.default_rng(1)
    n = 160
    groups = np.array([f"school{i % 16}" for i in rng.permutation(n)])
    x = np.column_stack([np.arange(n) / n, rng.normal(size=(n, 3))])
    y = (rng.random((n, 2)) < 0.4).astype(int)
    seen = []
    fit = TrainedSuggester.fit.__func__

    def spy(cls, x_train, y_train):
        seen.append(set(np.rint(x_train[:, 0] * n).astype(int).tolist()))
        return fit(cls, x_train, y_train)

    monkeypatch.setattr(TrainedSuggester, "fit", classmethod(spy))
    zero = np.full((n, 2), 0.5)
    probs, fold_of = cross_validated(x, y, zero, groups, n_splits=5)
    assert (fold_of >= 0).all() and len(seen) == 5 == fold_of.max() + 1
    for k, train in enumerate(seen):
        test = set(np.flatnonzero(fold_of == k).tolist())
        assert train.isdisjoint(test) and train | test == set(range(n))
        assert set(groups[list(train)]).isdisjoint(set(groups[list(test)]))
    assert not np.allclose(probs, zero)  # the fold models did predict


def test_a_group_only_label_cannot_leak_across_folds():
    """Features say only which school an answer is from and the label is the school's: a model
    that never saw the school must give all its test answers the same probability."""
    n_schools, per = 12, 10
    groups = np.repeat([f"s{i}" for i in range(n_schools)], per)
    x = np.eye(n_schools)[np.repeat(np.arange(n_schools), per)]
    y = np.zeros((len(groups), 1), dtype=int)
    for _, test in grouped_splits(groups, 4):  # one school of each test fold is positive
        y[groups == groups[test][0]] = 1
    probs, fold_of = cross_validated(x, y, np.full((len(y), 1), 0.5), groups, n_splits=4)
    assert (fold_of >= 0).all()
    for k in range(4):
        assert set(y[fold_of == k, 0]) == {0, 1}  # each fold tests both kinds of school
        fold = probs[fold_of == k, 0]
        assert np.ptp(fold) < 1e-9, fold
    # with the schools seen, the same model would tell them apart: the check has teeth
    seen = TrainedSuggester.fit(x, y).predict(x, np.full((len(y), 1), 0.5))[0][:, 0]
    assert seen[y[:, 0] == 1].min() > seen[y[:, 0] == 0].max()


def test_each_year_is_trained_only_on_other_years(monkeypatch):
    years = ["2020-21", "2021-22", "2023-24"]
    answers = pd.DataFrame({
        "answer_id": [f"A{y[:4]}{i:02d}" for y in years for i in range(12)],
        "school_year": [y for y in years for _ in range(12)],
        "question_id": "worked",
        "answer_text": "we collaborated",
        "non_substantive": [i == 11 for _ in years for i in range(12)],
    })
    coded = answers[answers["school_year"] != "2023-24"]  # the latest year nobody coded yet
    units = pd.concat([coded[["answer_id"]].assign(coder=c) for c in ("jm", "ak")])
    reference = pd.DataFrame({"answer_id": coded["answer_id"], "code_id": "collaboration"})
    trained_on, suggested_for = {}, {}

    class Stub:
        models = {0: object()}

    def fake_train(zs, train_answers, final_codes, key):
        year = current["year"]
        trained_on[year] = (set(train_answers["answer_id"]), set(final_codes["answer_id"]))
        return Stub()

    current = {}

    def fake_suggest(zs, year_answers, id_col, text_col, trained=None):
        (year,) = set(year_answers["school_year"])
        suggested_for[year] = (set(year_answers[id_col]), trained)
        return pd.DataFrame(columns=SUGGESTION_COLUMNS)

    real_year = stage.year_suggestions

    def year_spy(zs, year_answers, *args):
        current["year"] = year_answers["school_year"].iloc[0]
        return real_year(zs, year_answers, *args)

    monkeypatch.setattr(stage, "trained_for", fake_train)
    # no stored rows: every year is suggested (the memo has tests of its own)
    monkeypatch.setattr(stage.row_memo, "suggester_key", lambda *args: "no model")
    monkeypatch.setattr(stage.row_memo, "load", lambda key, texts: None)
    monkeypatch.setattr(stage.row_memo, "add", lambda key, rows: None)
    monkeypatch.setattr(stage, "suggest", fake_suggest)
    monkeypatch.setattr(stage, "year_suggestions", year_spy)
    class NoModel:   # what year_suggestions asks of the zero-shot before fake_train and
        def fitted(self):   # fake_suggest take it
            return self

    out = stage.all_year_suggestions(NoModel(), answers, reference, units)
    assert list(out.columns) == stage.table_columns()
    assert set(trained_on) == set(suggested_for) == set(years)
    year_of = dict(zip(answers["answer_id"], answers["school_year"], strict=True))
    substantive = set(answers.loc[~answers["non_substantive"], "answer_id"])
    for year, (ids, code_ids) in trained_on.items():
        assert ids and all(year_of[a] != year for a in ids), year
        assert code_ids and all(year_of[a] != year for a in code_ids), year
        assert ids <= substantive and ids <= set(units["answer_id"])
    assert {year_of[a] for a in trained_on["2020-21"][0]} == {"2021-22"}
    assert {year_of[a] for a in trained_on["2023-24"][0]} == {"2020-21", "2021-22"}
    for year, (ids, trained) in suggested_for.items():
        assert {year_of[a] for a in ids} == {year} and ids <= substantive
        assert isinstance(trained, Stub)


# ----------------------------------------------------------------------------------- quality


def test_quality_table_counts_and_scores_at_every_level():
    codes = pd.DataFrame({"framework": ["F", "F", "F", "G"], "dimension": ["A", "A", "B", "C"],
                          "code_id": ["a1", "a2", "b1", "g1"]})
    dim = dict(zip(codes["code_id"], zip(codes["framework"], codes["dimension"], strict=True),
                   strict=True))

    def rows(pairs, **extra):
        return pd.DataFrame([{"answer_id": a, "framework": dim[c][0], "dimension": dim[c][1],
                              "code_id": c, **extra} for a, c in pairs],
                            columns=["answer_id", "framework", "dimension", "code_id", *extra])

    answers = pd.DataFrame({"answer_id": [1, 2, 3, 4], "school_year": "2020-21",
                            "question_id": "worked"})
    reference = rows([(1, "a1"), (2, "a2"), (2, "b1"), (4, "b1"), (99, "a1")])
    suggested = rows([(1, "a1"), (2, "a1"), (3, "b1"), (4, "b1"), (99, "g1")],
                     source="zero_shot")
    keyword = rows([(1, "a1")])
    t = quality_table(suggested, keyword, reference, answers, codes, "stored")
    assert set(t["evaluation"]) == {"stored"} and set(t["source"]) == {"zero_shot"}

    def get(level, key):
        col = {"code": "code_id", "dimension": "dimension", "framework": "framework"}[level]
        (row,) = t[(t["level"] == level) & (t[col] == key)].to_dict("records")
        return row

    expected = {  # (level, key): tp, fp, fn, tn, precision, recall, kappa
        ("code", "a1"): (1, 1, 0, 2, 0.5, 1.0, 0.5),
        ("code", "a2"): (0, 0, 1, 3, None, 0.0, 0.0),
        ("code", "b1"): (1, 1, 1, 1, 0.5, 0.5, 0.0),
        ("code", "g1"): (0, 0, 0, 4, None, None, None),  # answer 99 is not a coded answer
        ("dimension", "A"): (2, 0, 0, 2, 1.0, 1.0, 1.0),
        ("dimension", "B"): (1, 1, 1, 1, 0.5, 0.5, 0.0),
        ("framework", "F"): (3, 1, 0, 0, 0.75, 1.0, 0.0),
        ("framework", "G"): (0, 0, 0, 4, None, None, None),
    }
    for (level, key), (tp, fp, fn, tn, p, r, k) in expected.items():
        row = get(level, key)
        assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn), (level, key)
        assert row["n_answers"] == 4
        assert (row["precision"], row["recall"], row["cohen_kappa"]) == (p, r, k), (level, key)
    assert get("dimension", "A")["code_id"] is None and get("framework", "F")["dimension"] is None
    assert len(t) == 4 + 3 + 2
    a1 = get("code", "a1")  # the keyword coder's figures sit beside, on the same answers
    assert (a1["keyword_precision"], a1["keyword_recall"], a1["keyword_kappa"]) == (1.0, 1.0, 1.0)
    assert get("code", "b1")["keyword_recall"] == 0.0
    mixed = pd.concat([suggested, rows([(3, "a2")], source="trained")])
    assert set(quality_table(mixed, keyword, reference, answers, codes, "x")["source"]) == {
        "mixed"}


# ----------------------------------------------------------------------------------- CLI


def teachinglab_csv(tmp_path: Path, n: int | None = None) -> tuple[Path, dict[str, str]]:
    tl = pd.read_csv(FIXTURES / "teachinglab_coded.csv", dtype=str, keep_default_na=False)
    tl = tl.assign(id=tl["row"] + "-" + tl["question"])[["id", "text"]]
    if n:
        tl = tl.head(n)
    path = tmp_path / "answers.csv"
    tl.to_csv(path, index=False)
    return path, dict(zip(tl["id"], tl["text"], strict=True))


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, ["suggest", *map(str, args), "--codebook", str(CODEBOOKS)],
                         env=env)


def test_cli_suggests_for_real_answers(tmp_path):
    path, texts = teachinglab_csv(tmp_path)
    out = tmp_path / "out.csv"
    res = invoke(path, "--text-column", "text", "--id-column", "id", "--output", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(df.columns) == ["id", "framework", "dimension", "code", "probability", "source",
                                "evidence"]
    assert set(df["source"]) == {"zero_shot"}
    assert df["probability"].astype(float).between(0, 1).all()
    substantive = {i for i, t in texts.items() if not is_non_substantive(t)}
    assert set(df["id"]) == substantive  # every substantive answer gets a suggestion
    for r in df.itertuples():
        assert r.evidence and r.evidence in texts[r.id]
    assert f"{len(df)} suggestions for {len(substantive)} of {len(texts)} answers" in res.stderr
    assert DEFAULT_MODEL_SHA256[:12] in res.stderr


@pytest.fixture
def cli_uses_fitted(zs, monkeypatch):
    """The CLI's load of the model and fit, replaced by the module's fitted suggester (the real
    load runs in test_cli_suggests_for_real_answers)."""
    import pipeline.core.suggest.suggester as suggester

    def load(books, model=None):
        assert [c.code_id for b in books for c in b.codes] == [c.code_id
                                                               for c in zs.protos.codes]
        return zs

    monkeypatch.setattr(suggester, "load_zero_shot", load)


def test_cli_train_gives_trained_suggestions(tmp_path, cli_uses_fitted):
    path, texts = teachinglab_csv(tmp_path, 12)
    par = pd.read_csv(FIXTURES / "paraphrases.csv", dtype=str, keep_default_na=False)
    train = tmp_path / "coded.csv"
    par[["id", "text", "code_id"]].to_csv(train, index=False)
    out = tmp_path / "out.csv"
    res = invoke(path, "--text-column", "text", "--id-column", "id", "--train", train,
                 "--output", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(df["source"]) <= {"zero_shot", "trained"}
    trained = df[df["source"] == "trained"]
    assert len(trained) and {"coaching_support", "collaboration", "time_allocated"} & set(
        trained["code"])
    assert set(df["id"]) <= set(texts)

    bad = tmp_path / "bad.csv"
    par[["id", "text"]].assign(code_id="not_a_code").head(3).to_csv(bad, index=False)
    res = invoke(path, "--text-column", "text", "--id-column", "id", "--train", bad)
    assert res.exit_code == 1 and "not_a_code" in res.output and str(bad) in res.output


def test_cli_json_lines_with_row_number_ids(tmp_path, cli_uses_fitted):
    path, texts = teachinglab_csv(tmp_path, 6)
    by_row = dict(enumerate(texts.values()))
    res = invoke(path, "--text-column", "text", "--json")  # no id column: 0-based row numbers
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert records and all(list(r) == ["id", "framework", "dimension", "code", "probability",
                                       "source", "evidence"] for r in records)
    assert {r["id"] for r in records} == {str(i) for i, t in by_row.items()
                                          if not is_non_substantive(t)}
    for r in records:
        assert 0 <= r["probability"] <= 1 and r["evidence"] in by_row[int(r["id"])]


def test_cli_missing_column_and_empty_file(tmp_path):
    path, _ = teachinglab_csv(tmp_path, 3)
    res = invoke(path, "--text-column", "answer", "--id-column", "id")
    assert res.exit_code == 1
    assert "'answer'" in res.stderr and str(path) in res.stderr and "Traceback" not in res.output
    res = invoke(path, "--text-column", "text", "--id-column", "rid")
    assert res.exit_code == 1 and "'rid'" in res.stderr and str(path) in res.stderr

    header_only = tmp_path / "header.csv"
    header_only.write_text("id,text\n")
    res = invoke(header_only, "--text-column", "text")
    assert res.exit_code == 1 and "no rows" in res.stderr and str(header_only) in res.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = invoke(empty, "--text-column", "text")
    assert res.exit_code == 1 and str(empty) in res.stderr and "Traceback" not in res.output


def test_cli_model_sha_mismatch_is_a_clear_error(tmp_path):
    path, _ = teachinglab_csv(tmp_path, 3)
    folder = model_folder(tmp_path / "bad_model", f"{'a' * 64}  model.onnx\n")
    res = invoke(path, "--text-column", "text", env={MODEL_ENV: str(folder)})
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit)
    assert "sha256" in res.stderr and str(folder / "model.onnx") in res.stderr
    assert "Traceback" not in res.output
    assert os.environ.get(MODEL_ENV) is None


def test_pooled_dimension_kappa_sums_years_and_questions():
    from pipeline.core.suggest.quality import pooled_dimension_kappa

    rows = [  # two years of one dimension: pooled 2x2 = tp 8, fp 2, fn 2, tn 8 -> kappa 0.6
        {"evaluation": "stored", "level": "dimension", "framework": "scale", "dimension": "depth",
         "tp": 4, "fp": 1, "fn": 1, "tn": 4},
        {"evaluation": "stored", "level": "dimension", "framework": "scale", "dimension": "depth",
         "tp": 4, "fp": 1, "fn": 1, "tn": 4},
        {"evaluation": "stored", "level": "code", "framework": "scale", "dimension": "depth",
         "tp": 0, "fp": 9, "fn": 9, "tn": 0},  # another level: not counted
    ]
    (row,) = pooled_dimension_kappa(pd.DataFrame(rows)).to_dict("records")
    assert (row["n"], row["f1"], row["cohen_kappa"]) == (20, 0.8, 0.6)
    assert pooled_dimension_kappa(pd.DataFrame(rows[2:])).empty


def test_non_substantive_answers_get_no_suggestion(zs):
    answers = pd.DataFrame({"id": ["a", "b", "c", "d"],
                            "text": ["N/A", "Nothing.", "", "we ran out of time"]})
    rows = suggest(zs, answers, "id", "text")
    assert set(rows["id"]) == {"d"}


def test_select_offers_a_third_category_only_when_unsure():
    from pipeline.core.suggest.select import SelectionRule, select

    dims = [("f", "a"), ("f", "b"), ("f", "c"), ("g", "d")]
    unsure = np.array([[0.30, 0.20, 0.10, 0.01]])
    sure = np.array([[0.90, 0.20, 0.10, 0.01]])
    rule = SelectionRule(min_probability=0.05, relative=0.1)
    assert select(unsure, dims, rule) == [[0, 1, 2]]      # first below 0.5: up to three
    assert select(sure, dims, rule) == [[0, 1]]           # confident first: at most two
    assert select(np.array([[0.9, 0.01, 0.0, 0.0]]), dims, rule) == [[0]]  # others too unlikely


def test_wordless_answers_get_no_suggestion(zs):
    answers = pd.DataFrame({"id": ["a", "b", "c", "d", "e"],
                            "text": ["[External Coach name]", "ok", "5", "[Name] [Name]!",
                                     "[External Coach name] kept us on track"]})
    assert set(suggest(zs, answers, "id", "text")["id"]) == {"e"}


def test_suggest_refuses_duplicate_ids(zs):
    with pytest.raises(ValueError, match="'a' appears more than once"):
        suggest(zs, pd.DataFrame({"id": ["a", "a"], "text": ["time", "more time"]}),
                "id", "text")


def test_cli_input_errors_and_safe_csv(tmp_path, cli_uses_fitted):
    dup = tmp_path / "dup.csv"
    dup.write_text("id,text\n1,we ran out of time\n1,great coach\n", encoding="utf-8")
    res = invoke(dup, "--text-column", "text", "--id-column", "id")
    assert res.exit_code == 1 and "id '1' appears on more than one row" in res.output
    res = invoke(dup, "--text-column", "text", "--train", dup)
    assert res.exit_code == 1 and "--train needs --id-column" in res.output
    risky = tmp_path / "risky.csv"
    risky.write_text('id,text\n=1+1,"=HYPERLINK(""x"") our coach helped us plan"\n',
                     encoding="utf-8")
    out = tmp_path / "out.csv"
    res = invoke(risky, "--text-column", "text", "--id-column", "id", "--output", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(df) and (df["id"] == "'=1+1").all()
    assert df["evidence"].str.startswith("'=").all()


def test_long_units_are_cut_so_the_model_reads_all_of_them():
    from pipeline.core.suggest.sentences import MAX_CHARS

    text = "we liked the protocol and the data " * 20 + "and we need more time to collaborate"
    spans = split_units(text)
    assert len(spans) > 1 and all(e - s <= MAX_CHARS for s, e in spans)
    assert text[spans[-1][0]:spans[-1][1]].endswith("more time to collaborate")


def test_fitted_rule_keeps_categories_under_the_bar_and_finds_most():
    from pipeline.core.suggest.select import fitted_rule, select

    rng = np.random.default_rng(0)
    dims = [("f", "a"), ("f", "b"), ("g", "c"), ("g", "d")]
    truth = np.zeros((200, 4), dtype=int)
    truth[np.arange(200), rng.integers(0, 4, 200)] = 1
    probs = np.clip(0.35 * truth + rng.uniform(0, 0.3, (200, 4)), 0, 1)  # true codes score higher
    rule = fitted_rule(probs, truth, dims, max_mean_categories=1.5)
    picks = select(probs, dims, rule)
    assert np.mean([len({dims[c] for c in p}) for p in picks]) <= 1.5
    hits = np.mean([bool({dims[c] for c in p} & {dims[c] for c in np.flatnonzero(t)})
                    for p, t in zip(picks, truth, strict=True)])
    assert hits > 0.9
    assert fitted_rule(probs, np.zeros_like(truth), dims).min_probability == 0.3  # no truth


def test_chunks_scored_in_forked_workers_give_the_same_rows(zs, suggested, monkeypatch):
    """Several chunks of answers: every unit embedded first, then the chunks scored side by
    side in forked workers (parallel.map_forked); the rows are those of one chunk in this
    process, the real fixtures' answers and the model's real vectors."""
    import pipeline.core.suggest.suggester as suggester
    from pipeline.core import parallel

    frame, rows = suggested
    calls = []

    def recorded(func, items, **kw):
        calls.append(len(items))
        return parallel.map_forked(func, items, workers=2, **kw)

    monkeypatch.setattr(suggester, "CHUNK_ANSWERS", 40)
    monkeypatch.setattr(suggester, "map_forked", recorded)
    # a worker never runs the model nor opens the vector cache (neither survives a fork)
    parent = os.getpid()
    model = type(zs.model)

    def here_only(method):
        def guarded(self, *args, **kwargs):
            if os.getpid() != parent:
                raise RuntimeError(f"{method.__name__} in a forked worker")
            return method(self, *args, **kwargs)
        return guarded

    monkeypatch.setattr(model, "_encode", here_only(model._encode))
    monkeypatch.setattr(model, "disk_cache", here_only(model.disk_cache))
    forked = suggest(zs, frame, "id", "text")
    assert calls == [-(-len(frame) // 40)] and calls[0] > 2
    pd.testing.assert_frame_equal(forked, rows)


def test_chunk_units_cut_the_units_frame_of_each_run_of_answers():
    """suggest() splits the answers into units once and gives each chunk its rows: the same
    frame units_frame makes of the chunk alone (None for a chunk without a unit)."""
    from pipeline.core.suggest.suggester import chunk_units

    answers = pd.DataFrame({
        "id": [f"a{i}" for i in range(9)],
        "text": ["Clear steps. Kept us on time; more practice", "ok", "", "Modelling the "
                 "lesson helped\n- feedback\n- next steps", "no", "-", "1. more time 2. more "
                 "examples", "Loved it!", "??"]})
    sizes = [2, 1, 3, 2, 1]   # the second and fifth runs hold no unit
    units = units_frame(answers, "id", "text")
    parts = chunk_units(units, answers["id"], sizes)
    starts = np.cumsum([0, *sizes])
    assert len(parts) == len(sizes)
    for part, a, b in zip(parts, starts[:-1], starts[1:], strict=True):
        alone = units_frame(answers.iloc[a:b], "id", "text")
        if alone.empty:
            assert part is None
        else:
            pd.testing.assert_frame_equal(part, alone)
    assert [p is None for p in parts] == [False, True, False, False, True]


def test_batches_shared_between_sessions_give_the_bits_of_one_session(model, suggested):
    """load() opens one single-threaded session per core (at most MAX_SESSIONS) and _encode
    shares the batches between them on threads: the vectors are those one session gives
    running every batch, single-threaded or with two threads of its own (as the model ran
    before, and as the vectors cached by earlier runs were made), for texts of many lengths
    (the evaluation answers and their units)."""
    import dataclasses

    import onnxruntime as ort

    from pipeline.core.parallel import cores
    from pipeline.core.suggest.model import BATCH, MAX_SESSIONS

    assert len(model._sessions) == max(1, min(cores(), MAX_SESSIONS))
    frame, _ = suggested
    texts = sorted({*frame["text"].astype(str), *units_frame(frame, "id", "text")["text"]})
    assert len(texts) > 4 * BATCH
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 2
    threaded = ort.InferenceSession(str(model.files.model), opts,
                                    providers=["CPUExecutionProvider"])

    def alone(session):   # one session running every batch
        return dataclasses.replace(model, _session=session, _sessions=[session], _cache={},
                                   _disk=None)

    reference = alone(threaded)._encode(texts)
    assert np.array_equal(alone(model._session)._encode(texts), reference)
    assert np.array_equal(model._encode(texts), reference)
    two = dataclasses.replace(model, _sessions=[model._session, threaded], _cache={},
                              _disk=None)
    assert np.array_equal(two._encode(texts), reference)


def test_a_failing_batch_stops_the_encoding_and_raises(model):
    """A session that fails on a batch: _encode raises its error, and the batches not yet
    started are cancelled rather than run."""
    import dataclasses

    from pipeline.core.suggest.model import BATCH

    calls = []

    class Failing:
        def __init__(self, session):
            self._s = session

        def run(self, outputs, feeds):
            calls.append(len(calls))
            if len(calls) == 3:
                raise RuntimeError("a batch failed")
            return self._s.run(outputs, feeds)

        def __getattr__(self, name):   # get_inputs, get_outputs
            return getattr(self._s, name)

    sessions = [Failing(model._session), Failing(model._session)]
    broken = dataclasses.replace(model, _session=sessions[0], _sessions=sessions, _cache={},
                                 _disk=None)
    texts = [f"answer number {i} about feedback" for i in range(40 * BATCH)]
    with pytest.raises(RuntimeError, match="a batch failed"):
        broken._encode(texts)
    assert len(calls) < 40
