"""What each code means, as vectors: its examples, definition, label and keyword phrases embedded.

A unit of an answer is compared with every prototype; a code's similarity to the unit is the
best of its prototypes and the mean of its three best (one lucky example should not carry a
code alone). Those two figures per (unit, code) are the zero-shot model's evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_K = 3
# Units per similarity block (1,522 prototypes x 32,768 in float32: 200 MB; a leave-one-out
# mask adds its reordered copy). Large on purpose:
# BLAS rounds a row's dot products differently depending on how many rows a product has, so
# any call with fewer units than this gives the same bits as one product of all its units did.
CHUNK = 32_768
# Prototype kinds and the texts they come from; keyword phrases are the plain (non-regex)
# patterns, so "coaching support" and "follow the process" anchor their codes.
KINDS = ("example", "definition", "label", "keyword")


@dataclass(frozen=True)
class CodeRef:
    framework: str
    dimension: str
    code_id: str
    label: str
    codebook_version: str


@dataclass
class Prototypes:
    codes: list[CodeRef]
    texts: list[str]
    kinds: list[str]
    code_of: np.ndarray  # prototype -> code index
    vectors: np.ndarray  # prototype rows, unit length

    @property
    def dimensions(self) -> list[tuple[str, str]]:
        """(framework, dimension) of each code."""
        return [(c.framework, c.dimension) for c in self.codes]


def prototype_texts(codebooks) -> tuple[list[CodeRef], list[tuple[int, str, str]]]:
    """Codes in codebook order, and (code index, kind, text) for every prototype text."""
    codes, rows = [], []
    for book in codebooks:
        for code in book.codes:
            i = len(codes)
            codes.append(CodeRef(code.framework, code.dimension, code.code_id, code.label,
                                 book.version))
            seen = set()

            def add(kind, text, i=i, seen=seen):
                text = " ".join(str(text).split())
                if text and text.casefold() not in seen:
                    seen.add(text.casefold())
                    rows.append((i, kind, text))

            for ex in getattr(code, "examples", ()):
                add("example", ex)
            add("definition", getattr(code, "definition", "") or code.description)
            add("label", code.label)
            for p in code.patterns:
                if p.kind in ("phrase", "stem"):
                    add("keyword", p.text)
    return codes, rows


def build_prototypes(codebooks, model) -> Prototypes:
    codes, rows = prototype_texts(codebooks)
    texts = [t for _, _, t in rows]
    return Prototypes(
        codes=codes,
        texts=texts,
        kinds=[k for _, k, _ in rows],
        code_of=np.array([i for i, _, _ in rows], dtype=np.int64),
        vectors=model.embed(texts),  # the vector cache on disk keeps them between runs
    )


def code_similarity(unit_vectors: np.ndarray, protos: Prototypes, exclude: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(best, top-k mean) similarity of every unit to every code: two (n_units, n_codes) arrays.

    `exclude` (n_units, n_prototypes) bool masks prototypes out per unit (leave-one-out).
    Units are taken CHUNK rows at a time: the (units x prototypes) similarities of a year's
    answers at a million answers would not fit in memory at once (several GB).

    The similarities are computed prototypes x units, with each code's prototypes in
    consecutive rows, so a code's figures come from whole contiguous rows (`best_and_mean`)
    rather than from its columns gathered and partitioned unit by unit (the whole function
    was 3.1x slower so: bench/similarity.py, docs/benchmarks.md). On this host's OpenBLAS the
    product gives the same bits as units x prototypes did (the bench checks it); a BLAS that
    rounds the two orders differently would move the figures in the last bit only."""
    n_codes = len(protos.codes)
    order = np.argsort(protos.code_of, kind="stable")
    bounds = np.searchsorted(protos.code_of[order], np.arange(n_codes + 1))
    vectors = protos.vectors[order]
    best = np.full((n_codes, len(unit_vectors)), -1.0, dtype=np.float32)
    topk = np.full_like(best, -1.0)
    for start in range(0, len(unit_vectors), CHUNK):
        rows = slice(start, start + CHUNK)
        sims = vectors @ unit_vectors[rows].T
        if exclude is not None:
            sims = np.where(exclude[rows][:, order].T, -1.0, sims)
        for c in range(n_codes):
            a, b = bounds[c], bounds[c + 1]
            if a < b:
                best_and_mean(sims[a:b], min(TOP_K, b - a), best[c, rows], topk[c, rows])
    return np.ascontiguousarray(best.T), np.ascontiguousarray(topk.T)


def best_and_mean(block: np.ndarray, k: int, best: np.ndarray, mean: np.ndarray) -> None:
    """Column by column of `block` (one code's prototypes x units): the largest value into
    `best` and the mean of the `k` largest into `mean`. The k largest are kept as `block`'s
    rows are read, a few whole-row maximum/minimum passes per prototype; the mean is summed
    in float64, so it does not depend on the order the values came in."""
    if len(block) <= k:
        np.max(block, axis=0, out=best)
        mean[:] = block.sum(axis=0, dtype=np.float64) / len(block)
        return
    top = np.full((k, block.shape[1]), -np.inf, dtype=block.dtype)
    high, low = np.empty_like(top[0]), np.empty_like(top[0])
    for row in block:
        value = row
        for kept in top[:-1]:   # insert `value`: the larger stays, the smaller moves down
            np.maximum(kept, value, out=high)
            np.minimum(kept, value, out=low)
            kept[:] = high
            value = low
        np.maximum(top[-1], value, out=top[-1])
    best[:] = top[0]
    mean[:] = top.sum(axis=0, dtype=np.float64) / k
