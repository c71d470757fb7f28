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
20,000 synthetic answers; docs/benchmarks.md, "The per-code fits"); they are the same from
run to run for the same arrays, whatever the number of cores (`_shares`).

One fit (or `products`) at a time per process: they set the BLAS thread limit, which is the
whole process's (threadpoolctl), so two overlapping calls in two threads would restore it out
of order. The pipeline's steps run one at a time in a process.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.core.parallel import MAX_WORKERS, cores, in_map

SHARE_COLUMNS = 48   # codes per matrix product: the shares are the same on any machine


def scipy_version() -> str:
    """scipy's version from its metadata (the fit cache's key; no import of scipy needed)."""
    from importlib.metadata import version

    return version("scipy")


def _shares(k: int) -> list[np.ndarray]:
    """Column positions 0..k-1 in contiguous shares of SHARE_COLUMNS. BLAS's figures for a
    column can depend on the columns multiplied with it (its kernels handle the last few
    columns another way), so the shares, unlike the threads that compute them, must not
    depend on the number of cores. 48: two shares for ~90 codes, one per core here; smaller
    shares read the features more often (16 columns: ~1.5x the time per product)."""
    return [np.arange(i, min(i + SHARE_COLUMNS, k)) for i in range(0, k, SHARE_COLUMNS)]


def _threads() -> int:
    """One per core, at most MAX_WORKERS; one in a map_forked worker (its siblings use the
    others)."""
    return 1 if in_map() else max(1, min(MAX_WORKERS, cores()))


def _over_shares(k: int, threads: int, func) -> list:
    """func(share) for each share of k columns (_shares), the shares on at most `threads`
    threads, in order."""
    parts = _shares(k)
    if len(parts) <= 1:
        return [func(part) for part in parts]
    with ThreadPoolExecutor(max_workers=min(len(parts), threads)) as pool:
        return list(pool.map(func, parts))


def products(left: np.ndarray, right: np.ndarray, threads: int | None = None) -> np.ndarray:
    """left @ right, right's columns in fixed shares (_shares) computed by threads (at most
    four, one per core), each with one BLAS thread: the same figures on any number of cores
    (tests/test_batched_fit.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        if right.shape[1] <= SHARE_COLUMNS:
            return left @ right
        return np.hstack(_over_shares(right.shape[1], threads or _threads(),
                                      lambda cols: left @ np.ascontiguousarray(right[:, cols])))


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
            if self.failure is not None:
                raise self.failure
            self.pending[code] = np.array(point, dtype=np.float64)
            mine = self.round
            self._maybe_compute()
            while self.round == mine:
                self.cond.wait()
            if self.failure is not None:
                raise self.failure   # in every code's thread: the fit raises it
            return self.results.pop(code)

    def abort(self, exc: BaseException, missing: int) -> None:
        """`missing` codes will never run (their threads could not start): the others stop."""
        with self.cond:
            self.failure = self.failure or exc
            self.live -= missing
            self.pending = {}
            self.round += 1
            self.cond.notify_all()

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
        """Every pending point's loss and gradient, the codes shared between threads."""
        codes = sorted(pending)
        shares = _over_shares(len(codes), self.threads,
                              lambda part: self._share([codes[i] for i in part], pending))
        return {c: result for share in shares for c, result in share.items()}

    def _share(self, codes: list[int], pending: dict[int, np.ndarray]
               ) -> dict[int, tuple[float, np.ndarray]]:
        """scikit-learn's LinearModelLoss.loss_gradient for these codes' points, its two
        matrix-vector products made two matrix-matrix ones (one BLAS thread: the caller's)."""
        n, d = self.x.shape
        points = np.stack([pending[c] for c in codes], axis=1)          # (d + 1, k)
        weights, intercepts = points[:d], points[d]
        raw = self.x @ weights                                 # (n, k)
        raw += intercepts
        pointwise = np.empty((n, len(codes)), dtype=np.float64, order="F")
        losses = []
        for j, c in enumerate(codes):
            loss, grad = self.loss.loss_gradient(
                y_true=self.targets[:, c], raw_prediction=np.ascontiguousarray(raw[:, j]),
                sample_weight=None, n_threads=1)
            losses.append(float(loss.sum() / n))
            pointwise[:, j] = grad / n
        x_grad = self.x.T @ pointwise                          # (d, k)
        out = {}
        for j, c in enumerate(codes):
            w = weights[:, j]
            gradient = np.empty(d + 1, dtype=np.float64)
            gradient[:d] = x_grad[:, j] + self.l2 * w
            gradient[d] = pointwise[:, j].sum()
            out[c] = (losses[j] + 0.5 * self.l2 * float(w @ w), gradient)
        return out


def logistic_model(c: float, max_iter: int, tol: float, classes: np.ndarray, coef: np.ndarray,
                   intercept: np.ndarray, n_iter: int, n_features: int):
    """A fitted binary `LogisticRegression` from its figures (what `fit` would have set)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=max_iter, tol=tol)
    model.classes_ = np.array(classes).copy()
    model.coef_ = np.array(coef, dtype=np.float64).reshape(1, n_features).copy()
    model.intercept_ = np.array(intercept, dtype=np.float64).reshape(1).copy()
    model.n_iter_ = np.array([n_iter], dtype=np.int32)
    model.n_features_in_ = n_features
    return model


def fit_logistic_columns(x: np.ndarray, y: np.ndarray, columns: list[int], c: float,
                         max_iter: int, tol: float = 1e-4) -> dict[int, object]:
    """One fitted `LogisticRegression(C=c, max_iter=max_iter)` per column of y in `columns`
    (0/1 labels with both classes present), as scikit-learn's lbfgs solver fits it."""
    from scipy import optimize
    from threadpoolctl import threadpool_limits

    columns = [int(col) for col in columns]
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns repeat: {columns}")
    if not columns:
        return {}
    x = np.ascontiguousarray(x, dtype=np.float64)
    n, d = x.shape
    if not np.isfinite(x).all():
        raise ValueError("the features hold NaN or infinite values")
    for col in columns:   # scikit-learn's own refusal of a one-class problem
        if len(np.unique(y[:, col])) != 2:
            raise ValueError(f"column {col} of the labels needs two classes (0 and 1)")
    targets = np.asfortranarray(y, dtype=np.float64)
    rounds = _Rounds(x, targets, 1.0 / (c * n), len(columns), _threads())

    def fit_one(code: int):
        try:
            return optimize.minimize(
                lambda w: rounds.evaluate(code, w), np.zeros(d + 1), method="L-BFGS-B",
                jac=True, options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                                   "ftol": 64 * np.finfo(float).eps})
        finally:
            rounds.finished()

    # every code needs its own thread at once (a round waits for all of them); if one cannot
    # start, the started ones are stopped instead of waiting for it forever
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=len(columns)) as pool:
        futures = []
        try:
            for col in columns:
                futures.append(pool.submit(fit_one, col))
        except BaseException as exc:
            rounds.abort(exc, len(columns) - len(futures))
            raise
        results = [future.result() for future in futures]
    models = {}
    for code, res in zip(columns, results, strict=True):
        if res.status != 0:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"lbfgs failed to converge for code column {code} "
                          f"({res.message})", ConvergenceWarning, stacklevel=2)
        models[code] = logistic_model(c, max_iter, tol, np.unique(y[:, code]), res.x[:d],
                                      res.x[d:], min(res.nit, max_iter), d)
    return models
