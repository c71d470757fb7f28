"""Zero-shot suggestions against independently hand-coded text (tests/fixtures/suggest/).

    .venv/bin/python bench/suggest_eval.py [--show 20]

Prints, per evaluation file, how often the hand-coded category is among the suggested ones and
how many categories are suggested per answer. The files were written by someone who had not seen
the codebook's examples; see tests/fixtures/suggest/README.md.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from pipeline.core.coding.codebook import load_codebooks  # noqa: E402
from pipeline.core.suggest.evaluate import category_coverage  # noqa: E402
from pipeline.core.suggest.select import SelectionRule, select  # noqa: E402
from pipeline.core.suggest.suggester import load_zero_shot  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "suggest"


def eval_sets() -> dict[str, tuple[pd.DataFrame, dict[str, set]]]:
    par = pd.read_csv(FIXTURES / "paraphrases.csv", dtype=str, keep_default_na=False)
    sets = {"paraphrases": (par.rename(columns={"id": "id"}),
                            {r.id: {r.dimension} for r in par.itertuples()})}
    tl_path = FIXTURES / "teachinglab_coded.csv"
    if tl_path.exists():
        with tl_path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        tl = pd.DataFrame({"id": [f"{r['row']}-{r['question']}" for r in rows],
                           "text": [r["text"] for r in rows]})
        truth = {f"{r['row']}-{r['question']}": {d for d in r["dimensions"].split(";") if d}
                 for r in rows}
        sets["teachinglab"] = (tl, truth)
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", type=int, default=0, help="print this many misses per set")
    ap.add_argument("--min-probability", type=float, default=SelectionRule.min_probability)
    ap.add_argument("--relative", type=float, default=SelectionRule.relative)
    args = ap.parse_args()
    zs = load_zero_shot(load_codebooks(ROOT / "codebooks"))
    rule = SelectionRule(min_probability=args.min_probability, relative=args.relative)
    dims = zs.protos.dimensions
    for name, (frame, truth) in eval_sets().items():
        _, probs, _ = zs.probabilities(frame, "id", "text")
        picks = select(probs, dims, rule)
        suggested = {a: {dims[c][1] for c in codes}
                     for a, codes in zip(frame["id"], picks, strict=True)}
        top1 = {a: {dims[codes[0]][1]} if codes else set()
                for a, codes in zip(frame["id"], picks, strict=True)}
        cov = category_coverage(truth, suggested)
        cov1 = category_coverage(truth, top1)
        print(f"{name}: answers={cov['answers']} answer_recall={cov['answer_recall']:.3f} "
              f"category_recall={cov['category_recall']:.3f} "
              f"mean_categories={cov['mean_categories']:.2f} top1_recall={cov1['answer_recall']:.3f}")
        shown = 0
        for a, text in zip(frame["id"], frame["text"], strict=True):
            if truth.get(a) and not truth[a] & suggested[a] and shown < args.show:
                shown += 1
                print(f"   MISS {sorted(truth[a])} got {sorted(suggested[a])}: {text[:110]!r}")


if __name__ == "__main__":
    main()
