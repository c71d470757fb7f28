"""Suggestions as rows: the entry point the CLI and the Dagster assets call.

`suggest(answers, ...)` gives one row per suggested (answer, code): framework, dimension, code,
probability, source (`zero_shot` or `trained`), the unit of the answer that carries it and its
span, the model's sha256 and the codebook version. Which codes are suggested: select.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipeline.core.ingest.staging import is_non_substantive
from pipeline.core.parallel import map_forked
from pipeline.core.suggest.model import EmbeddingModel
from pipeline.core.suggest.select import (
    TRAINED_RULE,
    ZERO_SHOT_RULE,
    SelectionRule,
    fitted_rule,
    select,
)
from pipeline.core.suggest.sentences import units_frame
from pipeline.core.suggest.trained import (
    TrainedSuggester,
    answer_features,
    cross_validated,
    label_matrix,
)
from pipeline.core.suggest.zero_shot import ZeroShot

SUGGESTION_COLUMNS = [
    "id", "framework", "dimension", "code_id", "probability", "source", "evidence_text",
    "evidence_start", "evidence_end", "model_sha256", "codebook_version",
]
SOURCES = ("zero_shot", "trained")
CHUNK_ANSWERS = 20_000   # answers suggested at a time (suggest)


def load_zero_shot(codebooks, model: EmbeddingModel | None = None) -> ZeroShot:
    return ZeroShot.fit(model or EmbeddingModel.load(), codebooks)


def scored(zs: ZeroShot, answers: pd.DataFrame, id_column: str, text_column: str,
           units: pd.DataFrame | None = None):
    """Everything both suggesters need: units, their vectors, answer-level zero-shot figures.
    `units`: the answers' units_frame, when the caller has it already."""
    units, probs, carrier = zs.probabilities(answers, id_column, text_column, units)
    vectors = zs.model.embed(units["text"].tolist())
    features = answer_features(probs, units, vectors, answers[id_column])
    return units, probs, carrier, features


def train(zs: ZeroShot, answers: pd.DataFrame, id_column: str, text_column: str,
          final_codes: pd.DataFrame) -> TrainedSuggester:
    """Fit per-code models on answers with final human codes (answer_id, code_id rows), and
    choose their selection rule on held-out predictions: three folds of the training answers,
    each predicted by models fitted on the other two (fitted_rule), so that the trained
    suggester, like the zero-shot one, suggests fewer than two categories per answer."""
    _, probs, _, x = scored(zs, answers, id_column, text_column)
    y = label_matrix(answers[id_column], final_codes, [c.code_id for c in zs.protos.codes])
    trained = TrainedSuggester.fit(x, y)
    if trained.models:
        folds = np.arange(len(y)) % 3
        held_out, _ = cross_validated(x, y, probs, folds, n_splits=3)
        trained.rule = fitted_rule(held_out, y, zs.protos.dimensions)
    return trained


def suggest(zs: ZeroShot, answers: pd.DataFrame, id_column: str, text_column: str,
            trained: TrainedSuggester | None = None, rule: SelectionRule | None = None
            ) -> pd.DataFrame:
    """Suggested codes for every answer; an empty or non-substantive one ("N/A", "none",
    "Nothing.", as staging flags them) gets none. The rule defaults to TRAINED_RULE with a
    trained model, ZERO_SHOT_RULE without."""
    texts = answers[text_column].fillna("").astype(str)
    answers = answers[~texts.map(is_non_substantive)]
    if answers.empty:
        return pd.DataFrame(columns=SUGGESTION_COLUMNS)
    duplicated = answers[id_column][answers[id_column].duplicated()]
    if len(duplicated):
        raise ValueError(f"answer id {duplicated.iloc[0]!r} appears more than once")
    if trained is not None and not trained.models:
        trained = None  # no code had enough human examples: zero-shot, with its own rule
    rule = rule or (trained.rule or TRAINED_RULE if trained is not None else ZERO_SHOT_RULE)
    # CHUNK_ANSWERS at a time: an answer's rows are its own (its units, vectors,
    # probabilities and picks), and memory stays flat (the features alone are answers x ~475
    # float64: 2.5 GB for 660,000 answers at once)
    chunks = [answers.iloc[start:start + CHUNK_ANSWERS]
              for start in range(0, len(answers), CHUNK_ANSWERS)]
    if len(chunks) == 1:
        return pd.concat([_suggest_chunk(zs, answers, id_column, text_column, trained, rule)],
                         ignore_index=True)
    # several chunks: the answers split into units once, here, and every unit embedded here
    # (the model's sessions run side by side on threads); then the chunks scored side by side in forked
    # workers, which find each chunk's answers and units, and the vectors, in memory: only
    # the chunk's number goes to a worker
    units = units_frame(answers, id_column, text_column)
    parts = chunk_units(units, answers[id_column], [len(c) for c in chunks])

    def rows(k: int) -> pd.DataFrame:
        return _suggest_chunk(zs, chunks[k], id_column, text_column, trained, rule, parts[k])

    if zs.model.hold(units["text"]):
        return pd.concat(map_forked(rows, range(len(chunks))), ignore_index=True)
    return pd.concat([rows(k) for k in range(len(chunks))], ignore_index=True)


