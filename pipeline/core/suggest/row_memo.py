"""Suggestion rows already worked out, kept per suggester and answer text.

A school year's suggestions are a pure function of the suggester and of each answer's text: the
zero-shot suggester (model sha256, codebook versions), the trained one (exactly what it was
trained on: the other years' coded answers and their codes, the fitting settings) and its
selection rule. An answer's rows never depend on the answers suggested beside it (its units,
their vectors, its zero-shot and trained probabilities and its picks are all per answer; the
last bits of a float32 similarity do depend on the rows multiplied beside it, which is why the
carrying unit is chosen with a tolerance: zero_shot.TIE). So a refresh that adds one session's
export to a year, whose suggester is trained on the OTHER years and so does not change, needs
to suggest only the texts it has not seen.

Stored with frame_memo.py under cache_dir()/suggestion_rows/<suggester key>.parquet: one row
per (text, pick) with the suggestion's columns, and for a text with no suggestion one row with
pick -1 and no code (so it is not suggested again). The trained suggester itself (its per-code
coefficients and the rule chosen on held-out predictions) is kept under the same key in the
fit cache (fit_cache.py), so a refresh with new texts does not train again either.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline.core import frame_memo

KIND = "suggestion_rows"
ROW_COLUMNS = ["framework", "dimension", "code_id", "probability", "source", "evidence_text",
               "evidence_start", "evidence_end", "model_sha256", "codebook_version"]


def codebook_versions(zs) -> str:
    """The suggester's codebooks as "framework=version,..." (a part of its keys)."""
    return ",".join(f"{b.framework}={b.version}" for b in zs.codebooks)


def suggester_key(zs, train_answers: pd.DataFrame | None, train_codes: pd.DataFrame | None,
                  settings: str) -> str:
    """sha256 of everything a suggestion row depends on besides its answer's text: the
    pipeline's code (frame_memo.key), the model, the codebooks, and (trained) the training
    answers in order with their texts, the training codes and the fitting settings.
    `train_answers` None: zero-shot only."""
    from pipeline.core.suggest.fit_cache import sklearn_version

    parts = [KIND, zs.sha256, f"sklearn {sklearn_version()}", codebook_versions(zs)]
    if train_answers is None:
        parts.append("zero-shot")
    else:
        codes = train_codes[["answer_id", "code_id"]].astype(str).sort_values(
            ["answer_id", "code_id"], kind="mergesort")
        parts += ["trained", settings,
                  train_answers[["answer_id", "answer_text"]].astype(str), codes]
    return frame_memo.key(*parts)


def load(key: str) -> pd.DataFrame | None:
    """The stored rows of this suggester (text, pick, ROW_COLUMNS), None when there are none."""
    frame = frame_memo.load(KIND, key)
    if frame is None or list(frame.columns) != ["text", "pick", *ROW_COLUMNS]:
        return None
    return frame


def store(key: str, rows: pd.DataFrame) -> None:
    frame_memo.store(KIND, key, rows[["text", "pick", *ROW_COLUMNS]])


def by_text(rows: pd.DataFrame, texts: pd.Series) -> pd.DataFrame:
    """`suggest` output (id, ROW_COLUMNS; answer order then pick order) as memo rows: keyed by
    the text of each id (`texts`: id -> text) with its pick number; a text without rows gets a
    pick -1 row. Each distinct text once (answers with the same text have the same rows)."""
    out = rows.copy()
    out.insert(0, "text", out["id"].map(texts))
    out.insert(1, "pick", out.groupby("id", sort=False).cumcount().astype(np.int64))
    out = out.drop(columns="id").drop_duplicates(["text", "pick"], keep="first")
    empty = sorted(set(texts) - set(out["text"]))
    out = out.reset_index(drop=True)
    if empty:  # rows with no suggestion: pick -1, every other column empty
        n = len(out)
        out = out.reindex(range(n + len(empty)))
        out.loc[n:, "text"] = empty
        out.loc[n:, "pick"] = -1
        out["pick"] = out["pick"].astype(np.int64)
    return out


def rows_for(memo: pd.DataFrame, ids: pd.Series, texts: pd.Series) -> pd.DataFrame:
    """Suggestion rows (id, ROW_COLUMNS) for answers `ids` with `texts` (aligned), from memo
    rows covering every text: answer order then pick order, as `suggest` gives them."""
    wanted = pd.DataFrame({"id": ids.to_numpy(dtype=object), "text": texts.to_numpy(dtype=object),
                           "_order": np.arange(len(ids), dtype=np.int64)})
    picked = memo[memo["pick"] >= 0]
    out = wanted.merge(picked, on="text", how="inner").sort_values(
        ["_order", "pick"], kind="mergesort")
    out = out.drop(columns=["text", "_order", "pick"]).reset_index(drop=True)
    out["probability"] = out["probability"].astype(np.float64)
    for column in ("evidence_start", "evidence_end"):
        out[column] = out[column].astype("Int64")
    for column in ("framework", "dimension", "code_id", "source", "evidence_text",
                   "model_sha256", "codebook_version"):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out[["id", *ROW_COLUMNS]]


def rule_array(rule) -> np.ndarray:
    return np.array([getattr(rule, f.name) for f in dataclasses.fields(rule)], dtype=np.float64)


def rule_from(array: np.ndarray, rule_type):
    fields = dataclasses.fields(rule_type)
    if len(array) != len(fields):
        return None
    values = {f.name: (int(v) if isinstance(f.default, int) else float(v))
              for f, v in zip(fields, array.tolist(), strict=True)}
    return rule_type(**values)
