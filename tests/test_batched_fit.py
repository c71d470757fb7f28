"""The per-code logistic fits run side by side (pipeline/core/suggest/batched_fit.py) are
scikit-learn's own fits, to the last bits of a matrix product."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pipeline.core.suggest import batched_fit
from pipeline.core.suggest.batched_fit import fit_logistic_columns, products


def _within(seconds: float, func):
    """func() in a thread: its result or exception, or a failure (not a hung suite) if it
    has not returned after `seconds`."""
    import threading

    out: dict = {}

    def run():
        try:
            out["value"] = func()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: the fits wait forever"
    if "error" in out:
        raise out["error"]
    return out["value"]


def _problem(seed: int = 3, n: int = 600, d: int = 20, k: int = 6):
    rng = np.random.default_rng(seed)
    x = np.hstack([rng.random((n, 3)), rng.standard_normal((n, d - 3)) * 0.1])
    true = rng.standard_normal((d, k)) * 3
    y = (rng.random((n, k)) < 1 / (1 + np.exp(-(x @ true - 1.5)))).astype(np.int64)
    return x, y


def test_each_column_is_the_fit_scikit_learn_gives_alone():
    x, y = _problem()
    columns = [0, 2, 3, 5]
    models = fit_logistic_columns(x, y, columns, c=1.0, max_iter=2000)
    assert sorted(models) == columns
    for col in columns:
        alone = LogisticRegression(C=1.0, max_iter=2000).fit(x, y[:, col])
        ours = models[col]
        assert ours.n_iter_[0] == alone.n_iter_[0]  # the same optimisation, step for step
        np.testing.assert_allclose(ours.coef_, alone.coef_, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.intercept_, alone.intercept_, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.predict_proba(x), alone.predict_proba(x), rtol=0,
                                   atol=1e-10)
        assert list(ours.classes_) == [0, 1] and ours.n_features_in_ == x.shape[1]


def test_the_same_arrays_fit_the_same_bits_on_any_number_of_cores(monkeypatch):
    x, y = _problem(4, k=60)
    y[:, :30] = y[:, 30:]  # 60 codes: two shares of columns
    columns = [c for c in range(60) if 5 <= y[:, c].sum() <= len(y) - 5]
    assert len(columns) > batched_fit.SHARE_COLUMNS
    fitted = {}
    for threads in (1, 2, 4):
        monkeypatch.setattr(batched_fit, "_threads", lambda threads=threads: threads)
        models = fit_logistic_columns(x, y, columns, c=1.0, max_iter=2000)
        fitted[threads] = b"".join(models[c].coef_.tobytes() + models[c].intercept_.tobytes()
                                   for c in columns)
    assert fitted[1] == fitted[2] == fitted[4]


def test_products_do_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(5)
    left, right = rng.standard_normal((3000, 40)), rng.standard_normal((40, 101))
    one = products(left, right, threads=1)
    assert one.tobytes() == products(left, right, threads=2).tobytes() == \
        products(left, right, threads=4).tobytes()
    np.testing.assert_allclose(one, left @ right, rtol=1e-12, atol=1e-12)


def test_no_columns_fits_nothing():
    x, y = _problem()
    assert fit_logistic_columns(x, y, [], c=1.0, max_iter=100) == {}


def test_an_optimisation_stopped_by_max_iter_warns_as_scikit_learn_does():
    x, y = _problem()
    with pytest.warns(ConvergenceWarning, match="column 1"):
        models = fit_logistic_columns(x, y, [1], c=1.0, max_iter=2)
    with pytest.warns(ConvergenceWarning):
        alone = LogisticRegression(C=1.0, max_iter=2).fit(x, y[:, 1])
    assert models[1].n_iter_[0] == alone.n_iter_[0] == 2
    np.testing.assert_allclose(models[1].coef_, alone.coef_, rtol=0, atol=1e-12)


def test_a_failed_shared_evaluation_raises_in_every_fit_instead_of_hanging(monkeypatch):
    x, y = _problem()
    calls = []

    def broken(self, pending):
        calls.append(len(pending))
        if len(calls) == 3:   # a later round, not the first
            raise MemoryError("no room for the products")
        return real(self, pending)

    real = batched_fit._Rounds._compute
    monkeypatch.setattr(batched_fit._Rounds, "_compute", broken)
    with pytest.raises(MemoryError, match="no room"):
        _within(60, lambda: fit_logistic_columns(x, y, [0, 1, 2], c=1.0, max_iter=50))


def test_a_code_whose_thread_cannot_start_stops_the_others(monkeypatch):
    x, y = _problem()
    real_submit = batched_fit.ThreadPoolExecutor.submit
    submitted = []

    def submit(self, fn, *args, **kwargs):
        if fn.__name__ == "fit_one" and len(submitted) == 2:
            raise RuntimeError("can't start new thread")
        submitted.append(args)
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(batched_fit.ThreadPoolExecutor, "submit", submit)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        _within(60, lambda: fit_logistic_columns(x, y, [0, 1, 2, 3], c=1.0, max_iter=50))


def test_columns_repeated_or_with_one_class_or_features_not_finite_are_refused():
    x, y = _problem()
    with pytest.raises(ValueError, match="repeat"):
        _within(60, lambda: fit_logistic_columns(x, y, [1, 1], c=1.0, max_iter=50))
    y_one = y.copy()
    y_one[:, 2] = 0
    with pytest.raises(ValueError, match="column 2 .* two classes"):
        fit_logistic_columns(x, y_one, [1, 2], c=1.0, max_iter=50)
    x_nan = x.copy()
    x_nan[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_logistic_columns(x_nan, y, [1], c=1.0, max_iter=50)


def test_more_codes_than_one_share_are_each_scikit_learn_s_fit():
    x, y = _problem(8, n=500, d=12, k=batched_fit.SHARE_COLUMNS + 12)  # two shares
    columns = [c for c in range(y.shape[1]) if 5 <= y[:, c].sum() <= len(y) - 5]
    assert len(columns) > batched_fit.SHARE_COLUMNS
    models = _within(300, lambda: fit_logistic_columns(x, y, columns, c=1.0, max_iter=2000))
    for col in columns:
        alone = LogisticRegression(C=1.0, max_iter=2000).fit(x, y[:, col])
        assert models[col].n_iter_[0] == alone.n_iter_[0]
        np.testing.assert_allclose(models[col].predict_proba(x), alone.predict_proba(x),
                                   rtol=0, atol=1e-10)


def test_the_trained_suggester_predicts_what_each_model_s_predict_proba_gives(tmp_path,
                                                                            monkeypatch):
    from pipeline.core.suggest.trained import TrainedSuggester

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    x, y = _problem(7, k=4)
    y[:, 2] = 0  # no positives: no model, the zero-shot figure stays
    zero_shot = np.full((len(x), 4), 0.25)
    trained = TrainedSuggester.fit(x, y)
    probs, mask = trained.predict(x, zero_shot)
    assert mask.tolist() == [c in trained.models for c in range(4)] and len(trained.models) >= 2
    assert not mask[2] and (probs[:, 2] == 0.25).all()
    for c in trained.models:
        np.testing.assert_allclose(probs[:, c], trained.models[c].predict_proba(x)[:, 1],
                                   rtol=0, atol=1e-12)
