"""The suggestion assets on the bundled sample: coding.suggestions, coding.suggestion_quality (one
school year per partition) and next cycle's coder sheets, plus the suggestions' pandera
contract."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pandas as pd
import pytest

from pipeline.core.suggest.model import DEFAULT_MODEL_SHA256
from pipeline.core.suggest.sentences import split_units
from pipeline.core.suggest.trained import MIN_POSITIVES
from pipeline.defs import coding, ingestion, reconciliation, suggestions
from pipeline.defs.checks import pandera_result
from pipeline.defs.resources import default_resources
from pipeline.defs.suggestions import SUGGESTIONS
from pipeline.runner import materialize_all
from pipeline.schemas import Suggestions
from tests.helpers import SAMPLE, make_resources


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The sample through every asset up to the suggestion assets (no marts, no report)."""
    tmp = tmp_path_factory.mktemp("suggest_assets")
    resources = make_resources(tmp, wait_seconds=5, landing_dir=SAMPLE / "landing",
                               roster_path=SAMPLE / "roster.csv",
                               coder_sheets_dir=SAMPLE / "coding")
    defs = dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, coding, reconciliation, suggestions]),
        resources={**default_resources(), **resources},
    )
    summary = materialize_all(defs, str(SAMPLE / "landing"),
                              instance=dg.DagsterInstance.ephemeral(), echo=lambda _: None,
                              log_level="WARNING")
    assert summary.success, summary
    assert summary.failed_checks == []
    assert summary.years == ["2020-21", "2023-24"]
    return tmp / "wh.duckdb"


