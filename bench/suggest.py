"""Benchmark: meaning-based code suggestions (zero-shot and trained) on synthetic answers.

    .venv/bin/python bench/suggest.py [--n 10000] [--repeats 3] [--distinct-n 1000]

All in one process, with the shipped codebooks (codebooks/) and the installed model:

- load: `EmbeddingModel.load()` (sha256 checks, tokenizer, onnxruntime session) plus
  `ZeroShot.fit` (embedding every prototype of the codebooks and the leave-one-out calibration
  on the codebook's examples). A fresh model per repeat, so nothing is cached between repeats.
- zero-shot: `suggest(zs, answers)` on the --n synthetic answers
  (`tools.sample.synth.synthetic_answer_texts`, seed 0), the path the CLI and the Dagster
  asset use: split into units, embed, compare with the prototypes, keyword coder, logistic
  calibration, selection, suggestion rows.
- trained: per-code logistic models fitted (`suggester.train`) on the first half of the
  answers, labelled with the keyword coder's codes (the synthetic generator keeps no true
  codes), then `suggest(..., trained)` on the other half. The embedding cache is cleared before
  this step, so the training answers' units are embedded again, as in a fresh process.
- distinct text: the synthetic answers repeat a few hundred template sentences, and the model
  embeds each distinct unit once, so synthetic text is far cheaper than real text. The bench
  counts units and distinct units, and embeds --distinct-n answers' units WITHOUT the cache
  (every unit as if it were new), to project the zero-shot time on 10,000 all-distinct answers.

Time is split by instrumenting the run: the embedding model (`_encode`'s wall time: the
tokenizer, the onnxruntime sessions side by side, pooling), the keyword coder (`keyword_matrix`), prototype similarity
(`code_similarity`), the per-code logistic fits (`TrainedSuggester.fit`), and everything else
(splitting, pooling, pandas, predict, selection, rows).
Figures are medians over --repeats; peak memory is the process's max RSS. The last line:
`answers_per_s=... load_s=... peak_mb=...` (zero-shot answers/s without the load, the load
in seconds, the peak in MB).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from pipeline.core.coding.codebook import load_codebooks  # noqa: E402
from pipeline.core.coding.matcher import KeywordCoder  # noqa: E402
from pipeline.core.suggest import zero_shot as zs_mod  # noqa: E402
from pipeline.core.suggest.model import BATCH, EmbeddingModel  # noqa: E402
from pipeline.core.suggest.sentences import units_frame  # noqa: E402
from pipeline.core.suggest.suggester import suggest, train  # noqa: E402
from pipeline.core.suggest.trained import TrainedSuggester  # noqa: E402
from pipeline.core.suggest.zero_shot import ZeroShot  # noqa: E402

TARGET_S, TARGET_MB = 60.0, 1536.0
T_START = time.perf_counter()
CLOCK: dict[str, float] = defaultdict(float)
COUNT: dict[str, int] = defaultdict(int)


def timed_call(name: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CLOCK[name] += time.perf_counter() - t0
    return wrapper


class _Session:
    """onnxruntime session proxy: the token counts of every run (from the sessions' threads)."""

    def __init__(self, session):
        self._s = session

    def run(self, outputs, feeds):
        mask = feeds["attention_mask"]
        with _COUNT_LOCK:
            COUNT["tokens"] += int(mask.sum())
            COUNT["padded_tokens"] += int(mask.size)
            COUNT["units_embedded"] += int(mask.shape[0])
        return self._s.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self._s, name)


_COUNT_LOCK = threading.Lock()
EMBEDDING = "embedding model"   # the encoding's wall time: tokenizer, onnxruntime, pooling


def instrument(model: EmbeddingModel) -> EmbeddingModel:
    """Count the tokens each session runs, and time the model's whole encoding (tokenizer,
    the sessions' runs side by side on threads, pooling) as wall time: per-session times
    would add up the threads' overlapping time."""
    model._sessions = [_Session(s) for s in (model._sessions or [model._session])]
    model._session = model._sessions[0]
    model._encode = timed_call(EMBEDDING, model._encode)
    return model


# the zero-shot module calls these by their module-level names
_fit = TrainedSuggester.fit.__func__
TrainedSuggester.fit = classmethod(lambda cls, x, y: timed_call("logistic fits", _fit)(cls, x, y))
zs_mod.keyword_matrix = timed_call("keyword coder", zs_mod.keyword_matrix)
zs_mod.code_similarity = timed_call("prototype similarity", zs_mod.code_similarity)


