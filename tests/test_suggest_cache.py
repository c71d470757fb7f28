"""The sentence-vector cache on disk (pipeline/core/suggest/vector_cache.py): exact vectors,
no second inference for a text, several processes writing at once, a damaged or locked file."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.suggest import vector_cache
from pipeline.core.suggest.model import MODEL_ENV, EmbeddingModel
from pipeline.core.suggest.vector_cache import VectorCache

DIM = 8


def _vectors(texts: list[str]) -> np.ndarray:
    """Deterministic float32 rows per text, with bits a rounding would lose."""
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        rng = np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
        out[i] = rng.standard_normal(DIM).astype(np.float32) / 3.0
    return out


def _cache(folder: Path, model_sha: str = "a" * 64) -> VectorCache:
    return VectorCache.for_model(folder, model_sha, "b" * 64, "mean", DIM)


def test_vectors_come_back_bit_identical_and_only_for_the_same_model(tmp_path):
    texts = ["we ran out of time", "the coach listened", "tres bien", "emoji 👍 ok"]
    vecs = _vectors(texts)
    cache = _cache(tmp_path)
    assert cache.get(texts) == {}
    cache.put(texts, vecs)
    got = _cache(tmp_path).get([*texts, "never stored"])  # another connection, same file
    assert set(got) == set(texts)
    for i, t in enumerate(texts):
        assert got[t].dtype == np.float32
        assert got[t].tobytes() == vecs[i].tobytes()
    # the tokenizer, pooling and runtime are part of the key too: same file, no hits
    for other in (VectorCache.for_model(tmp_path, "a" * 64, "c" * 64, "mean", DIM),
                  VectorCache.for_model(tmp_path, "a" * 64, "b" * 64, "cls", DIM),
                  VectorCache.for_model(tmp_path, "a" * 64, "b" * 64, "mean", DIM, "ort 9")):
        assert other.path == cache.path and other.get(texts) == {}
    assert _cache(tmp_path, model_sha="d" * 64).get(texts) == {}  # another model: other file


def _writer(folder: str, start: int, n: int, rounds: int) -> None:
    cache = _cache(Path(folder))
    for r in range(rounds):
        texts = [f"answer {i}" for i in range(start + r * 7, start + r * 7 + n)]
        cache.put(texts, _vectors(texts))
        cache.get(texts)


def test_concurrent_writers_lose_nothing_and_never_fail(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), start, 300, 20))
             for start in (0, 50, 100, 150)]  # overlapping texts, written at the same time
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    texts = [f"answer {i}" for i in range(0, 150 + 19 * 7 + 300)]
    got = _cache(tmp_path).get(texts)
    assert set(got) == set(texts)
    expected = _vectors(texts)
    assert all(got[t].tobytes() == expected[i].tobytes() for i, t in enumerate(texts))


def test_a_damaged_file_is_moved_aside_and_the_cache_starts_afresh(tmp_path):
    cache = _cache(tmp_path)
    cache.path.write_bytes(b"this is not an sqlite file" * 100)
    assert cache.get(["x"]) == {}  # no exception
    assert list(tmp_path.glob("embeddings-*.sqlite3.damaged-*"))
    cache.put(["x"], _vectors(["x"]))
    assert _cache(tmp_path).get(["x"])["x"].tobytes() == _vectors(["x"])[0].tobytes()


def test_a_locked_file_only_skips_the_write(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_cache, "BUSY_TIMEOUT_S", 0.2)
    cache = _cache(tmp_path)
    cache.put(["before"], _vectors(["before"]))
    holder = sqlite3.connect(cache.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        locked = _cache(tmp_path)
        locked.put(["during"], _vectors(["during"]))  # gives up after the timeout, no error
        assert set(locked.get(["before", "during"])) == {"before"}  # WAL: reads go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    cache.put(["during"], _vectors(["during"]))
    assert set(_cache(tmp_path).get(["before", "during"])) == {"before", "during"}


# --------------------------------------------------------------------------- with the model


@pytest.fixture(scope="module")
def model_files():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(MODEL_ENV, raising=False)
        return EmbeddingModel.load()


def _fresh(loaded: EmbeddingModel) -> EmbeddingModel:
    """The same loaded model with an empty memory cache: a new process, as far as caching goes."""
    return EmbeddingModel(files=loaded.files, sha256=loaded.sha256,
                          tokenizer_sha256=loaded.tokenizer_sha256, _session=loaded._session,
                          _tokenizer=loaded._tokenizer)


def _counting(model: EmbeddingModel, monkeypatch) -> list[int]:
    calls: list[int] = []
    encode = model._encode

    def counted(texts):
        calls.append(len(texts))
        return encode(texts)

    monkeypatch.setattr(model, "_encode", counted)
    return calls


@pytest.mark.slow
def test_cached_vectors_equal_the_models_and_a_second_embed_runs_no_inference(
        model_files, tmp_path, monkeypatch):
    texts = ["we ran out of time", "the session felt rushed", "Loved the modelling part.",
             "we ran out of time", "the coach gave us clear next steps for grading"]
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "none-yet"))
    uncached = _fresh(model_files)._encode(sorted(set(texts)))
    # a text's vector does not depend on the other texts of its batch (so a vector cached by
    # one run is the one any other run would compute)
    alone = np.stack([_fresh(model_files)._encode([t])[0] for t in sorted(set(texts))])
    assert alone.tobytes() == uncached.tobytes()

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    first = _fresh(model_files)
    calls = _counting(first, monkeypatch)
    vecs = first.embed(texts)
    assert calls == [4]  # the four distinct texts, once
    order = {t: i for i, t in enumerate(sorted(set(texts)))}
    assert vecs.tobytes() == uncached[[order[t] for t in texts]].tobytes()

    second = _fresh(model_files)  # another process: nothing in memory
    calls = _counting(second, monkeypatch)
    again = second.embed(list(reversed(texts)))
    assert calls == []  # every vector read from disk, no inference
    assert again.tobytes() == vecs[::-1].tobytes()
    more = second.embed([*texts, "a text nobody embedded before"])
    assert calls == [1]  # only the new one
    assert more[:-1].tobytes() == vecs.tobytes()


@pytest.mark.slow
def test_a_damaged_cache_never_fails_the_embedding(model_files, tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    texts = ["we ran out of time", "the coach listened"]
    first = _fresh(model_files)
    good = first.embed(texts)
    first.disk_cache().close()   # as at the end of a process: nothing of it left open
    for f in tmp_path.glob("embeddings-*.sqlite3"):
        f.write_bytes(b"\x00garbage" * 512)
    for f in tmp_path.glob("embeddings-*.sqlite3-*"):
        f.unlink()
    model = _fresh(model_files)
    calls = _counting(model, monkeypatch)
    assert model.embed(texts).tobytes() == good.tobytes()  # embedded again, same bits
    assert calls == [2]


# ----------------------------------------------------------------------- fitted models


def _training(seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 12))
    y = (rng.random((300, 4)) < np.array([0.2, 0.4, 0.01, 0.3])).astype(np.int64)
    return x, y, rng.standard_normal((50, 12)), rng.random((50, 4))


def _count_fits(monkeypatch) -> list[int]:
    """One entry per code fitted (trained.py fits the codes side by side: batched_fit.py)."""
    from pipeline.core.suggest import trained

    fits: list[int] = []
    real_fit = trained.fit_logistic_columns
    monkeypatch.setattr(trained, "fit_logistic_columns",
                        lambda x, y, columns, *a, **k: fits.extend(columns) or
                        real_fit(x, y, columns, *a, **k))
    return fits


def _count_sklearn_fits(monkeypatch) -> list[int]:
    from sklearn.linear_model import LogisticRegression

    fits: list[int] = []
    real_fit = LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit",
                        lambda self, *a, **k: fits.append(1) or real_fit(self, *a, **k))
    return fits


def test_a_fit_of_the_same_arrays_is_rebuilt_with_identical_predictions(tmp_path, monkeypatch):
    from pipeline.core.suggest.trained import TrainedSuggester

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    x, y, x_new, zero_shot = _training()
    fits = _count_fits(monkeypatch)
    first = TrainedSuggester.fit(x, y)
    assert sorted(first.models) == [0, 1, 3] and len(fits) == 3  # code 2 is too rare
    second = TrainedSuggester.fit(x.copy(), y.copy())
    assert len(fits) == 3  # rebuilt from the stored coefficients, nothing fitted again ...
    assert len(list((tmp_path / "fits").glob("*.npz"))) == 1
    p1, m1 = first.predict(x_new, zero_shot)
    p2, m2 = second.predict(x_new, zero_shot)
    assert p1.tobytes() == p2.tobytes() and (m1 == m2).all()  # ... bit-identical predictions
    y_changed = y.copy()
    y_changed[0, 1] = 1 - y_changed[0, 1]
    TrainedSuggester.fit(x, y_changed)  # one label changed: another key, fitted
    assert len(list((tmp_path / "fits").glob("*.npz"))) == 2


def test_a_damaged_fit_file_means_fitting_again(tmp_path, monkeypatch):
    from pipeline.core.suggest.trained import TrainedSuggester

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    x, y, x_new, zero_shot = _training(2)
    first = TrainedSuggester.fit(x, y)
    for f in (tmp_path / "fits").glob("*.npz"):
        f.write_bytes(b"PK\x03\x04 not a zip")
    fitted = _count_fits(monkeypatch)
    again = TrainedSuggester.fit(x, y)
    assert len(fitted) == len(first.models)  # fitted again, not read from the damaged file
    assert again.predict(x_new, zero_shot)[0].tobytes() == \
        first.predict(x_new, zero_shot)[0].tobytes()


@pytest.mark.slow
def test_the_zero_shot_fit_is_kept_and_the_same_figures_come_back(model_files, tmp_path,
                                                                  monkeypatch):
    from pipeline.core.coding.codebook import load_codebooks
    from pipeline.core.suggest.zero_shot import ZeroShot

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    books = load_codebooks(Path(__file__).resolve().parents[1] / "codebooks")
    fits = _count_sklearn_fits(monkeypatch)
    first = ZeroShot.fit(_fresh(model_files), books)
    assert len(fits) == 1
    second = ZeroShot.fit(_fresh(model_files), books)   # another process, same codebooks
    assert len(fits) == 1   # read back, not fitted (nor scikit-learn needed)
    assert second.coef.tobytes() == first.coef.tobytes()
    assert second.intercept == first.intercept
    for f in (tmp_path / "fits").glob("zero-shot-*.npz"):
        f.write_bytes(b"PK\x03\x04 not a zip")
    third = ZeroShot.fit(_fresh(model_files), books)
    assert len(fits) == 2 and third.coef.tobytes() == first.coef.tobytes()


# ----------------------------------------------------------------------- bounded memory


def test_similarities_in_chunks_are_the_same_figures():
    from pipeline.core.suggest import prototypes

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    protos = prototypes.Prototypes(codes=[None] * 7, texts=[""] * 40, kinds=[""] * 40,
                                   code_of=np.arange(40) % 7, vectors=vectors[:40])
    exclude = rng.random((260, 40)) < 0.1
    whole = prototypes.code_similarity(vectors[40:], protos, exclude)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prototypes, "CHUNK", 64)  # 260 units in five blocks, the last one short
        chunked = prototypes.code_similarity(vectors[40:], protos, exclude)
    for a, b in zip(whole, chunked, strict=True):
        assert a.shape == b.shape == (260, 7)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # BLAS may round a row differently
    # a row's figures are its own: the excluded prototypes really are left out, per block
    sims = vectors[40:] @ vectors[:40].T
    sims[exclude] = -1.0
    np.testing.assert_allclose(chunked[0][:, 3], sims[:, np.arange(40) % 7 == 3].max(axis=1),
                               atol=1e-6)


def test_similarities_are_each_codes_best_and_top_three_mean():
    """Against the definition, unit by unit: the units x prototypes product, each code's
    prototypes gathered, the best and the mean of the three best; codes with one, two and
    three prototypes, and prototypes listed in no code order. (The product is computed the
    other way round: a BLAS may round it differently in the last bit.)"""
    from pipeline.core.suggest import prototypes

    rng = np.random.default_rng(3)
    code_of = np.repeat(np.arange(6), [1, 2, 3, 4, 9, 17])   # code 6 has no prototype
    rng.shuffle(code_of)
    vectors = rng.standard_normal((len(code_of) + 500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    protos = prototypes.Prototypes(codes=[None] * 7, texts=[""] * len(code_of),
                                   kinds=[""] * len(code_of), code_of=code_of,
                                   vectors=vectors[:len(code_of)])
    units = vectors[len(code_of):]
    exclude = rng.random((len(units), len(code_of))) < 0.2
    best, top3 = prototypes.code_similarity(units, protos, exclude)
    sims = units @ protos.vectors.T
    sims[exclude] = -1.0
    for c in range(6):
        ranked = -np.sort(-sims[:, code_of == c], axis=1)[:, :3]
        np.testing.assert_allclose(best[:, c], ranked[:, 0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(top3[:, c], ranked.astype(np.float64).mean(axis=1),
                                   rtol=0, atol=1e-6)
    assert (best[:, 6] == -1.0).all() and (top3[:, 6] == -1.0).all()
    assert best.flags.c_contiguous and top3.flags.c_contiguous
    assert best.dtype == top3.dtype == np.float32
    none = prototypes.code_similarity(units[:0], protos)
    assert none[0].shape == none[1].shape == (0, 7)


@pytest.mark.slow
def test_memory_holds_a_bounded_number_of_vectors(model_files, tmp_path, monkeypatch):
    from pipeline.core.suggest import model as model_module

    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(model_module, "MEMORY_VECTORS", 3)
    model = _fresh(model_files)
    first = model.embed(["one", "two", "three"])
    calls = _counting(model, monkeypatch)
    again = model.embed(["four", "one"])  # over the bound: memory emptied, "one" from disk
    assert calls == [1] and len(model._cache) == 2
    assert again[1].tobytes() == first[0].tobytes()