def df(db: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


def test_every_substantive_answer_gets_suggestions_with_evidence(warehouse):
    answers = df(warehouse, "select * from staging.answers")
    sugg = df(warehouse, "select * from coding.suggestions")
    substantive = answers[~answers["non_substantive"].astype(bool)]
    assert len(substantive) > 600
    # every substantive answer with something to read gets a suggestion; non-substantive ones,
    # and ones that are only "ok" or a redacted name, get none
    readable = substantive[substantive["answer_text"].map(lambda t: bool(split_units(t)))]
    assert len(readable) > len(substantive) - 20
    assert set(sugg["answer_id"]) == set(readable["answer_id"])
    assert sugg["probability"].between(0, 1).all()
    assert set(sugg["source"]) == {"zero_shot", "trained"}
    assert (sugg["model_sha256"] == DEFAULT_MODEL_SHA256).all()
    assert not sugg.duplicated(["answer_id", "code_id"]).any()
    # year and question are the answer's
    merged = sugg.merge(answers, on="answer_id", suffixes=("", "_a"), validate="many_to_one")
    assert (merged["school_year"] == merged["school_year_a"]).all()
    assert (merged["question_id"] == merged["question_id_a"]).all()
    # the evidence is the answer's own text at its span
    assert merged["evidence_text"].notna().all()
    cut = [t[s:e] for t, s, e in zip(merged["answer_text"], merged["evidence_start"],
                                     merged["evidence_end"], strict=True)]
    assert cut == merged["evidence_text"].tolist()
    # about two categories per answer at most, as the selection rule intends
    per_answer = sugg.drop_duplicates(["answer_id", "framework", "dimension"]).groupby(
        "answer_id").size()
    assert per_answer.max() <= 3 and per_answer.mean() <= 2.0


def test_codes_and_dimensions_are_the_codebooks(warehouse):
    sugg = df(warehouse, "select framework, dimension, code_id, codebook_version "
                         "from coding.suggestions")
    codes = df(warehouse, "select * from coding.codebook_codes")
    pairs = set(zip(codes["framework"], codes["dimension"], codes["code_id"], strict=True))
    assert set(zip(sugg["framework"], sugg["dimension"], sugg["code_id"], strict=True)) <= pairs
    assert sugg["codebook_version"].notna().all()


def test_trained_rows_only_learn_from_other_years(warehouse):
    """A year's trained suggestions need human codes in OTHER years; in the sample both years
    are coded, so each year is trained on the other one."""
    sugg = df(warehouse, "select school_year, source, count(*) n from coding.suggestions "
                         "group by all")
    human = df(warehouse, """
        select a.school_year, count(distinct f.answer_id) n from coding.final_codes f
        join staging.answers a using (answer_id)
        where f.provenance in ('agreed', 'adjudicated') group by all""")
    coded = dict(zip(human["school_year"], human["n"], strict=True))
    years = sorted(sugg["school_year"].unique())
    trained_years = set(sugg.loc[sugg["source"] == "trained", "school_year"])
    for year in years:
        others = sum(n for y, n in coded.items() if y != year)
        if year in trained_years:
            assert others >= 2 * MIN_POSITIVES, year
    assert trained_years == {"2020-21", "2023-24"}


def test_suggestion_quality_rows(warehouse):
    q = df(warehouse, "select * from coding.suggestion_quality")
    assert set(q["evaluation"]) == {"stored", "school_grouped_cv"}
    for evaluation, part in q.groupby("evaluation"):
        assert set(part["level"]) == {"code", "dimension", "framework"}, evaluation
    assert set(q.loc[q["evaluation"] == "school_grouped_cv", "source"]) == {"trained"}
    assert set(q.loc[q["evaluation"] == "stored", "source"]) == {"mixed"}
    kappa = q["cohen_kappa"].dropna()
    assert len(kappa) and kappa.between(-1, 1).all()
    assert (q[["tp", "fp", "fn", "tn"]].sum(axis=1) == q["n_answers"]).all()
    # every dimension row counts each human-coded substantive answer of its year and question
    coded = df(warehouse, """
        select a.school_year, a.question_id, count(distinct a.answer_id) n
        from staging.answers a join coding.coder_units u using (answer_id)
        where not a.non_substantive group by all""")
    expected = {(y, qid): n for y, qid, n in coded.itertuples(index=False)}
    dims = q[q["level"] == "dimension"]
    got = dims.groupby(["school_year", "question_id"])["n_answers"].agg(set).to_dict()
    assert got == {k: {n} for k, n in expected.items()}
    n_dims = df(warehouse, "select count(distinct (framework, dimension)) n "
                           "from coding.codebook_codes")["n"].iat[0]
    assert len(dims) == 2 * n_dims * len(expected)  # two evaluations
    # the school-grouped CV must not beat the stored suggestions by knowing its answers:
    # both evaluations score the same answers
    by_eval = dims.groupby("evaluation")["n_answers"].sum()
    assert by_eval["stored"] == by_eval["school_grouped_cv"]


def test_each_years_cross_validation_groups_that_years_schools_only(warehouse):
    """A year's school_grouped_cv rows are the CV of its own coded answers (folds of its own
    schools): recomputed here from that year's rows alone, they are the stored rows."""
    from pipeline.core.suggest import stage
    from pipeline.defs.resources import Codebooks

    codebooks = Codebooks(codebook_dir=str(Path(__file__).resolve().parents[1] / "codebooks"))
    zs = stage.zero_shot_for(list(codebooks.load()))
    q = df(warehouse, "select * from coding.suggestion_quality")
    assert q["school_year"].notna().all()
    year = "2023-24"
    where = f"school_year = '{year}'"
    answers, units, final, keyword, sugg = (df(warehouse, f"select * from {t} where {where}")
                                            for t in ("staging.answers", "coding.coder_units",
                                                      "coding.final_codes",
                                                      "coding.keyword_applications",
                                                      "coding.suggestions"))
    coded = stage.coded_answers(answers, units)
    assert coded["school_id"].nunique() >= 2
    cv, folds = stage.school_grouped_cv(zs, coded, stage.human_reference(final))
    assert (folds >= 0).all()
    want = stage.suggestion_quality(sugg, keyword, final, answers, units,
                                    codebooks.codes_frame(), cv)
    want = want[want["evaluation"] == "school_grouped_cv"]
    got = q[(q["evaluation"] == "school_grouped_cv") & (q["school_year"] == year)]
    by = ["level", "framework", "dimension", "code_id", "question_id"]
    cols = [*by, "n_answers", "tp", "fp", "fn", "tn", "cohen_kappa"]
    norm = [f[cols].astype({k: str for k in by}).sort_values(by).reset_index(drop=True)
            .astype({c: float for c in cols[len(by):]}) for f in (got, want)]
    pd.testing.assert_frame_equal(*norm)


def test_quality_runs_with_its_years_suggestions_and_in_the_sensors_job(tmp_path):
    """coding/suggestion_quality is a school-year asset: the runner's waves put it with (or
    after) the year's suggestions and final codes, and the landing sensor's per-year job
    selects it (a year's refresh recomputes that year's quality); no all-years run does."""
    from pipeline.definitions import build_defs
    from pipeline.defs import automation
    from pipeline.runner import partition_waves, run_order

    graph = build_defs(make_resources(tmp_path)).get_repository_def().asset_graph
    _before, partitioned, after = run_order(graph)
    quality = suggestions.SUGGESTION_QUALITY
    assert quality in partitioned and quality not in after
    wave = {k: i for i, keys in enumerate(partition_waves(graph, partitioned)) for k in keys}
    assert wave[quality] >= max(wave[SUGGESTIONS], wave[reconciliation.FINAL])
    assert wave[quality] > wave[reconciliation.HUMAN]
    assert quality in automation.SCHOOL_YEAR_ASSETS.resolve(graph)
    assert quality not in automation.ALL_YEARS_ASSETS.resolve(graph)


def test_coder_sheets_are_blind(warehouse):
    out = warehouse.parent / "reports" / "coder_sheets" / "2023-24"
    files = sorted(p.name for p in out.iterdir())
    assert files == ["coder_sheet_2023-24_coder_a.xlsx", "coder_sheet_2023-24_coder_b.xlsx"]
    n_answers = df(warehouse, "select count(*) n from staging.answers "
                              "where school_year = '2023-24' and not non_substantive")["n"].iat[0]
    for name in files:
        wb = openpyxl.load_workbook(out / name)
        ws = wb[wb.sheetnames[0]]
        assert ws.max_row == n_answers + 1  # header + one row per substantive answer
        comments = [c.coordinate for sheet in wb for row in sheet.iter_rows() for c in row
                    if c.comment is not None]
        assert comments == [], name
        values = {c.value for row in ws.iter_rows(min_row=2) for c in row[6:]}
        assert values <= {None}, name  # no code pre-filled


def good_suggestions() -> pd.DataFrame:
    return pd.DataFrame({
        "answer_id": ["A0123456789ab", "A0123456789ab", "Abcdef0123456"],
        "school_year": ["2020-21"] * 3,
        "question_id": ["worked", "worked", "improve"],
        "framework": ["scale"] * 3,
        "dimension": ["depth", "sustainability", "sustainability"],
        "code_id": ["collaboration", "time_allocated", "time_allocated"],
        "probability": [0.9, 0.2, 0.5],
        "source": ["trained", "zero_shot", "trained"],
        "evidence_text": ["we collaborated", "no time", None],
        "evidence_start": pd.array([0, 17, None], dtype="Int64"),
        "evidence_end": pd.array([15, 24, None], dtype="Int64"),
        "model_sha256": [DEFAULT_MODEL_SHA256] * 3,
        "codebook_version": ["1"] * 3,
    })


@pytest.mark.parametrize("column, bad, rule", [
    ("probability", 1.5, "less_than_or_equal_to"),
    ("probability", -0.1, "greater_than_or_equal_to"),
    ("source", "keyword", "isin"),
    ("model_sha256", "abc", "matches"),
    ("answer_id", "r1", "matches"),
])
def test_suggestions_schema_fails_on_a_bad_value(column, bad, rule):
    assert pandera_result("suggestions_schema", Suggestions, good_suggestions(),
                          SUGGESTIONS).passed
    frame = good_suggestions()
    frame.loc[1, column] = bad
    result = pandera_result("suggestions_schema", Suggestions, frame, SUGGESTIONS)
    assert not result.passed
    rules = result.metadata["failing_rules"].data
    assert any(r["column"] == column and rule in str(r["check"]) for r in rules), rules


def test_suggestions_schema_fails_on_a_duplicate_answer_code():
    frame = good_suggestions()
    frame.loc[2, ["answer_id", "code_id"]] = ["A0123456789ab", "collaboration"]
    result = pandera_result("suggestions_schema", Suggestions, frame, SUGGESTIONS)
    assert not result.passed
    rules = result.metadata["failing_rules"].data
    assert any("unique" in str(r["check"]).lower() for r in rules), rules


def test_unusable_model_leaves_an_empty_table_and_a_warning(tmp_path, monkeypatch):
    """A missing or mismatched model must not stop the refresh: the suggestions asset writes an
    empty table and warns (years nobody coded then fall back to the keyword coder)."""
    import dagster as dg
    import duckdb

    from pipeline.defs import suggestions as suggestion_defs
    from tests.helpers import make_resources

    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a model")  # and no tokenizer.json
    monkeypatch.setenv("SURVEY_EMBEDDING_MODEL", str(broken))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("school_year", ["2020-21"])
    res = dg.materialize([suggestion_defs.suggestions], resources=make_resources(tmp_path),
                         instance=instance, partition_key="2020-21")
    assert res.success
    checks = {e.check_name: e for e in res.get_asset_check_evaluations()}
    assert not checks["suggester_available"].passed
    assert checks["suggester_available"].severity == dg.AssetCheckSeverity.WARN
    assert "tokenizer.json" in checks["suggester_available"].metadata["problem"].value
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from coding.suggestions").fetchone() == (0,)