def reset() -> None:
    CLOCK.clear()
    COUNT.clear()


def snapshot(total: float) -> dict[str, float]:
    out = dict(CLOCK)
    out["other (split, pooling, pandas, predict, selection, rows)"] = total - sum(CLOCK.values())
    out.update({k: float(v) for k, v in COUNT.items()})
    return out


def one_repeat(books, frame: pd.DataFrame, labels: pd.DataFrame) -> dict:
    reset()
    t0 = time.perf_counter()
    model = instrument(EmbeddingModel.load())
    t_model = time.perf_counter() - t0
    zs = ZeroShot.fit(model, books)
    t_load = time.perf_counter() - t0
    fit_parts = snapshot(t_load - t_model)

    reset()
    t0 = time.perf_counter()
    rows = suggest(zs, frame, "id", "text")
    t_zero = time.perf_counter() - t0
    zero_parts = snapshot(t_zero)

    half = len(frame) // 2
    train_frame, test_frame = frame.iloc[:half], frame.iloc[half:]
    model._cache.clear()  # the training answers' units are embedded again, as in a new process
    reset()
    t0 = time.perf_counter()
    trained = train(zs, train_frame, "id", "text",
                    labels[labels["answer_id"].isin(set(train_frame["id"]))])
    t_fit = time.perf_counter() - t0
    fit_trained_parts = snapshot(t_fit)
    model._cache.clear()
    reset()
    t0 = time.perf_counter()
    trows = suggest(zs, test_frame, "id", "text", trained)
    t_trained = time.perf_counter() - t0
    trained_parts = snapshot(t_trained)
    return {
        "model_s": t_model, "load_s": t_load, "zero_s": t_zero, "fit_s": t_fit,
        "trained_s": t_trained, "rows": len(rows), "trained_rows": len(trows),
        "n_models": len(trained.models), "n_prototypes": len(zs.protos.texts),
        "fit_parts": fit_parts, "zero_parts": zero_parts,
        "fit_trained_parts": fit_trained_parts, "trained_parts": trained_parts,
        "categories": rows.drop_duplicates(["id", "framework", "dimension"]).shape[0],
        "answers_with": rows["id"].nunique(),
        "trained_sources": trows["source"].value_counts().to_dict(),
    }


def median_parts(runs: list[dict], key: str) -> dict[str, float]:
    names = {k for r in runs for k in r[key]}
    return {k: statistics.median(r[key].get(k, 0.0) for r in runs) for k in names}


def print_parts(title: str, parts: dict[str, float], total: float) -> None:
    timing = {k: v for k, v in parts.items()
              if k not in ("tokens", "padded_tokens", "units_embedded")}
    line = ", ".join(f"{k} {v:.1f}s ({100 * v / total:.0f}%)"
                     for k, v in sorted(timing.items(), key=lambda kv: -kv[1]))
    print(f"   {title}: {line}")
    if parts.get("units_embedded"):
        print(f"   {'':{len(title)}}  embedded {parts['units_embedded']:,.0f} units, "
              f"{parts['tokens']:,.0f} tokens ({parts['padded_tokens']:,.0f} with padding); "
              f"model {parts['tokens'] / max(parts.get(EMBEDDING, 1e-9), 1e-9):,.0f} tokens/s")


