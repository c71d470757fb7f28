"""Zero-shot suggestions: codes by meaning for answers no human has coded.

Each unit of an answer (sentence or list item, see sentences.py) is compared with every code's
prototypes (prototypes.py). Four figures per (unit, code) go into one logistic model shared by
all codes: the best similarity, the mean of the three best, the margin over the best other code,
and whether the keyword coder found the code in the answer. The model is fitted on the codebook
itself, leave-one-out: each example is scored against every other prototype (its own excluded),
with its own code as the positive. No answer from any survey is used, so the probabilities are
the codebook's, not a human coder's: `suggestion_quality` measures them against humans.

Every vector is centred on the mean prototype before the cosine (and made unit length again):
all answers and codes talk about coaching sessions, and that shared direction would otherwise
make everything look alike. (On the independent evaluation sets this raised category recall at
the same number of suggestions; docs/suggestions.md.)

An answer's probability for a code is its best unit's; that unit is the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.suggest.prototypes import (
    Prototypes,
    build_prototypes,
    code_similarity,
    prototype_texts,
)
from pipeline.core.suggest.sentences import units_frame

FEATURES = ("best", "top3", "margin", "keyword")
FIT_C, FIT_MAX_ITER = 1.0, 1000   # the logistic model's settings (in the fit cache's key)
ZERO_SHOT_FIT = f"zero-shot LogisticRegression(C={FIT_C}, max_iter={FIT_MAX_ITER}) on unit_features"


def require_examples(codebooks) -> None:
    """ValueError when the codebooks hold fewer than two examples: the fit needs them (read
    from the codebooks alone, without the model)."""
    _, rows = prototype_texts(codebooks)
    if sum(kind == "example" for _, kind, _ in rows) < 2:
        raise ValueError("the codebooks have no examples: add examples to suggest by meaning")


def unit_features(best: np.ndarray, top3: np.ndarray, keyword: np.ndarray) -> np.ndarray:
    """(n_units * n_codes, 4) feature rows, unit-major."""
    n, k = best.shape
    if k > 1:
        part = -np.partition(-best, 1, axis=1)
        first, second = part[:, :1], part[:, 1:2]
        other_best = np.where(best >= first, second, first)
    else:
        other_best = np.zeros_like(best)
    margin = best - other_best
    return np.stack([best, top3, margin, keyword.astype(np.float32)], axis=-1).reshape(n * k, 4)


def keyword_matrix(texts: list[str], coder, protos: Prototypes) -> np.ndarray:
    """(n_texts, n_codes) 0/1: the keyword coder's codes for each text."""
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    coded = coder.code_frame(frame, "id", "text")
    col = {c.code_id: j for j, c in enumerate(protos.codes)}
    out = np.zeros((len(texts), len(protos.codes)), dtype=np.float32)
    for row, code_id in zip(coded["id"], coded["code_id"], strict=True):
        if code_id in col:
            out[int(row), col[code_id]] = 1.0
    return out


def centred(vectors: np.ndarray, center: np.ndarray) -> np.ndarray:
    v = vectors - center
    return v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)


