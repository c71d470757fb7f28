"""The suggestion stage in the warehouse's shape.

In:  staged answers of every school year; the human final codes (agreed or adjudicated).
Out: `coding.suggestions` rows, each year's from a model trained on the OTHER years' human codes
(zero-shot where there are none), and `coding.suggestion_quality`, one year at a time.
A year's trained suggestions never learn from that year (leave-one-school-year-out by
construction), so `coding.suggestion_quality` can compare them with the year's human codes
honestly; school-grouped cross-validation within the year (models fitted on the year's other
schools) is reported beside it, so a year's refresh refits that year's folds only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.suggest import row_memo
from pipeline.core.suggest.quality import QUALITY_COLUMNS, quality_table
from pipeline.core.suggest.select import TRAINED_RULE, SelectionRule
from pipeline.core.suggest.suggester import (
    load_zero_shot,
    scored,
    suggest,
    suggestion_rows,
    train,
)
from pipeline.core.suggest.trained import (
    FIT_SETTINGS,
    MIN_POSITIVES,
    cross_validated,
    label_matrix,
)
from pipeline.core.suggest.zero_shot import ZeroShot, require_examples

HUMAN_PROVENANCES = ("agreed", "adjudicated")
_FITTED: dict = {}


def zero_shot_for(codebooks):
    """One fitted zero-shot suggester per (codebook versions, model files) in this process: the
    assets of one run share it instead of loading and fitting it once each."""
    from pipeline.core.suggest.model import EmbeddingModel, resolve_files

    files = resolve_files()
    key = (tuple((b.framework, b.version) for b in codebooks), str(files.model),
           str(files.tokenizer))
    if key not in _FITTED:
        _FITTED.clear()
        _FITTED[key] = load_zero_shot(list(codebooks), EmbeddingModel.load())
    return _FITTED[key]


@dataclass
class ZeroShotOnDemand:
    """The zero-shot suggester of these codebooks and model, fitted when first asked for
    (`fitted()`). What keys a year's suggestions (suggester_key: the model's sha256 and the
    codebooks' versions) is known without the fit, so a refresh whose sessions are all kept
    never builds the prototypes and the keyword coder the fit needs (about a second of the
    sample's run). The model's files are checked against their pins and the codebooks'
    examples counted at once, so a missing model or a codebook without examples is reported
    before anything runs, as with the fitted suggester."""

    codebooks: list
    model_id: str
    sha256: str   # of the model's weights

    def fitted(self) -> ZeroShot:
        return zero_shot_for(self.codebooks)


def zero_shot_on_demand(codebooks) -> ZeroShotOnDemand:
    """ModelError when the model's files are missing or do not match their pins; ValueError
    when the codebooks hold no examples."""
    from pipeline.core.suggest.model import resolve_files, verify

    files = resolve_files()
    shas = verify(files)
    require_examples(codebooks)
    return ZeroShotOnDemand(list(codebooks), files.model_id, shas["model.onnx"])


def substantive(answers: pd.DataFrame) -> pd.DataFrame:
    return answers[~answers["non_substantive"].astype(bool)]


def table_columns() -> list[str]:
    """coding.suggestions' columns, as the catalog declares them (read when needed: the catalog
    imports this package's constants)."""
    from pipeline.core.warehouse import catalog

    return catalog.columns("coding.suggestions")


@dataclass
class Training:
    """What a year's suggestions are trained on, and the key of the suggester that makes:
    every suggestion row depends on its answer's text and on this key (row_memo)."""

    key: str
    answers: pd.DataFrame   # the training sample (training_sample)
    codes: pd.DataFrame     # its final human codes
    can_train: bool         # enough of them to train; else zero-shot only


def training(zs, train_answers: pd.DataFrame, train_codes: pd.DataFrame) -> Training:
    """The training of a year's suggester on the other years' coded answers and their human
    codes: at most TRAIN_MAX_ANSWERS of them (training_sample), when they hold at least
    MIN_POSITIVES answers, else none (zero-shot only)."""
    sample, codes = training_sample(substantive(train_answers), train_codes)
    return sampled_training(zs, sample, codes, len(train_answers))


def sampled_training(zs, sample: pd.DataFrame, codes: pd.DataFrame, available: int
                     ) -> Training:
    """`training` of a sample drawn already (`training_sample`, or the same draw made in
    DuckDB: pipeline.defs.suggestions.training_pool) from `available` coded answers, with
    its codes."""
    can_train = available >= 2 * MIN_POSITIVES and len(codes) > 0
    key = row_memo.suggester_key(zs, sample if can_train else None,
                                 codes if can_train else None, FIT_SETTINGS)
    return Training(key, sample, codes, can_train)


TRAINING_KIND = "suggestion_training"


def kept_training(key: str) -> Training | None:
    """The Training kept under `key` (`keep_training`), None when it is not there whole."""
    meta = frame_memo.load(TRAINING_KIND, f"{key}-meta")
    answers = frame_memo.load(TRAINING_KIND, f"{key}-answers")
    codes = frame_memo.load(TRAINING_KIND, f"{key}-codes")
    if meta is None or answers is None or codes is None or len(meta) != 1 \
            or list(meta.columns) != ["key", "can_train"]:
        return None
    return Training(str(meta.at[0, "key"]), answers, codes, bool(meta.at[0, "can_train"]))


def keep_training(key: str, trained_on: Training) -> None:
    """Keep a year's Training under `key`, a key of everything it is made of (the caller's:
    the other years' coded answers, coder units and human codes, the adjudication file, the
    roster, the model and codebooks), so the next run of the year with the same inputs reads
    it back instead of working out the other years' human final codes again."""
    frame_memo.store(TRAINING_KIND, f"{key}-answers", trained_on.answers)
    frame_memo.store(TRAINING_KIND, f"{key}-codes", trained_on.codes)
    frame_memo.store(TRAINING_KIND, f"{key}-meta", pd.DataFrame(
        {"key": [trained_on.key], "can_train": [trained_on.can_train]}))


def year_suggestions(zs, answers: pd.DataFrame, train_answers: pd.DataFrame | Training,
                     train_codes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Suggestions for `answers` (staging rows of one year, or some of its sessions): trained
    on the other years' human codes (`training`, or its two frames). Texts this suggester has
    seen before (row_memo: same model, codebooks and training set) take their stored rows; only
    the others are suggested, and training happens only for them. `zs`: a ZeroShot, or a
    ZeroShotOnDemand, fitted only when some text is new."""
    trained_on = train_answers if isinstance(train_answers, Training) \
        else training(zs, train_answers, train_codes)
    key = trained_on.key
    answers = substantive(answers)
    texts = answers["answer_text"].fillna("").astype(str)
    memo = row_memo.load(key, texts)   # the rows of these texts kept so far
    new = answers if memo is None else answers[~texts.isin(set(memo["text"]))]
    if len(new):
        zs = zs.fitted()
        trained = trained_for(zs, trained_on.answers, trained_on.codes, key) \
            if trained_on.can_train else None
        fresh = suggest(zs, new, "answer_id", "answer_text", trained)
        added = row_memo.by_text(fresh, pd.Series(texts[new.index].to_numpy(),
                                                  index=new["answer_id"].to_numpy()))
        row_memo.add(key, added)
        memo = added if memo is None else pd.concat([memo, added], ignore_index=True)
    if memo is None:  # no substantive answer
        return pd.DataFrame(columns=table_columns())
    rows = row_memo.rows_for(memo, answers["answer_id"], texts)
    rows = rows.rename(columns={"id": "answer_id"}).merge(
        answers[["answer_id", "school_year", "question_id"]], on="answer_id")
    return rows.reindex(columns=table_columns())


def trained_for(zs, answers: pd.DataFrame, codes: pd.DataFrame, key: str):
    """The trained suggester for these training answers and codes (None: no code had enough
    examples): rebuilt from the fit cache under the suggester's key, else trained and kept."""
    from pipeline.core.suggest import fit_cache
    from pipeline.core.suggest.trained import TrainedSuggester, _arrays, _rebuild

    n_codes = len(zs.protos.codes)
    stored = fit_cache.load(f"trained-{key}")
    if stored is not None and "rule" in stored and "coef" in stored:
        models = _rebuild(stored, stored["coef"].shape[1])
        rule = row_memo.rule_from(stored["rule"], SelectionRule) if len(stored["rule"]) \
            else None
        if models is not None:
            return TrainedSuggester(models, n_codes, rule) if models else None
    trained = train(zs, answers, "answer_id", "answer_text", codes)
    n_features = next(iter(trained.models.values())).coef_.shape[1] if trained.models else 0
    arrays = _arrays(trained.models, n_features)
    arrays["rule"] = row_memo.rule_array(trained.rule) if trained.rule is not None \
        else np.zeros(0)
    fit_cache.store(f"trained-{key}", arrays)
    return trained if trained.models else None


def all_year_suggestions(zs, answers: pd.DataFrame, reference: pd.DataFrame,
                         coder_units: pd.DataFrame) -> pd.DataFrame:
    """Suggestions for every school year, each trained on the other years' human codes."""
    coded = both_coders_saw(coder_units)
    parts = []
    for year in sorted(answers["school_year"].unique()):
        others = answers[(answers["school_year"] != year) & answers["answer_id"].isin(coded)]
        train_codes = reference[reference["answer_id"].isin(set(others["answer_id"]))]
        parts.append(year_suggestions(zs, answers[answers["school_year"] == year], others,
                                      train_codes))
    if not parts:
        return pd.DataFrame(columns=table_columns())
    return pd.concat(parts, ignore_index=True)


def human_reference(final_codes: pd.DataFrame) -> pd.DataFrame:
    return final_codes[final_codes["provenance"].isin(HUMAN_PROVENANCES)]


def both_coders_saw(coder_units: pd.DataFrame) -> set:
    """Answers in the units of at least two coders: only there do final codes (agreed or
    adjudicated) say what applies and, by their absence, what does not."""
    per_answer = coder_units.groupby("answer_id")["coder"].nunique()
    return set(per_answer[per_answer >= 2].index)


def coded_answers(answers: pd.DataFrame, coder_units: pd.DataFrame) -> pd.DataFrame:
    """Substantive answers both human coders saw."""
    return substantive(answers[answers["answer_id"].isin(both_coders_saw(coder_units))])


def no_cv_reason(coded: pd.DataFrame, suggestions: pd.DataFrame) -> str | None:
    """Why a year gets no school-grouped cross-validation (None: it gets one). `coded`: the
    year's coded answers (coded_answers); `suggestions`: the year's stored suggestions (none
    means the suggester could not run, so there is no model to cross-validate either)."""
    if coded.empty:
        return "no answer of the year was coded by both human coders"
    if coded["school_id"].nunique() < 2:
        return "the year's coded answers come from fewer than 2 schools (no school-grouped folds)"
    if suggestions.empty:
        return "no suggestions for the year (the suggester was unavailable)"
    return None


CV_MAX_ANSWERS = 5_000
TRAIN_MAX_ANSWERS = 20_000


def hashed_sample(answers: pd.DataFrame, max_answers: int | None) -> pd.DataFrame:
    """At most `max_answers` of `answers`: those whose sha256 of the answer id is smallest, in
    their order (all of them when they are no more). A fixed rule, so a full rebuild and a
    refresh of the same data pick the same answers, and new answers enter only in proportion to
    their number."""
    if max_answers is None or len(answers) <= max_answers:
        return answers
    keys = answers["answer_id"].map(lambda a: hashlib.sha256(str(a).encode()).hexdigest())
    return answers.loc[keys.sort_values(kind="mergesort").index[:max_answers]].sort_index()


def cv_sample(coded: pd.DataFrame, max_answers: int | None = CV_MAX_ANSWERS) -> pd.DataFrame:
    """At most `max_answers` of a year's coded answers for its cross-validation
    (hashed_sample). Why a cap: the CV fits 5 folds of per-code models on every answer it
    covers (at 63,000 coded answers in one year, about 450 s per refresh of that year); its
    figures' sampling error at 5,000 answers is about one percentage point on a code's recall,
    so the cap bounds the cost at any size without changing what the figures say. Years with
    fewer coded answers (the study's, the sample's) are cross-validated whole."""
    return hashed_sample(coded, max_answers)


def training_sample(answers: pd.DataFrame, codes: pd.DataFrame,
                    max_answers: int | None = TRAIN_MAX_ANSWERS
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training answers a year's trained suggester is fitted on (at most `max_answers`
    of the other years' coded answers, hashed_sample) and their final codes (only theirs:
    not those of answers left out, nor of non-substantive ones). Why a cap: the
    fit is four fits of every code's model (the model, then three folds for its selection
    rule) over answers x ~475 features; at 280,000 coded answers that is 12 minutes and 7 GB.
    20,000 answers are still 40 per feature, and a code with fewer than MIN_POSITIVES of
    them keeps its zero-shot probability, as a rare code always has. The study's years (a
    few thousand coded answers each) and the sample's are used whole."""
    sample = hashed_sample(answers, max_answers)
    return sample, codes[codes["answer_id"].isin(set(sample["answer_id"]))]


