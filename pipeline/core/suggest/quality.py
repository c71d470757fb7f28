"""How often suggestions (and, beside them, the keyword coder) agree with the human final codes.

Over the answers humans coded (agreed or adjudicated codes; an answer both coders saw with no
code counts as "nothing applies"), per school year and question, at three levels: each code,
each dimension (an answer counts when any code of the dimension is applied) and each framework.
Per row: n answers, tp / fp / fn / tn, precision, recall, F1 and Cohen's kappa of the suggester,
and the keyword coder's precision, recall, F1 and kappa on the same answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.reconciliation.agreement import binary_stats

LEVELS = ("code", "dimension", "framework")
QUALITY_COLUMNS = [
    "evaluation", "source", "level", "framework", "dimension", "code_id", "question_id",
    "school_year", "n_answers", "tp", "fp", "fn", "tn", "precision", "recall", "f1",
    "cohen_kappa", "keyword_precision", "keyword_recall", "keyword_f1", "keyword_kappa",
]


LEVEL_COLUMNS = {"code": ["framework", "dimension", "code_id"],
                 "dimension": ["framework", "dimension"], "framework": ["framework"]}


def _keys(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    cols = LEVEL_COLUMNS[level]
    out = frame[["answer_id", *cols]].drop_duplicates()
    for c in ("framework", "dimension", "code_id"):
        if c not in cols:
            out[c] = None
    return out


def _blank(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Key columns as text with '' for none (groupby and merges then keep those rows)."""
    return frame.astype({k: object for k in keys}).fillna({k: "" for k in keys})


def _pairs(frame: pd.DataFrame, at: np.ndarray, grid_keys: pd.MultiIndex) -> np.ndarray:
    """The distinct (answer, key) pairs of a set's rows, as answer position x len(grid_keys) +
    the key's position in `grid_keys` (the level's key columns of the grid, blank-filled as
    `_blank` does); rows whose key is not in the grid give none. `at`: each row's answer
    position."""
    if frame.empty:
        return np.empty(0, dtype=np.int64)
    cols = list(grid_keys.names)
    key = grid_keys.get_indexer(pd.MultiIndex.from_frame(_blank(frame[cols], cols)))
    found = key >= 0
    return np.unique(at[found].astype(np.int64) * len(grid_keys) + key[found])


