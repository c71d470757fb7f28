"""Many binary logistic regressions on the same features, fitted side by side.

`TrainedSuggester.fit` fits one L2 logistic regression per code on the same (answers x ~475)
matrix x. Fitted one at a time, every function evaluation of every code reads all of x twice
(x @ w, then x.T @ gradient): two matrix-vector products bound by memory bandwidth, about
90 codes x 20-30 evaluations x 2 passes over 76 MB for 20,000 training answers.

Here each code still runs exactly the optimisation scikit-learn's
`LogisticRegression(solver="lbfgs")` runs: `scipy.optimize.minimize(method="L-BFGS-B")` from
zeros, with scikit-learn's loss (`HalfBinomialLoss`, mean over answers, penalty
1 / (2 C n) |w|^2, unpenalised intercept), its options (maxiter, maxls=50, gtol=tol,
ftol=64 eps) and its stopping rule. Only the two products are shared: each code's optimiser
runs in its own thread and hands its point to a `_Rounds` object, which waits until every code
still running has done so, then computes all their raw predictions in one matrix-matrix
product (x @ W) and all their gradients in another (G @ x), reading x twice per round instead
of twice per code.

A matrix-matrix product adds in another order than a matrix-vector one, so the coefficients
differ from scikit-learn's in the last bits (|difference| ~1e-12 in the probabilities on
20,000 synthetic answers; docs/benchmarks.md, Stop 30); they are the same from run to run for the
same arrays, whatever the number of cores and whichever codes are fitted beside (`products`).
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.core.parallel import cores


def products(left: np.ndarray, right: np.ndarray, threads: int | None = None) -> np.ndarray:
    """left @ right, right's columns split between threads (at most four, one per core), each
    product with one BLAS thread, and always as a matrix-matrix product (a single column is
    computed twice over: numpy would hand it to a matrix-vector product, which adds in another
    order). So a column's figures do not depend on which columns come with it nor on the
    number of cores (tests/test_batched_fit.py)."""
    from threadpoolctl import threadpool_limits

    threads = threads or max(1, min(4, cores()))
    parts = np.array_split(np.arange(right.shape[1]), min(threads, max(1, right.shape[1])))

    def part(cols: np.ndarray) -> np.ndarray:
        if len(cols) == 1:
            return (left @ right[:, [cols[0], cols[0]]])[:, :1]
        return left @ right[:, cols]

    with threadpool_limits(limits=1, user_api="blas"):
        if len(parts) == 1:
            return part(parts[0])
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            return np.hstack(list(pool.map(part, parts)))


class _Rounds:
    """The shared evaluations: `evaluate(code, point)` blocks until every code still running
    has handed in its point, then returns that code's (loss, gradient)."""

    def __init__(self, x: np.ndarray, targets: np.ndarray, l2: float, live: int, threads: int):
        from sklearn._loss.loss import HalfBinomialLoss

        self.x, self.targets, self.l2 = x, targets, l2
        self.loss = HalfBinomialLoss()
        self.live, self.threads = live, threads
        self.pending: dict[int, np.ndarray] = {}
        self.results: dict[int, tuple[float, np.ndarray]] = {}
        self.failure: BaseException | None = None
        self.round = 0
        self.cond = threading.Condition()

    def evaluate(self, code: int, point: np.ndarray) -> tuple[float, np.ndarray]:
        with self.cond:
            self.pending[code] = np.array(point, dtype=np.float64)
            mine = self.round
            self._maybe_compute()
            while self.round == mine:
                self.cond.wait()
            if self.failure is not None:
                raise RuntimeError("a shared evaluation failed") from self.failure
            return self.results.pop(code)

    def finished(self) -> None:
        with self.cond:
            self.live -= 1
            self._maybe_compute()

    def _maybe_compute(self) -> None:
        """Called with the lock held: the round is complete when every live code is in."""
        if not self.pending or len(self.pending) < self.live:
            return
        try:
            self.results.update(self._compute(self.pending))
        except BaseException as exc:  # every waiting thread raises it
            self.failure = exc
        self.pending = {}
        self.round += 1
        self.cond.notify_all()

    def _compute(self, pending: dict[int, np.ndarray]) -> dict[int, tuple[float, np.ndarray]]:
        codes = sorted(pending)
        n, d = self.x.shape
        points = np.stack([pending[c] for c in codes], axis=1)          # (d + 1, k)
        weights, intercepts = points[:d], points[d]
        raw = products(self.x, weights, self.threads)                           # (n, k)
        raw += intercepts
        pointwise = np.empty((len(codes), n), dtype=np.float64)
        losses = []
        for j, c in enumerate(codes):
            loss, grad = self.loss.loss_gradient(
                y_true=self.targets[:, c], raw_prediction=np.ascontiguousarray(raw[:, j]),
                sample_weight=None, n_threads=1)
            losses.append(float(loss.sum() / n))
            pointwise[j] = grad / n
        x_grad = products(self.x.T, pointwise.T, self.threads)                  # (d, k)
        out = {}
        for j, c in enumerate(codes):
            w = weights[:, j]
            gradient = np.empty(d + 1, dtype=np.float64)
            gradient[:d] = x_grad[:, j] + self.l2 * w
            gradient[d] = pointwise[j].sum()
            out[c] = (losses[j] + 0.5 * self.l2 * float(w @ w), gradient)
        return out


def fit_logistic_columns(x: np.ndarray, y: np.ndarray, columns: list[int], c: float,
                         max_iter: int, tol: float = 1e-4) -> dict[int, object]:
    """One fitted `LogisticRegression(C=c, max_iter=max_iter)` per column of y in `columns`
    (0/1 labels with both classes present), as scikit-learn's lbfgs solver fits it."""
    from scipy import optimize
    from sklearn.linear_model import LogisticRegression

    if not columns:
        return {}
    x = np.ascontiguousarray(x, dtype=np.float64)
    n, d = x.shape
    targets = np.asfortranarray(y, dtype=np.float64)
    threads = max(1, min(4, cores()))
    rounds = _Rounds(x, targets, 1.0 / (c * n), len(columns), threads)

    def fit_one(code: int):
        try:
            return optimize.minimize(
                lambda w: rounds.evaluate(code, w), np.zeros(d + 1), method="L-BFGS-B",
                jac=True, options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                                   "ftol": 64 * np.finfo(float).eps})
        finally:
            rounds.finished()

    with ThreadPoolExecutor(max_workers=len(columns)) as pool:
        results = list(pool.map(fit_one, columns))
    models = {}
    for code, res in zip(columns, results, strict=True):
        if res.status != 0:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"lbfgs failed to converge for code column {code} "
                          f"({res.message})", ConvergenceWarning, stacklevel=2)
        model = LogisticRegression(C=c, max_iter=max_iter)
        model.classes_ = np.array([0, 1], dtype=np.int64)
        model.coef_ = res.x[:d].reshape(1, d).copy()
        model.intercept_ = res.x[d:].copy()
        model.n_iter_ = np.array([min(res.nit, max_iter)], dtype=np.int32)
        model.n_features_in_ = d
        models[code] = model
    return models