@dataclass
class ZeroShot:
    model: object  # EmbeddingModel
    codebooks: list
    protos: Prototypes  # vectors centred
    center: np.ndarray  # mean raw prototype vector
    coef: np.ndarray  # logistic weights for FEATURES
    intercept: float
    keyword_coder: object  # KeywordCoder of the same codebooks, built once

    @classmethod
    def fit(cls, model, codebooks) -> ZeroShot:
        """The leave-one-out fit on the codebook's examples. Its two figures are kept in the
        fitted-model cache under the features and labels they were fitted on (fit_cache.py),
        so a process whose codebooks and model did not change skips scikit-learn altogether
        (its import alone is about 2 s of the sample's run)."""
        from pipeline.core.coding.matcher import coder_for
        from pipeline.core.suggest import fit_cache

        require_examples(codebooks)
        coder = coder_for(codebooks)
        protos = build_prototypes(codebooks, model)
        center = protos.vectors.mean(axis=0)
        protos.vectors = centred(protos.vectors, center)
        ex = np.flatnonzero(np.array(protos.kinds) == "example")
        exclude = np.zeros((len(ex), len(protos.texts)), dtype=bool)
        exclude[np.arange(len(ex)), ex] = True
        best, top3 = code_similarity(protos.vectors[ex], protos, exclude)
        texts = [protos.texts[i] for i in ex]
        kw = keyword_matrix(texts, coder, protos)
        x = unit_features(best, top3, kw)
        y = np.zeros((len(ex), len(protos.codes)), dtype=int)
        y[np.arange(len(ex)), protos.code_of[ex]] = 1
        y = y.ravel()
        key = "zero-shot-" + fit_cache.fit_key(x, y, ZERO_SHOT_FIT)
        stored = fit_cache.load(key)
        if stored is None or stored.get("coef", np.empty(0)).shape != (x.shape[1],) \
                or stored.get("intercept", np.empty(0)).shape != (1,):
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(C=FIT_C, max_iter=FIT_MAX_ITER).fit(x, y)
            stored = {"coef": np.asarray(clf.coef_[0], dtype=np.float64),
                      "intercept": np.asarray(clf.intercept_, dtype=np.float64)}
            fit_cache.store(key, stored)
        return cls(model, codebooks, protos, center, stored["coef"],
                   float(stored["intercept"][0]), coder)

    @property
    def sha256(self) -> str:
        """The model's (with the codebooks' versions, what keys the suggestions it makes)."""
        return self.model.sha256

    def fitted(self) -> ZeroShot:
        """Itself (stage.ZeroShotOnDemand fits when asked; both serve stage's functions)."""
        return self

    def unit_probabilities(self, answers: pd.DataFrame, id_column: str, text_column: str,
                           units: pd.DataFrame | None = None):
        """Units of the answers and their (n_units, n_codes) probabilities. `units`: the
        answers' units_frame, when the caller has it already."""
        if units is None:
            units = units_frame(answers, id_column, text_column)
        vecs = centred(self.model.embed(units["text"].tolist()), self.center)
        best, top3 = code_similarity(vecs, self.protos)
        texts = answers[text_column].fillna("").astype(str).tolist()
        kw_answer = keyword_matrix(texts, self.keyword_coder, self.protos)
        pos = {a: i for i, a in enumerate(answers[id_column])}
        kw = kw_answer[[pos[a] for a in units["id"]]] if len(units) else kw_answer[:0]
        z = unit_features(best, top3, kw) @ self.coef + self.intercept
        probs = (1.0 / (1.0 + np.exp(-z))).reshape(best.shape)
        return units, probs

    def probabilities(self, answers: pd.DataFrame, id_column: str, text_column: str,
                      units: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Per answer (in `answers` order): (n_answers, n_codes) probabilities and the unit row
        that carries each. Also returns the units frame (`units`, when given: the answers'
        units_frame)."""
        units, probs = self.unit_probabilities(answers, id_column, text_column, units)
        return best_units(answers[id_column], units, probs)


TIE = 1e-6  # the similarities are float32 (about 7 significant digits)


def best_units(ids, units: pd.DataFrame, probs: np.ndarray):
    """Max over each answer's units: (units, answer probs, index of the carrying unit row)."""
    ids = list(ids)
    n_codes = probs.shape[1]
    out = np.zeros((len(ids), n_codes), dtype=np.float64)
    carrier = np.full((len(ids), n_codes), -1, dtype=np.int64)
    if len(units):
        answer_idx = pd.Index(ids).get_indexer(units["id"])
        order = np.argsort(answer_idx, kind="stable")
        a_sorted = answer_idx[order]
        starts = np.flatnonzero(np.r_[True, a_sorted[1:] != a_sorted[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends, strict=True):
            rows = order[s:e]
            block = probs[rows]
            # the first unit within TIE of the best: identical sentences repeated in one
            # answer tie, and which of them comes out a hair ahead depends on the rows
            # multiplied beside them (BLAS blocking), so the plain argmax made the evidence
            # span depend on which answers were suggested together
            arg = (block >= block.max(axis=0) - TIE).argmax(axis=0)
            out[a_sorted[s]] = block[arg, np.arange(n_codes)]
            carrier[a_sorted[s]] = rows[arg]
    return units, out, carrier
