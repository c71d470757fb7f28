"""Benchmark: the keyword coder against two baselines on the same synthetic answers.

    .venv/bin/python bench/coder.py [--n 1000000] [--repeats 3] [--naive-n 20000]
        [--save-reference PATH | --check-reference PATH] [--code-text]

- coder: KeywordCoder.code_frame on a DataFrame (id, text) of all answers with the shipped
  codebooks (codebooks/) -- the path the Dagster asset and the pipeline use: every code
  application as a row with its evidence JSON, returned as a pandas DataFrame.
  With --code-text, also KeywordCoder.code_text per answer (Application/Evidence objects),
  reported on its own line.
- naive: one precompiled, case-insensitive re.search per pattern per answer (phrases as
  escaped regexes with word boundaries, stems as prefix regexes, regexes as written). It is
  measured on the first --naive-n answers and extrapolated to answers/s.
- floor: one pyahocorasick pass over the lower-cased answers finding only the literal keys
  (the same phrase keys and stem anchors the coder's automaton holds); no verification.
Each figure is the median over --repeats runs. Peak memory is the process's max RSS.

--save-reference PATH writes the coder's rows (id, framework, dimension, code_id, n_evidence,
evidence) to a pickle; --check-reference PATH compares this run's rows with such a file and
exits 1 on any difference (e.g. save with the coder before a change, check after it).
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.coding.codebook import load_codebooks  # noqa: E402
from pipeline.core.coding.matcher import KeywordCoder, bounded, phrase_key  # noqa: E402


def answer_texts(n: int, seed: int) -> list[str]:
    from tools.sample.synth import synthetic_answer_texts

    return synthetic_answer_texts(n, seed=seed)


def naive_patterns(books) -> list[re.Pattern]:
    out = []
    for book in books:
        for code in book.codes:
            for p in (*code.patterns, *code.exclusions):
                if p.kind == "regex":
                    rx = bounded(p.text, p.boundary)
                elif p.kind == "stem":
                    rx = (
                        r"\b"
                        + r"\w*\W+".join(re.escape(w[:-1] or w) for w in p.text.split())
                        + r"\w*"
                    )
                else:
                    rx = r"\b" + re.escape(p.text) + r"\b"
                out.append(re.compile(rx, re.IGNORECASE))
    return out


def run_coder(coder: KeywordCoder, frame) -> int:
    return len(coder.code_frame(frame, "id", "text"))


def run_code_text(coder: KeywordCoder, texts: list[str]) -> int:
    n = 0
    for t in texts:
        n += len(coder.code_text(t))
    return n


REFERENCE_COLUMNS = ["id", "framework", "dimension", "code_id", "n_evidence", "evidence"]


def check_reference(coder: KeywordCoder, frame, path: str) -> bool:
    import pandas as pd

    got = coder.code_frame(frame, "id", "text")[REFERENCE_COLUMNS].reset_index(drop=True)
    want = pd.read_pickle(path)[REFERENCE_COLUMNS].reset_index(drop=True)
    if got.equals(want):
        print(f"reference: identical to {path} ({len(got):,} rows)")
        return True
    diff = got.merge(want, how="outer", indicator=True)
    print(f"reference: DIFFERENT from {path}: {len(got):,} rows vs {len(want):,}")
    print(diff[diff["_merge"] != "both"].head(20).to_string())
    return False


def run_naive(patterns: list[re.Pattern], texts: list[str]) -> int:
    n = 0
    for t in texts:
        for p in patterns:
            if p.search(t):
                n += 1
    return n


def run_floor(automaton, texts: list[str]) -> int:
    n = 0
    for t in texts:
        for _ in automaton.iter(t.lower()):
            n += 1
    return n


def timed(fn, *args, repeats: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="answers to code")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-n", type=int, default=20_000, help="answers for the naive baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codebook", action="append", default=None, help="default: codebooks/")
    ap.add_argument("--code-text", action="store_true", help="also time code_text per answer")
    ref = ap.add_mutually_exclusive_group()
    ref.add_argument("--save-reference", metavar="PATH", help="save the coder's rows")
    ref.add_argument("--check-reference", metavar="PATH", help="compare the rows with PATH")
    args = ap.parse_args()

    t0 = time.perf_counter()
    texts = answer_texts(args.n, args.seed)
    print(f"texts: {len(texts):,} synthetic answers, mean {statistics.mean(map(len, texts)):.0f} chars "
          f"({time.perf_counter() - t0:.1f}s to generate)")  # fmt: skip
    books = load_codebooks(args.codebook or [ROOT / "codebooks"])
    n_patterns = sum(len(c.patterns) + len(c.exclusions) for b in books for c in b.codes)
    t0 = time.perf_counter()
    coder = KeywordCoder(books)
    scanner = coder._scanner  # build the compiled scan now (it is built lazily), not timed
    assert scanner.stats()["keys"] > 0
    print(f"codebooks: {', '.join(f'{b.framework}@{b.version}' for b in books)}; "
          f"{n_patterns} patterns; coder built in {time.perf_counter() - t0:.2f}s")  # fmt: skip

    floor = ahocorasick.Automaton()
    for b in books:
        for c in b.codes:
            for p in (*c.patterns, *c.exclusions):
                if p.kind != "regex":
                    key = phrase_key(p.text)
                    floor.add_word(key, key)
    floor.make_automaton()

    import pandas as pd

    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    if args.save_reference:
        coder.code_frame(frame, "id", "text")[REFERENCE_COLUMNS].to_pickle(args.save_reference)
        print(f"reference: saved to {args.save_reference}")
    if args.check_reference and not check_reference(coder, frame, args.check_reference):
        sys.exit(1)
    t_coder, n_apps = timed(run_coder, coder, frame, repeats=args.repeats)
    if args.code_text:
        t_text, _n = timed(run_code_text, coder, texts, repeats=args.repeats)
    t_floor, n_floor = timed(run_floor, floor, texts, repeats=args.repeats)
    sub = texts[: args.naive_n]
    patterns = naive_patterns(books)
    t_naive, n_naive = timed(run_naive, patterns, sub, repeats=args.repeats)

    coder_rate = len(texts) / t_coder
    floor_rate = len(texts) / t_floor
    naive_rate = len(sub) / t_naive
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"coder: {coder_rate:12,.0f} answers/s  ({t_coder:.2f}s for {len(texts):,}; code_frame, "
        f"{n_apps:,} code applications)"
    )
    if args.code_text:
        print(
            f"code_text: {len(texts) / t_text:8,.0f} answers/s  ({t_text:.2f}s, one call per answer)"
        )
    print(f"floor: {floor_rate:12,.0f} answers/s  ({t_floor:.2f}s; {n_floor:,} literal key hits)")
    print(f"naive: {naive_rate:12,.0f} answers/s  ({t_naive:.2f}s for a subsample of {len(sub):,}, "
          f"extrapolated; {len(patterns)} re.search per answer)")  # fmt: skip
    print(
        f"answers_per_s={coder_rate:.0f} speedup_vs_naive={coder_rate / naive_rate:.1f} "
        f"ratio_to_floor={floor_rate / coder_rate:.2f} peak_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