def scores(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    kappa = binary_stats(tp, fp, fn, tn)["cohen_kappa"]
    return {"precision": precision, "recall": recall, "f1": f1, "cohen_kappa": kappa}


def quality_table(suggested: pd.DataFrame, keyword: pd.DataFrame, reference: pd.DataFrame,
                  answers: pd.DataFrame, codes: pd.DataFrame, evaluation: str) -> pd.DataFrame:
    """`answers`: the human-coded answers (answer_id, school_year, question_id);
    `suggested`, `keyword`, `reference`: (answer_id, framework, dimension, code_id) rows;
    `codes`: the codebook (framework, dimension, code_id) so codes nobody applied get a row too;
    `suggested` may carry a `source` column (zero_shot / trained), reported as 'mixed' if both."""
    answers = answers[["answer_id", "school_year", "question_id"]].drop_duplicates("answer_id")
    sources = sorted(set(suggested.get("source", pd.Series(dtype=object)).dropna()))
    source = sources[0] if len(sources) == 1 else ("mixed" if sources else None)
    parts = []
    keys = ["framework", "dimension", "code_id"]
    by = ["school_year", "question_id", *keys]
    # Each coded answer's position and its (school_year, question_id) group's; an answer
    # without either is in no group (groupby drops it), as it is in no row.
    grouped = answers.groupby(["school_year", "question_id"], sort=True)
    groups = grouped.size().rename("n").reset_index()
    group_of = grouped.ngroup().fillna(-1).to_numpy(dtype=np.int64)
    ids = pd.Index(answers["answer_id"])
    # the coded answers' rows of each set, as answer positions, taken once for the three levels
    applied = []
    for f in (suggested, keyword, reference):
        at = ids.get_indexer(f["answer_id"])
        applied.append((f[at >= 0], at[at >= 0]))
    for level in LEVELS:
        grid = (_blank(_keys(codes.assign(answer_id=0), level).drop(columns="answer_id")
                       .drop_duplicates(), keys).reset_index(drop=True))
        # Counted from the applied (answer, key) pairs only: an answer no set marks for a key
        # is a true negative of both coders, so tn = n - tp - fp - fn. No answers x keys
        # frame: each set's pairs are numbered answer x len(grid) + key, distinct pairs kept
        # (a key outside the codebook: no pair); a pair's cell is its group's row of the
        # groups x grid frame below.
        n_keys = len(grid)
        grid_keys = pd.MultiIndex.from_frame(grid[LEVEL_COLUMNS[level]])
        s_, k_, r_ = (_pairs(f, at, grid_keys) for f, at in applied)

        def cells(pairs, n_keys=n_keys):
            group = group_of[pairs // n_keys]
            grouped = group >= 0
            cell = group[grouped] * n_keys + pairs[grouped] % n_keys
            return np.bincount(cell, minlength=len(groups) * n_keys).astype(np.int64)

        r_cells = cells(r_)
        tp = cells(np.intersect1d(s_, r_, assume_unique=True))
        ktp = cells(np.intersect1d(k_, r_, assume_unique=True))
        counts = groups.merge(grid, how="cross")   # row = group x len(grid) + key
        counts = counts.assign(tp=tp, fp=cells(s_) - tp, fn=r_cells - tp, ktp=ktp,
                               kfp=cells(k_) - ktp, kfn=r_cells - ktp)
        counts["tn"] = counts["n"] - counts["tp"] - counts["fp"] - counts["fn"]
        counts["ktn"] = counts["n"] - counts["ktp"] - counts["kfp"] - counts["kfn"]
        counts = (counts.sort_values(by, kind="stable").reset_index(drop=True)
                  [[*by, "tp", "fp", "fn", "tn", "ktp", "kfp", "kfn", "ktn"]])
        for k in keys:
            counts[k] = counts[k].replace("", None)
        counts["n_answers"] = counts[["tp", "fp", "fn", "tn"]].sum(axis=1)
        s = scores(counts["tp"], counts["fp"], counts["fn"], counts["tn"])
        k = scores(counts["ktp"], counts["kfp"], counts["kfn"], counts["ktn"])
        for name, values in s.items():
            counts[name] = values
        for name, values in k.items():
            counts["keyword_" + ("kappa" if name == "cohen_kappa" else name)] = values
        counts["level"] = level
        parts.append(counts)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out["evaluation"] = evaluation
    out["source"] = source
    out = out.reindex(columns=QUALITY_COLUMNS)
    for col in ("precision", "recall", "f1", "cohen_kappa", "keyword_precision",
                "keyword_recall", "keyword_f1", "keyword_kappa"):
        out[col] = out[col].astype("float64").round(4)
    return out.astype(object).where(out.notna(), None)


def pooled_dimension_kappa(table: pd.DataFrame) -> pd.DataFrame:
    """Per evaluation and dimension, counts summed over years and questions, with F1 and kappa
    (what the `suggestion_kappa_floor` check compares with its level)."""
    dims = table[table["level"] == "dimension"]
    if dims.empty:
        return pd.DataFrame(columns=["evaluation", "framework", "dimension", "n", "f1",
                                     "cohen_kappa"])
    g = (dims.groupby(["evaluation", "framework", "dimension"])[["tp", "fp", "fn", "tn"]]
         .sum().reset_index())
    s = scores(g["tp"], g["fp"], g["fn"], g["tn"])
    g["n"] = g[["tp", "fp", "fn", "tn"]].sum(axis=1)
    g["f1"] = s["f1"].round(3)
    g["cohen_kappa"] = s["cohen_kappa"].round(3)
    return g[["evaluation", "framework", "dimension", "n", "f1", "cohen_kappa"]]