def distinct_rate(frame: pd.DataFrame, n: int) -> dict:
    """Embed the units of `n` answers with no cache: every unit as if it were new text."""
    model = EmbeddingModel.load()
    units = units_frame(frame.iloc[:n], "id", "text")
    texts = units["text"].tolist()
    enc = model._tokenizer.encode_batch(texts)
    t0 = time.perf_counter()
    model._encode(texts)
    secs = time.perf_counter() - t0
    return {"answers": n, "units": len(texts), "tokens": sum(len(e.ids) for e in enc),
            "seconds": secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="synthetic answers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--distinct-n", type=int, default=1_000,
                    help="answers whose units are embedded with no cache (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from tools.sample.synth import synthetic_answer_texts

    texts = synthetic_answer_texts(args.n, seed=args.seed)
    frame = pd.DataFrame({"id": [f"a{i}" for i in range(len(texts))], "text": texts})
    books = load_codebooks(ROOT / "codebooks")
    labels = (KeywordCoder(books).code_frame(frame, "id", "text")
              .rename(columns={"id": "answer_id"})[["answer_id", "code_id"]])
    units = units_frame(frame, "id", "text")
    n_units, n_distinct = len(units), units["text"].nunique()
    print(f"texts: {len(texts):,} synthetic answers (seed {args.seed}), "
          f"{frame['text'].nunique():,} distinct, mean {statistics.mean(map(len, texts)):.0f} chars")
    print(f"units: {n_units:,} (sentences and list items), "
          f"{n_distinct:,} distinct ({100 * n_distinct / n_units:.0f}%): the model embeds each "
          f"distinct unit once, so these template-built answers cost far less than real text")
    print(f"labels for the trained step: keyword coder, {len(labels):,} codes on "
          f"{labels['answer_id'].nunique():,} answers")
    print(f"onnxruntime batch {BATCH}; cores: {len(os.sched_getaffinity(0))}; load average before "
          f"the run: {os.getloadavg()[0]:.1f} (other jobs share this machine)")

    runs = []
    for r in range(args.repeats):
        run = one_repeat(books, frame, labels)
        runs.append(run)
        print(f"repeat {r + 1}: load {run['load_s']:.1f}s (model {run['model_s']:.1f}s), "
              f"zero-shot {run['zero_s']:.1f}s, trained fit {run['fit_s']:.1f}s + "
              f"suggest {run['trained_s']:.1f}s")
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("model_s", "load_s", "zero_s", "fit_s", "trained_s")}
    last = runs[-1]
    n, half = len(frame), len(frame) - len(frame) // 2
    zero_rate = n / med["zero_s"]
    print(f"load: {med['load_s']:.1f}s = model load {med['model_s']:.1f}s + zero-shot fit "
          f"{med['load_s'] - med['model_s']:.1f}s ({last['n_prototypes']:,} prototypes)")
    print_parts("fit", median_parts(runs, "fit_parts"), med["load_s"] - med["model_s"])
    print(f"zero-shot: {zero_rate:8,.0f} answers/s ({med['zero_s']:.1f}s for {n:,}; "
          f"{last['rows']:,} suggestions, {last['categories'] / max(last['answers_with'], 1):.2f} "
          f"categories per answer)")
    print_parts("zero-shot", median_parts(runs, "zero_parts"), med["zero_s"])
    total = med["load_s"] + med["zero_s"]
    print(f"zero-shot incl. load: {total:.1f}s for {n:,} answers "
          f"(target < {TARGET_S:.0f}s: {'met' if total < TARGET_S else 'MISSED'})")
    print(f"trained: fit {med['fit_s']:.1f}s on {len(frame) // 2:,} answers "
          f"({last['n_models']} per-code models), suggest {half / med['trained_s']:,.0f} answers/s "
          f"({med['trained_s']:.1f}s for {half:,}; sources {last['trained_sources']})")
    print_parts("trained fit", median_parts(runs, "fit_trained_parts"), med["fit_s"])
    print_parts("trained suggest", median_parts(runs, "trained_parts"), med["trained_s"])

    if args.distinct_n:
        d = distinct_rate(frame, min(args.distinct_n, n))
        zero = median_parts(runs, "zero_parts")
        per_token = d["seconds"] / d["tokens"]
        all_tokens = sum(len(e.ids) for e in
                         EmbeddingModel.load()._tokenizer.encode_batch(units["text"].tolist()))
        projected = med["zero_s"] - zero.get(EMBEDDING, 0) + all_tokens * per_token
        print(f"distinct text: {d['units']:,} units of {d['answers']:,} answers embedded with no "
              f"cache: {d['units'] / d['seconds']:,.0f} units/s, {d['tokens'] / d['seconds']:,.0f} "
              f"tokens/s ({d['seconds']:.1f}s)")
        print(f"   projected zero-shot time if all {n_units:,} units of the {n:,} answers were "
              f"distinct ({all_tokens:,} tokens): {projected:.0f}s + load {med['load_s']:.0f}s")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    wall = time.perf_counter() - T_START
    print(f"process: {wall:.0f}s wall, {usage.ru_utime + usage.ru_stime:.0f}s CPU "
          f"({(usage.ru_utime + usage.ru_stime) / wall:.2f} cores busy on average); "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"peak memory: {peak_mb:,.0f} MB (target < {TARGET_MB:.0f} MB: "
          f"{'met' if peak_mb < TARGET_MB else 'MISSED'})")
    print(f"answers_per_s={zero_rate:.0f} load_s={med['load_s']:.1f} peak_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