def school_grouped_cv(zs, answers: pd.DataFrame, reference: pd.DataFrame, n_splits: int = 5
                      ) -> tuple[pd.DataFrame, np.ndarray]:
    """Trained suggestions for every coded answer from models that never saw its school, as
    suggestion rows (source 'trained'; a code too rare to train in a fold keeps its zero-shot
    probability there), and the fold of each answer. The suggestion_quality asset passes one
    school year's coded answers: the folds group that year's schools."""
    units, probs, carrier, x = scored(zs, answers, "answer_id", "answer_text")
    y = label_matrix(answers["answer_id"], reference, [c.code_id for c in zs.protos.codes])
    groups = answers["school_id"].fillna("unknown").astype(str).to_numpy()
    oof, folds = cross_validated(x, y, probs, groups, n_splits)
    source = np.full(probs.shape[1], "trained", dtype=object)
    rows = suggestion_rows(zs, answers["answer_id"], units, oof, carrier, source, TRAINED_RULE)
    return rows.rename(columns={"id": "answer_id"}), folds


def year_quality(codebooks, answers: pd.DataFrame, suggestions: pd.DataFrame,
                 keyword: pd.DataFrame, final_codes: pd.DataFrame, coder_units: pd.DataFrame,
                 codes: pd.DataFrame, n_splits: int, cv_max_answers: int | None):
    """One school year's coding.suggestion_quality (its stored evaluation and, when it can
    have one, its school-grouped CV) from that year's rows. Returns (table, coded answers, CV
    sample, why no CV or None).

    Everything the table is computed from concerns the year's coded answers only (their
    texts, schools and questions; their suggestions, keyword codes and final codes; the CV's
    sample among them), so the table is kept (frame_memo) under a key of exactly those rows,
    the settings, the codebook versions and the pipeline's code (the model's sha256 is in the
    suggestion rows): a refresh that adds answers nobody has coded yet takes the stored table
    instead of refitting the CV's folds."""
    coded = coded_answers(answers, coder_units)
    sample = cv_sample(coded, cv_max_answers)
    no_cv = no_cv_reason(sample, suggestions)  # the sample is empty only when coded is
    ids = set(coded["answer_id"])

    def of_coded(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["answer_id"].isin(ids)]

    key = frame_memo.key(
        "suggestion quality", f"folds={n_splits}", f"cv_max={cv_max_answers}", str(no_cv),
        ",".join(f"{b.framework}={b.version}" for b in codebooks), codes,
        coded[["answer_id", "school_year", "question_id", "school_id", "answer_text"]],
        sample[["answer_id"]], of_coded(suggestions), of_coded(keyword),
        of_coded(final_codes))
    stored = frame_memo.load("suggestion_quality", key)
    if stored is not None and list(stored.columns) == QUALITY_COLUMNS:
        return stored.astype(object).where(stored.notna(), None), coded, sample, no_cv
    cv = None
    if no_cv is None:
        cv, _ = school_grouped_cv(zero_shot_for(list(codebooks)), sample,
                                  human_reference(final_codes), n_splits)
    table = suggestion_quality(suggestions, keyword, final_codes, answers, coder_units, codes,
                               cv, sample)
    frame_memo.store("suggestion_quality", key, table)
    return table, coded, sample, no_cv


def suggestion_quality(suggestions: pd.DataFrame, keyword: pd.DataFrame,
                       final_codes: pd.DataFrame, answers: pd.DataFrame,
                       coder_units: pd.DataFrame, codes: pd.DataFrame,
                       cv_suggestions: pd.DataFrame | None = None,
                       cv_answers: pd.DataFrame | None = None) -> pd.DataFrame:
    """coding.suggestion_quality: the stored suggestions (leave-one-school-year-out for trained
    ones) and, if given, school-grouped cross-validated ones, against the human codes. Rows
    per school year and question of `answers` (the asset passes one year's). `cv_answers`: the
    coded answers the CV covered (`cv_sample`; default every coded answer)."""
    coded = coded_answers(answers, coder_units)
    reference = human_reference(final_codes)
    parts = [quality_table(suggestions, keyword, reference, coded, codes, "stored")]
    if cv_suggestions is not None:
        covered = coded if cv_answers is None else \
            coded[coded["answer_id"].isin(cv_answers["answer_id"])]
        parts.append(quality_table(cv_suggestions, keyword, reference, covered, codes,
                                   "school_grouped_cv"))
    return pd.concat(parts, ignore_index=True)
