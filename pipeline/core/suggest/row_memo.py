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

Stored with frame_memo.py under cache_dir()/suggestion_rows/<suggester key>-<part>.parquet, a
file per call that added texts (a refresh writes only its new ones; `load` reads, in DuckDB, only
the rows of the texts it is asked for): one row per (text, pick) with the suggestion's columns,
and for a text with no suggestion one row with pick -1 and no code (so it is not suggested
again). The trained suggester itself (its per-code
coefficients and the rule chosen on held-out predictions) is kept under the same key in the
fit cache (fit_cache.py), so a refresh with new texts does not train again either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import frame_memo

log = logging.getLogger(__name__)

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


def load(key: str, texts: pd.Series) -> pd.DataFrame | None:
    """The stored rows of this suggester (text, pick, ROW_COLUMNS) for these texts only (read
    in DuckDB: the rest of the memo, other years' texts, is not brought into pandas); None
    when nothing is stored."""
    import duckdb

    files = _segments(key)
    if not files:
        return None
    wanted = pd.DataFrame({"text": pd.Series(pd.unique(texts.to_numpy(dtype=object)),
                                             dtype=object)})
    try:
        with frame_memo.memory_cursor() as con:
            con.register("wanted_texts", wanted)
            frame = con.execute(
                "select * from read_parquet(?) where text in (select text from wanted_texts)",
                [[str(f) for f in files]]).df()
    except (OSError, duckdb.Error) as exc:
        log.warning("suggestion rows %s unreadable (%s): suggesting again", key, exc)
        return None
    for f in files:   # recently used: kept by the pruning (a file gone since: no matter)
        with contextlib.suppress(OSError):
            os.utime(f)
    if list(frame.columns) != ["text", "pick", *ROW_COLUMNS]:
        return None
    # two processes adding the same new text at once store it twice: its rows are the same
    return frame.drop_duplicates(["text", "pick"], ignore_index=True)


def add(key: str, rows: pd.DataFrame) -> None:
    """Keep the rows of texts new to this suggester (by_text's), beside the ones kept: each
    call adds a file (a refresh writes its new texts only); past SEGMENTS_KEPT files the
    suggester's rows are written again as one."""
    files = _segments(key)
    merged = len(files) >= SEGMENTS_KEPT
    if merged:   # a damaged file's texts are only suggested again
        kept = [frame_memo.load(KIND, f.stem) for f in files]
        rows = pd.concat([*(k for k in kept if k is not None), rows], ignore_index=True
                         ).drop_duplicates(["text", "pick"], ignore_index=True)
    name = f"{key}-{frame_memo.key('segment', rows[['text', 'pick']])[:16]}"
    # each file's column types fixed, whatever its rows (a part of texts with no suggestion
    # has no value in most columns): the parts are read as one table
    frame_memo.store(KIND, name, rows[["text", "pick", *ROW_COLUMNS]].astype(_TYPES),
                     max_files=FILES_KEPT)
    if merged:
        for f in files:
            f.unlink(missing_ok=True)


SEGMENTS_KEPT = 16   # files of one suggester's rows before they are written again as one
FILES_KEPT = 50 * (SEGMENTS_KEPT + 1)   # in the folder, for ~50 suggesters (least used go)
_TYPES = {"text": "string", "pick": "int64", "framework": "string", "dimension": "string",
          "code_id": "string", "probability": "float64", "source": "string",
          "evidence_text": "string", "evidence_start": "Int64", "evidence_end": "Int64",
          "model_sha256": "string", "codebook_version": "string"}


def _segments(key: str) -> list[Path]:
    """The files holding this suggester's rows (`<key>-<part>.parquet`)."""
    return sorted(f for f in frame_memo.folder(KIND).glob(f"{key}-*.parquet")
                  if ".tmp." not in f.name)


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
