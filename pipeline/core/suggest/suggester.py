"""Suggestions as rows: the entry point the CLI and the Dagster assets call.

`suggest(answers, ...)` gives one row per suggested (answer, code): framework, dimension, code,
probability, source (`zero_shot` or `trained`), the unit of the answer that carries it and its
span, the model's sha256 and the codebook version. Which codes are suggested: select.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.ingest.staging import is_non_substantive
from pipeline.core.suggest.model import EmbeddingModel
from pipeline.core.suggest.select import (
    TRAINED_RULE,
    ZERO_SHOT_RULE,
    SelectionRule,
    fitted_rule,
    select,
)
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


def load_zero_shot(codebooks, model: EmbeddingModel | None = None) -> ZeroShot:
    return ZeroShot.fit(model or EmbeddingModel.load(), codebooks)


def scored(zs: ZeroShot, answers: pd.DataFrame, id_column: str, text_column: str):
    """Everything both suggesters need: units, their vectors, answer-level zero-shot figures."""
    units, probs, carrier = zs.probabilities(answers, id_column, text_column)
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
    units, probs, carrier, x = scored(zs, answers, id_column, text_column)
    source = np.full(probs.shape[1], "zero_shot", dtype=object)
    if trained is not None and not trained.models:
        trained = None  # no code had enough human examples: zero-shot, with its own rule
    if trained is not None:
        probs, mask = trained.predict(x, probs)
        source[mask] = "trained"
    rule = rule or (trained.rule or TRAINED_RULE if trained is not None else ZERO_SHOT_RULE)
    return suggestion_rows(zs, answers[id_column], units, probs, carrier, source, rule)


def suggestion_rows(zs: ZeroShot, ids, units, probs, carrier, source, rule) -> pd.DataFrame:
    dims = zs.protos.dimensions
    has_text = np.zeros(len(probs), dtype=bool)
    if len(units):
        has_text[pd.Index(list(ids)).get_indexer(units["id"].unique())] = True
    rows = []
    for i, (answer_id, picks) in enumerate(zip(ids, select(probs, dims, rule), strict=True)):
        if not has_text[i]:
            continue
        for c in picks:
            code = zs.protos.codes[c]
            u = carrier[i, c]
            text, start, end = (units["text"].iat[u], int(units["start"].iat[u]),
                                int(units["end"].iat[u])) if u >= 0 else (None, None, None)
            rows.append((answer_id, code.framework, code.dimension, code.code_id,
                         round(float(probs[i, c]), 4), source[c], text, start, end,
                         zs.model.sha256, code.codebook_version))
    frame = pd.DataFrame(rows, columns=SUGGESTION_COLUMNS)
    frame["evidence_start"] = frame["evidence_start"].astype("Int64")
    frame["evidence_end"] = frame["evidence_end"].astype("Int64")
    return frame
