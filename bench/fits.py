"""Benchmark: the trained suggester's per-code logistic fits one by one (scikit-learn, one
fit per core at a time: the baseline) against side by side (pipeline/core/suggest/batched_fit.py),
in one process.

    .venv/bin/python bench/fits.py [--n 20000] [--repeats 3] [--noise 0.15]

Features as the pipeline builds them (`suggester.scored`: the zero-shot probability of every
code and the mean embedding of the answer's units, ~475 columns) for --n synthetic answers
(`tools.sample.synth.synthetic_answer_texts`, seed 0). Labels: the keyword coder's codes with
human-like noise (each positive dropped with probability --noise, a random positive added with
probability 0.003 per code; the keyword codes alone are nearly separable, which real human
codes are not). The codes fitted are those TrainedSuggester.fit fits (at least MIN_POSITIVES
positives and negatives).

- baseline: `LogisticRegression(C, max_iter).fit(x, y[:, c])` per code, one BLAS thread per
  fit, the fits in one thread per core (what TrainedSuggester.fit did until stop 30);
- batched: `batched_fit.fit_logistic_columns(x, y, codes, C, max_iter)`.

The two alternate, --repeats times each; the fitted-model cache is not involved. Prints the
median seconds of each, their ratio, and how far the two agree: iteration counts, the largest
difference of a probability on the training answers, and how many probabilities differ once
rounded to 4 decimals (as coding.suggestions stores them). Last line:
`answers=... codes=... baseline_s=... batched_s=... speedup=... max_abs_dp=... round4_differ=...`
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def features(n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    from pipeline.core.coding.codebook import load_codebooks
    from pipeline.core.coding.matcher import KeywordCoder
    from pipeline.core.suggest.model import EmbeddingModel
    from pipeline.core.suggest.suggester import scored
    from pipeline.core.suggest.trained import label_matrix
    from pipeline.core.suggest.zero_shot import ZeroShot
    from tools.sample.synth import synthetic_answer_texts

    texts = synthetic_answer_texts(n, seed=0)
    frame = pd.DataFrame({"id": [f"a{i}" for i in range(len(texts))], "text": texts})
    books = load_codebooks(ROOT / "codebooks")
    codes = KeywordCoder(books).code_frame(frame, "id", "text").rename(columns={"id": "answer_id"})
    zs = ZeroShot.fit(EmbeddingModel.load(), books)
    _, _, _, x = scored(zs, frame, "id", "text")
    y = label_matrix(frame["id"], codes, [c.code_id for c in zs.protos.codes])
    rng = np.random.default_rng(1)
    y[(y == 1) & (rng.random(y.shape) < noise)] = 0
    y[rng.random(y.shape) < 0.003] = 1
    return x, y


def baseline(x: np.ndarray, y: np.ndarray, codes: list[int]) -> dict[int, object]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from pipeline.core.parallel import cores
    from pipeline.core.suggest.trained import MAX_ITER, C

    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=max(1, min(4, cores()))) as pool:
        fitted = pool.map(lambda c: LogisticRegression(C=C, max_iter=MAX_ITER).fit(x, y[:, c]),
                          codes)
        return dict(zip(codes, fitted, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="synthetic answers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.15)
    args = ap.parse_args()

    from pipeline.core.suggest.batched_fit import fit_logistic_columns
    from pipeline.core.suggest.trained import MAX_ITER, MIN_POSITIVES, C

    t0 = time.perf_counter()
    x, y = features(args.n, args.noise)
    codes = [c for c in range(y.shape[1])
             if MIN_POSITIVES <= int(y[:, c].sum()) <= len(y) - MIN_POSITIVES]
    print(f"features: {x.shape[0]:,} answers x {x.shape[1]} in {time.perf_counter() - t0:.1f} s;"
          f" {len(codes)} codes fitted; load average {os.getloadavg()[0]:.1f}")
    times: dict[str, list[float]] = {"baseline": [], "batched": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        old = baseline(x, y, codes)
        times["baseline"].append(time.perf_counter() - t)
        t = time.perf_counter()
        new = fit_logistic_columns(x, y, codes, C, MAX_ITER)
        times["batched"].append(time.perf_counter() - t)
        print(f"  baseline {times['baseline'][-1]:.2f} s, batched {times['batched'][-1]:.2f} s")
    same_iters = sum(old[c].n_iter_[0] == new[c].n_iter_[0] for c in codes)
    p_old = np.column_stack([old[c].predict_proba(x)[:, 1] for c in codes])
    p_new = np.column_stack([new[c].predict_proba(x)[:, 1] for c in codes])
    max_dp = float(np.abs(p_old - p_new).max())
    differ = int((np.round(p_old, 4) != np.round(p_new, 4)).sum())
    b, n = statistics.median(times["baseline"]), statistics.median(times["batched"])
    print(f"same iteration count: {same_iters} of {len(codes)} codes; "
          f"most iterations {max(int(old[c].n_iter_[0]) for c in codes)}")
    print(f"answers={x.shape[0]} codes={len(codes)} baseline_s={b:.2f} batched_s={n:.2f} "
          f"speedup={b / n:.2f} max_abs_dp={max_dp:.1e} round4_differ={differ}")


if __name__ == "__main__":
    main()
