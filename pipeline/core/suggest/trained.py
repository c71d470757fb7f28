"""Trained suggestions: one logistic model per code, fitted on what the humans decided.

Features of an answer: the zero-shot probability of every code (which already folds in the
keyword coder's evidence and the similarity to the codebook) and the mean embedding of its units.
Labels: the answer's final human codes (`coding.final_codes`, agreed or adjudicated). A code with
fewer than MIN_POSITIVES positive (or negative) answers keeps its zero-shot probability; the
`source` column says which. Logistic regression is fitted by log-loss, so its probabilities are
calibrated on the training answers; `cross_validated` measures them honestly (grouped folds: an
answer, and where grouped a school or a school year, is never in both train and test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.suggest.batched_fit import (
    SHARE_COLUMNS,
    fit_logistic_columns,
    logistic_model,
    products,
    scipy_version,
)

MIN_POSITIVES = 5
C, MAX_ITER, TOL = 1.0, 2000, 1e-4   # TOL: scikit-learn's default, as before
# what the coefficients depend on besides x and y (fit_cache.py adds scikit-learn's version):
# the batching's shares change their last bits, and scipy's L-BFGS-B is called directly
FIT_SETTINGS = f"LogisticRegression(C={C}, max_iter={MAX_ITER}) per code, " \
    f"min_positives={MIN_POSITIVES}, batched_fit v1 shares of {SHARE_COLUMNS}, " \
    f"scipy {scipy_version()}"


def _arrays(models: dict, n_features: int) -> dict[str, np.ndarray]:
    codes = sorted(models)
    return {
        "codes": np.array(codes, dtype=np.int64),
        "coef": np.array([models[c].coef_[0] for c in codes], dtype=np.float64).reshape(
            len(codes), n_features),
        "intercept": np.array([models[c].intercept_[0] for c in codes], dtype=np.float64),
        "n_iter": np.array([models[c].n_iter_[0] for c in codes], dtype=np.int64),
        "classes": np.array([models[c].classes_ for c in codes], dtype=np.int64).reshape(
            len(codes), 2),
    }


def _rebuild(arrays: dict[str, np.ndarray], n_features: int) -> dict | None:
    """The fitted classifiers again, from their stored coefficients (None: not this shape)."""
    codes, coef = arrays.get("codes"), arrays.get("coef")
    if codes is None or coef is None or coef.shape != (len(codes), n_features):
        return None
    models = {}
    for i, c in enumerate(codes.tolist()):
        models[int(c)] = logistic_model(C, MAX_ITER, TOL, arrays["classes"][i],
                                        coef[i], arrays["intercept"][i : i + 1],
                                        int(arrays["n_iter"][i]), n_features)
    return models


def answer_features(zero_shot_probs: np.ndarray, units: pd.DataFrame, unit_vectors: np.ndarray,
                    ids) -> np.ndarray:
    """(n_answers, n_codes + dim): zero-shot probabilities and the mean unit embedding."""
    ids = list(ids)
    dim = unit_vectors.shape[1] if unit_vectors.ndim == 2 else 0
    mean = np.zeros((len(ids), dim), dtype=np.float64)
    if len(units):
        idx = pd.Index(ids).get_indexer(units["id"])
        keep = idx >= 0
        rows = idx[keep]
        by_dim = np.ascontiguousarray(unit_vectors[keep].T)  # one row per dimension
        # per dimension, bincount adds each unit's value into its answer's sum in unit order,
        # in float64, from 0: the bits np.add.at gave, at a fraction of its time
        sums = np.empty((dim, len(ids)), dtype=np.float64)
        for j in range(dim):
            sums[j] = np.bincount(rows, weights=by_dim[j], minlength=len(ids))
        mean = sums.T
        counts = np.bincount(rows, minlength=len(ids)).astype(np.float64)
        mean /= np.clip(counts, 1, None)[:, None]
    return np.hstack([zero_shot_probs, mean])


@dataclass
class TrainedSuggester:
    models: dict[int, object]  # code index -> fitted classifier
    n_codes: int
    rule: object = None  # the SelectionRule chosen on held-out predictions (suggester.train)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> TrainedSuggester:
        """One model per code with enough positives and negatives. The same (x, y) fitted
        before, by any run, is rebuilt from the stored coefficients (fit_cache.py)."""
        from pipeline.core.suggest import fit_cache

        key = fit_cache.fit_key(x, y, FIT_SETTINGS)
        stored = fit_cache.load(key)
        if stored is not None:
            rebuilt = _rebuild(stored, x.shape[1])
            if rebuilt is not None:
                return cls(rebuilt, y.shape[1])
        # One L-BFGS optimisation per code with enough positives and negatives, exactly as
        # scikit-learn runs it, the codes side by side so that each pass over x serves every
        # code at once (batched_fit.py: about 3x faster than the fits one by one, two at a
        # time; the same iterations, probabilities within ~1e-12 of scikit-learn's own fits)
        fitted = [c for c in range(y.shape[1])
                  if MIN_POSITIVES <= int(y[:, c].sum()) <= len(y) - MIN_POSITIVES]
        models = fit_logistic_columns(x, y, fitted, C, MAX_ITER, TOL)
        fit_cache.store(key, _arrays(models, x.shape[1]))
        return cls(models, y.shape[1])

    def predict(self, x: np.ndarray, zero_shot_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, trained mask): codes without a model keep the zero-shot figure."""
        probs = zero_shot_probs.astype(np.float64).copy()
        trained = np.zeros(self.n_codes, dtype=bool)
        codes = sorted(self.models)
        if codes:
            # what predict_proba gives, expit(x @ coef + intercept), for every code in one
            # matrix product instead of one pass over x per code
            from scipy.special import expit

            coef = np.vstack([self.models[c].coef_ for c in codes]).T
            intercept = np.concatenate([self.models[c].intercept_ for c in codes])
            probs[:, codes] = expit(products(np.ascontiguousarray(x, dtype=np.float64), coef)
                                    + intercept)
            trained[codes] = True
        return probs, trained


def label_matrix(ids, final_codes: pd.DataFrame, code_ids: list[str]) -> np.ndarray:
    """(n_answers, n_codes) 0/1 from final codes (answer_id, code_id)."""
    row = {a: i for i, a in enumerate(ids)}
    col = {c: j for j, c in enumerate(code_ids)}
    y = np.zeros((len(row), len(col)), dtype=np.int64)
    for a, c in zip(final_codes["answer_id"], final_codes["code_id"], strict=True):
        if a in row and c in col:
            y[row[a], col[c]] = 1
    return y


def grouped_splits(groups, n_splits: int = 5):
    """Folds that keep each group whole: (train index, test index) pairs."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    groups = np.asarray(groups)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        return []
    splitter = GroupKFold(n_splits=min(n_splits, n_groups)) if n_groups > n_splits else \
        LeaveOneGroupOut()
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def cross_validated(x: np.ndarray, y: np.ndarray, zero_shot_probs: np.ndarray, groups,
                    n_splits: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities for every answer, and the fold each answer was tested in (-1 for
    none). Each answer is predicted by a model that never saw it nor its group."""
    probs = zero_shot_probs.astype(np.float64).copy()
    fold_of = np.full(len(y), -1, dtype=np.int64)
    for k, (train, test) in enumerate(grouped_splits(groups, n_splits)):
        model = TrainedSuggester.fit(x[train], y[train])
        probs[test], _ = model.predict(x[test], zero_shot_probs[test])
        fold_of[test] = k
    return probs, fold_of
