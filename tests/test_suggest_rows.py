"""The suggester's bookkeeping rewritten without Python loops per row gives the same bits: the
mean unit embedding per answer (np.bincount per dimension instead of np.add.at), the suggestion
rows (built column by column instead of one tuple per suggestion), the selection rule's picks
and the threshold a trained model chooses (every answer at once instead of a loop per answer).
The old versions are kept here as the oracles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipeline.core.suggest.select import (
    TRAINED_RULE,
    ZERO_SHOT_RULE,
    SelectionRule,
    fitted_rule,
    select,
)
from pipeline.core.suggest.suggester import SUGGESTION_COLUMNS, suggestion_rows
from pipeline.core.suggest.trained import answer_features


def _old_answer_features(zero_shot_probs, units, unit_vectors, ids):
    ids = list(ids)
    dim = unit_vectors.shape[1] if unit_vectors.ndim == 2 else 0
    mean = np.zeros((len(ids), dim), dtype=np.float64)
    if len(units):
        idx = pd.Index(ids).get_indexer(units["id"])
        keep = idx >= 0
        np.add.at(mean, idx[keep], unit_vectors[keep])
        counts = np.bincount(idx[keep], minlength=len(ids)).astype(np.float64)
        mean /= np.clip(counts, 1, None)[:, None]
    return np.hstack([zero_shot_probs, mean])


def _old_suggestion_rows(zs, ids, units, probs, carrier, source, rule):
    dims = zs.protos.dimensions
    has_text = np.zeros(len(probs), dtype=bool)
    if len(units):
        has_text[pd.Index(list(ids)).get_indexer(units["id"].unique())] = True
    rows = []
    for i, (answer_id, picks) in enumerate(zip(ids, select(probs, dims, rule), strict=True)):
        if not has_text[i]:
            continue
        for c in picks:
            code = zs.protos.codes[c]
            u = carrier[i, c]
            text, start, end = (units["text"].iat[u], int(units["start"].iat[u]),
                                int(units["end"].iat[u])) if u >= 0 else (None, None, None)
            rows.append((answer_id, code.framework, code.dimension, code.code_id,
                         round(float(probs[i, c]), 4), source[c], text, start, end,
                         zs.model.sha256, code.codebook_version))
    frame = pd.DataFrame(rows, columns=SUGGESTION_COLUMNS)
    frame["evidence_start"] = frame["evidence_start"].astype("Int64")
    frame["evidence_end"] = frame["evidence_end"].astype("Int64")
    return frame


def _case(seed: int, n_answers: int = 300, n_codes: int = 12):
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"A{i:012x}" for i in range(n_answers)])
    per_answer = rng.integers(0, 4, n_answers)  # some answers have no unit (no text)
    unit_ids = np.repeat(ids.to_numpy(), per_answer)
    units = pd.DataFrame({"id": unit_ids, "unit": 0, "start": rng.integers(0, 50, len(unit_ids)),
                          "end": rng.integers(50, 99, len(unit_ids)),
                          "text": [f"unit {i}" for i in range(len(unit_ids))]})
    vectors = rng.normal(size=(len(units), 16)).astype(np.float32)
    probs = rng.random((n_answers, n_codes)) ** 3
    carrier = np.where(rng.random((n_answers, n_codes)) < 0.2, -1,
                       rng.integers(0, max(len(units), 1), (n_answers, n_codes)))
    codes = [SimpleNamespace(framework=f"f{c % 2}", dimension=f"d{c % 5}", code_id=f"c{c}",
                             codebook_version=f"v{c % 2}") for c in range(n_codes)]
    zs = SimpleNamespace(protos=SimpleNamespace(
        codes=codes, dimensions=[(c.framework, c.dimension) for c in codes]),
        model=SimpleNamespace(sha256="ab" * 32))
    source = np.where(rng.random(n_codes) < 0.5, "trained", "zero_shot").astype(object)
    return ids, units, vectors, probs, carrier, zs, source


@pytest.mark.parametrize("seed", range(5))
def test_answer_features_are_the_bits_np_add_at_gave(seed):
    ids, units, vectors, probs, *_ = _case(seed)
    shuffled = units.sample(frac=1.0, random_state=seed)  # any unit order, and a stray unit
    shuffled = pd.concat([shuffled, shuffled.head(1).assign(id="not-an-answer")])
    vecs = np.vstack([vectors[shuffled.index[:-1]], vectors[:1]])
    shuffled = shuffled.reset_index(drop=True)
    got = answer_features(probs, shuffled, vecs, ids)
    want = _old_answer_features(probs, shuffled, vecs, ids)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rule", [ZERO_SHOT_RULE, TRAINED_RULE])
def test_suggestion_rows_are_the_rows_built_one_by_one(seed, rule):
    ids, units, _vectors, probs, carrier, zs, source = _case(seed)
    got = suggestion_rows(zs, ids, units, probs, carrier, source, rule)
    want = _old_suggestion_rows(zs, ids, units, probs, carrier, source, rule)
    assert len(got) > 100 and got["evidence_text"].isna().any()
    pd.testing.assert_frame_equal(got, want)


def _old_select(probs, dims, rule):
    """select as it was: one Python loop per answer."""
    from pipeline.core.suggest.select import dimension_index

    dim_of = dimension_index(dims)
    members = [np.flatnonzero(dim_of == k) for k in range(dim_of.max() + 1 if len(dims) else 0)]
    out = []
    probs = np.asarray(probs)
    all_dim_p = np.zeros((len(probs), len(members)), dtype=np.float64)
    for k, m in enumerate(members):
        if len(m):
            all_dim_p[:, k] = probs[:, m].max(axis=1)
    all_order = np.argsort(-all_dim_p, axis=1, kind="stable")
    for row, dim_p, order in zip(probs, all_dim_p, all_order, strict=True):
        top = dim_p[order[0]] if len(order) else 0.0
        chosen = []
        limit = rule.max_categories if top < rule.unsure_below else min(2, rule.max_categories)
        for rank, k in enumerate(order[:limit]):
            p = dim_p[k]
            if rank == 0:
                if p > rule.floor:
                    chosen.append(k)
            elif p >= rule.min_probability and p >= rule.relative * top:
                chosen.append(k)
        codes = []
        for k in chosen:
            m = members[k]
            ranked = m[np.argsort(-row[m], kind="stable")]
            codes.append(int(ranked[0]))
            for c in ranked[1 : rule.max_codes_per_category]:
                if row[c] >= max(rule.min_probability, row[ranked[0]] / 2):
                    codes.append(int(c))
        out.append(codes)
    return out


def _old_fitted_rule(probs, truth, dims, max_mean_categories=1.8):
    from pipeline.core.suggest.select import THRESHOLDS, SelectionRule, dimension_index

    dim_of = dimension_index(dims)
    rows = np.flatnonzero(truth.sum(axis=1) > 0)
    if not len(rows):
        return TRAINED_RULE
    true_dims = [set(dim_of[np.flatnonzero(truth[r])]) for r in rows]
    best, best_hits = TRAINED_RULE, -1
    for threshold in THRESHOLDS:
        rule = SelectionRule(min_probability=threshold, relative=min(threshold, 0.3))
        picks = _old_select(probs[rows], dims, rule)
        cats = [{dim_of[c] for c in codes} for codes in picks]
        if np.mean([len(c) for c in cats]) > max_mean_categories:
            break
        hits = sum(bool(c & t) for c, t in zip(cats, true_dims, strict=True))
        if hits > best_hits:
            best, best_hits = rule, hits
    return best


RULES = [ZERO_SHOT_RULE, TRAINED_RULE, SelectionRule(max_categories=5, max_codes_per_category=3),
         SelectionRule(max_categories=1, max_codes_per_category=1, floor=0.2),
         SelectionRule(min_probability=0.3, relative=0.5, unsure_below=0.9)]


@pytest.mark.parametrize("seed", range(6))
def test_select_picks_what_the_per_answer_loop_picked(seed):
    rng = np.random.default_rng(seed)
    *_, zs, _ = _case(seed, n_codes=14)
    dims = zs.protos.dimensions
    probs = rng.random((400, len(dims))) ** rng.uniform(1, 6)
    probs[:20] = np.round(probs[:20], 1)  # ties, broken by position in both
    probs[20:25] = 0.0
    for rule in RULES:
        assert select(probs, dims, rule) == _old_select(probs, dims, rule)
    assert select(probs[:0], dims) == _old_select(probs[:0], dims, ZERO_SHOT_RULE) == []


@pytest.mark.parametrize("seed", range(6))
def test_fitted_rule_is_the_rule_the_loop_chose(seed):
    rng = np.random.default_rng(seed)
    *_, zs, _ = _case(seed, n_codes=14)
    dims = zs.protos.dimensions
    truth = (rng.random((300, len(dims))) < 0.08).astype(np.int64)
    probs = np.clip(truth * rng.uniform(0.05, 0.9, truth.shape)
                    + rng.random(truth.shape) ** 4 * 0.5, 0, 1)
    for cap in (1.1, 1.5, 1.8, 3.0):
        assert fitted_rule(probs, truth, dims, cap) == _old_fitted_rule(probs, truth, dims, cap)
    assert fitted_rule(probs, truth * 0, dims) == TRAINED_RULE