def chunk_units(units: pd.DataFrame, ids: pd.Series, sizes: list[int]) -> list:
    """The units_frame of each run of `sizes` consecutive answers (ids: the answers' ids, in
    the order units_frame read them), cut from the units_frame of them all: an answer's units
    are consecutive rows, in answer order. None for a run with no unit, which units_frame
    makes with its own (empty) column types."""
    place = pd.Index(ids).get_indexer(units["id"])
    bounds = np.searchsorted(place, np.cumsum([0, *sizes]), side="left")
    parts = []
    for a, b in itertools.pairwise(bounds):
        parts.append(units.iloc[a:b].reset_index(drop=True) if b > a else None)
    return parts


def _suggest_chunk(zs: ZeroShot, answers: pd.DataFrame, id_column: str, text_column: str,
                   trained: TrainedSuggester | None, rule: SelectionRule,
                   units: pd.DataFrame | None = None) -> pd.DataFrame:
    units, probs, carrier, x = scored(zs, answers, id_column, text_column, units)
    source = np.full(probs.shape[1], "zero_shot", dtype=object)
    if trained is not None:
        probs, mask = trained.predict(x, probs)
        source[mask] = "trained"
    return suggestion_rows(zs, answers[id_column], units, probs, carrier, source, rule)


def suggestion_rows(zs: ZeroShot, ids, units, probs, carrier, source, rule) -> pd.DataFrame:
    """One row per selected (answer, code) of an answer with text, in answer order then pick
    order; the evidence is the carrying unit's text and span (none when no unit carries it).
    Built column by column from the picks (no Python row per suggestion)."""
    dims = zs.protos.dimensions
    ids = np.asarray(list(ids), dtype=object)
    has_text = np.zeros(len(probs), dtype=bool)
    if len(units):
        has_text[pd.Index(ids).get_indexer(units["id"].unique())] = True
    picks = select(probs, dims, rule)
    lengths = np.fromiter((len(p) for p in picks), dtype=np.int64, count=len(picks))
    answer = np.repeat(np.arange(len(picks), dtype=np.int64), lengths)
    code = np.fromiter(itertools.chain.from_iterable(picks), dtype=np.int64,
                       count=int(lengths.sum()))
    keep = has_text[answer]
    answer, code = answer[keep], code[keep]
    codes = zs.protos.codes
    per_code = {name: np.array([getattr(c, name) for c in codes] or [None], dtype=object)
                for name in ("framework", "dimension", "code_id", "codebook_version")}
    unit = carrier[answer, code] if len(answer) else np.zeros(0, dtype=np.int64)
    has_unit = unit >= 0
    texts = np.full(len(unit), None, dtype=object)
    starts = np.zeros(len(unit), dtype=np.int64)
    ends = np.zeros(len(unit), dtype=np.int64)
    if has_unit.any():
        texts[has_unit] = units["text"].to_numpy(dtype=object)[unit[has_unit]]
        starts[has_unit] = units["start"].to_numpy(dtype=np.int64)[unit[has_unit]]
        ends[has_unit] = units["end"].to_numpy(dtype=np.int64)[unit[has_unit]]
    return pd.DataFrame({
        "id": ids[answer],
        "framework": per_code["framework"][code],
        "dimension": per_code["dimension"][code],
        "code_id": per_code["code_id"][code],
        # Python's round (correctly rounded), as the stored probabilities always were
        "probability": np.array([round(float(p), 4) for p in probs[answer, code]],
                                dtype=np.float64),
        "source": np.asarray(source, dtype=object)[code],
        "evidence_text": texts,
        "evidence_start": pd.arrays.IntegerArray(starts, ~has_unit).astype("Int64"),
        "evidence_end": pd.arrays.IntegerArray(ends, ~has_unit).astype("Int64"),
        "model_sha256": np.full(len(answer), zs.model.sha256, dtype=object),
        "codebook_version": per_code["codebook_version"][code],
    }, columns=SUGGESTION_COLUMNS)
