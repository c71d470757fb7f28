"""Benchmark: the zero-shot model's unit-to-code similarities (`prototypes.code_similarity`),
the per-code gather and partition it used until stop 37 (the baseline) against each code's
prototypes as contiguous rows of a prototypes x units product (now), in one process.

    .venv/bin/python bench/similarity.py [--units 200000] [--repeats 3]

The prototypes are the bundled codebooks' (`prototypes.prototype_texts`: every code's
examples, definition, label and keyword phrases, in codebook order), as random unit vectors
of the model's 384 dimensions; the units are --units random unit vectors (the figures depend on
the shapes only). The two alternate, --repeats times each. Prints the median seconds of each,
their ratio and how far they agree: the best similarity must be bit for bit the same; the
top-3 mean is summed in float64 now (float32 before), so it may differ in the last bit. Last
line: `units=... prototypes=... codes=... baseline_s=... current_s=... speedup=...
best_equal=... max_abs_dmean=...`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pipeline.core.coding.codebook import load_codebooks  # noqa: E402
from pipeline.core.suggest import prototypes  # noqa: E402

DIMENSIONS = 384


def baseline(unit_vectors: np.ndarray, protos: prototypes.Prototypes
             ) -> tuple[np.ndarray, np.ndarray]:
    """code_similarity as it was: units x prototypes, then each code's columns gathered and
    partitioned (no leave-one-out mask: the pipeline's answers have none)."""
    n_codes = len(protos.codes)
    best = np.full((len(unit_vectors), n_codes), -1.0, dtype=np.float32)
    topk = np.full_like(best, -1.0)
    columns = [np.flatnonzero(protos.code_of == c) for c in range(n_codes)]
    for start in range(0, len(unit_vectors), prototypes.CHUNK):
        rows = slice(start, start + prototypes.CHUNK)
        sims = unit_vectors[rows] @ protos.vectors.T
        for c, cols in enumerate(columns):
            if not len(cols):
                continue
            block = sims[:, cols]
            k = min(prototypes.TOP_K, len(cols))
            part = -np.partition(-block, k - 1, axis=1)[:, :k]
            best[rows, c] = part.max(axis=1)
            topk[rows, c] = part.mean(axis=1)
    return best, topk


def unit_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    codes, rows = prototypes.prototype_texts(load_codebooks(ROOT / "codebooks"))
    protos = prototypes.Prototypes(
        codes=codes, texts=[t for _, _, t in rows], kinds=[k for _, k, _ in rows],
        code_of=np.array([i for i, _, _ in rows], dtype=np.int64),
        vectors=unit_rows(len(rows), rng))
    units = unit_rows(args.units, rng)
    times: dict[str, list[float]] = {"baseline": [], "current": []}
    for _ in range(args.repeats):
        for name, run in (("baseline", baseline), ("current", prototypes.code_similarity)):
            t0 = time.perf_counter()
            result = run(units, protos)
            times[name].append(time.perf_counter() - t0)
            if name == "baseline":
                old = result
            else:
                new = result
    base, now = (statistics.median(times[k]) for k in ("baseline", "current"))
    best_equal = bool(np.array_equal(old[0], new[0]))
    dmean = float(np.abs(old[1] - new[1]).max())
    for name, values in times.items():
        print(f"{name:<9} median {statistics.median(values):.2f} s over {len(values)} "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print(f"units={args.units} prototypes={len(rows)} codes={len(codes)} baseline_s={base:.2f} "
          f"current_s={now:.2f} speedup={base / now:.1f} best_equal={best_equal} "
          f"max_abs_dmean={dmean:.1e}")
    return 0 if best_equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
